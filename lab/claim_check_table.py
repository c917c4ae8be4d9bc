"""A claim check after the answer, measured offline on the trust benchmark's rows (issue 49, 3c).

For each answered row of lab/results/trust_SPLIT.jsonl (benchmarks/bench_trust.py), the answer's
new content (its content words that the question does not have, citation markers and stopwords
left out) is looked up in the sources the answer was given (the same index, rebuilt the same
way, searched the same way: retrieval is deterministic) and, separately, in the sources it
cites. An answer whose share of new content found is below a threshold would be refused. The
table: per kind and threshold, how many answers the check would refuse, and on the answerable
kind how many answers holding gold it would cost. No model runs: a minute on 2 cores.

    .venv/bin/python lab/claim_check_table.py [--split eval]   # lab/results/claim_check_SPLIT.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _common import RESULTS, print_table, write_results
from bench_trust import DEFAULT_DATA, KINDS, SPLITS, article_documents, documents_home, refused_by

from dca.answer import cited_numbers, found_share
from dca.files import complete_jsonl_lines
from dca.knowledge.retrieval import STOPWORDS

THRESHOLDS = (0.3, 0.5, 0.7, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=tuple(SPLITS), default="eval")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    rows = [json.loads(line) for line in complete_jsonl_lines(RESULTS / f"trust_{args.split}.jsonl")]
    squad = json.loads((args.data_dir / "squad2_dev" / "dev-v2.0.json").read_text(encoding="utf-8"))["data"]
    documents, _ = article_documents([squad[i] for i in SPLITS[args.split]])
    from dca.api import Assistant

    scored: list[dict[str, Any]] = []
    with documents_home(documents) as (home, embedder):
        assistant = Assistant(index="corpus", home=home.home, embedder=embedder)
        for row in rows:
            if row["refused"]:
                continue
            sources = [hit.chunk.text for hit in assistant.retrieve(row["question"])]
            cited = [sources[n - 1] for n in cited_numbers(row["answer"], len(sources))]
            scored.append(
                {
                    **row,
                    "given": found_share(row["answer"], row["question"], sources, STOPWORDS),
                    "cited_share": found_share(row["answer"], row["question"], cited, STOPWORDS) if cited else 0.0,
                }
            )
    table = []
    for signal in ("given", "cited_share"):
        for threshold in THRESHOLDS:
            line = refused_by(scored, lambda r, s=signal, t=threshold: r[s] < t)
            table.append({"lookup": signal, "threshold": threshold, **line})
    print_table(table, ["lookup", "threshold", *KINDS, "gold_lost"])
    write_results(f"claim_check_{args.split}", {"split": args.split, "refused_by_check": table})


if __name__ == "__main__":
    main()
