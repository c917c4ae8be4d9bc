"""Do cited answers cite the source that holds what they say? A replay on recorded SQuAD 2.0 runs
made with dca ask's cited prompt (`dca eval squad2 --style cited`, the default style).

Each citation marker [n] is paired with its claim (the answer text since the previous marker).
A citation is checked where the claim holds a gold answer: right if source n holds that answer
too. The replay "re-point" moves a citation to the source whose words cover the most of the
claim's content words (English function words left out), when that source covers at least
MARGIN more of them than the cited one, at any coverage of the cited one (the exploration);
the row "dca" is the rule dca's answers now apply (`dca.answer.citations.repoint_citations`:
only a cited source covering at most half of the claim moves, by a margin of 0.25). Each row
reports how many citations move and how many of the checked ones are then right.

    .venv/bin/python lab/citation_table.py RUN_DIR... [--margin 0.1 0.25 0.4] [--show]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: dca and benchmarks/
from benchmarks._common import print_table, run_rows
from dca.answer.citations import claims, coverage, repoint_citations
from dca.eval.datasets import load_squad2
from dca.knowledge.retrieval import STOPWORDS

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad2_dev" / "dev-v2.0.json"
WORD = re.compile(r"\w+")


def _norm(text: str) -> str:
    return " ".join(WORD.findall(text.lower()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--margin", type=float, nargs="+", default=[0.1, 0.25, 0.4])
    parser.add_argument("--show", action="store_true", help="print every moved or wrong citation")
    args = parser.parse_args()
    paragraphs = load_squad2(args.data).paragraphs
    table = []
    for run in args.runs:
        rows = run_rows(run)
        for margin in [*args.margin, None]:  # None: dca's own rule
            t = {
                "run": run.name,
                "margin": "dca" if margin is None else margin,
                "answers": len(rows),
                "cited": 0,
                "citations": 0,
            }
            t.update(out_of_range=0, checked=0, right=0, right_after=0, moved=0)
            for row in rows:
                sources = [paragraphs[p] for p in row["retrieved"]]
                found = list(claims(row["prediction"]))
                t["cited"] += bool(found)
                for _, claim, numbers in found:
                    for n in numbers:
                        t["citations"] += 1
                        if not 1 <= n <= len(sources):
                            t["out_of_range"] += 1
                            continue
                        cover = [coverage(claim, s, STOPWORDS) for s in sources]
                        best = max(range(len(sources)), key=cover.__getitem__)
                        if margin is None:
                            done = repoint_citations(f"{claim} [{n}]", sources, STOPWORDS)[1]
                            moved = done[0][1] if done else n
                        else:
                            moved = best + 1 if cover[best] >= cover[n - 1] + margin else n
                        t["moved"] += moved != n
                        golds = [g for g in row["gold"] if _norm(g) and _norm(g) in _norm(claim)]
                        wrong = False
                        if golds:
                            t["checked"] += 1
                            right = any(_norm(g) in _norm(sources[n - 1]) for g in golds)
                            t["right"] += right
                            t["right_after"] += any(_norm(g) in _norm(sources[moved - 1]) for g in golds)
                            wrong = not right
                        if args.show and margin == args.margin[0] and (moved != n or wrong):
                            print(
                                f"{row['question'][:60]!r}: {claim[:80]!r} cited [{n}] -> [{moved}], "
                                f"coverage {[round(c, 2) for c in cover]}{', gold cited wrong' if wrong else ''}"
                            )
            table.append(t)
    print_table(
        table,
        ["run", "margin", "answers", "cited", "citations", "out_of_range", "checked", "right", "right_after", "moved"],
    )


if __name__ == "__main__":
    main()
