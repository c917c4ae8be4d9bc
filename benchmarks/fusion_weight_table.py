"""Should hybrid search lean towards dense search? Recall of the convex fusion with the dense
ranking weighted alpha and the keyword ranking 1 - alpha (dca's default: alpha 0.5, equal), on
the two sets where a retrieval rule may be chosen: SQuAD 2.0's calibration rows (1000-1499,
questions that reuse their paragraph's words) and the 32 paraphrased questions over dca's own
docs (benchmarks/data/docs_questions.jsonl). Same index, search and question sets as
bench_retrieval_quality.py; only the fusion's weights change (dca's own normalisation).

The rule, decided before the sweep was first run (in the same session): a weight replaces 0.5 only if its recall@3 (dca
ask's k) is at least as high on both sets and higher on one.

    .venv/bin/python benchmarks/fusion_weight_table.py      # benchmarks/results/fusion_weight.json
"""

from __future__ import annotations

from _common import print_table, write_results
from bench_retrieval_quality import DEFAULT_DATA, question_set

import dca.knowledge.retrieval as retrieval
from dca.knowledge import SearchConfig

ALPHAS = (0.5, 0.6, 0.7, 0.8)
SETS = ("squad-calibration", "docs")


def weighted(alpha: float):  # type: ignore[no-untyped-def]
    """dca's convex fusion (min-max normalised scores) with weights alpha (dense), 1 - alpha."""

    def fuse(rankings: list[list[tuple[int, float]]]) -> list[tuple[int, float]]:
        scores: dict[int, float] = {}
        for ranking, weight in zip(rankings, (alpha, 1 - alpha), strict=True):
            if not ranking:
                continue
            low = min(score for _, score in ranking)
            spread = max(score for _, score in ranking) - low
            for chunk_id, score in ranking:
                scores[chunk_id] = scores.get(chunk_id, 0.0) + weight * ((score - low) / spread if spread > 0 else 1.0)
        return sorted(scores.items(), key=lambda item: -item[1])

    return fuse


def main() -> None:
    rows = []
    default = retrieval.fuse_convex
    try:
        for name in SETS:
            qset = question_set(name, DEFAULT_DATA[name])
            with qset.corpus(None) as (index, embedder):
                for alpha in ALPHAS:
                    retrieval.fuse_convex = weighted(alpha)  # what search() calls for fusion="convex"
                    r1 = r3 = 0
                    for question, hit in zip(qset.questions, qset.hits, strict=True):
                        hits = retrieval.search(
                            index, question, embedder=embedder, config=SearchConfig(k=3, mode="hybrid")
                        )
                        first = next((h.rank for h in hits if hit(h.chunk)), None)
                        r1 += first == 1
                        r3 += first is not None
                    n = len(qset.questions)
                    rows.append(
                        {"set": name, "alpha_dense": alpha, "questions": n, "recall@1": r1 / n, "recall@3": r3 / n}
                    )
    finally:
        retrieval.fuse_convex = default
    print_table(rows, ["set", "alpha_dense", "questions", "recall@1", "recall@3"])
    write_results("fusion_weight", {"rows": rows})


if __name__ == "__main__":
    main()
