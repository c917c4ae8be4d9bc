"""Should hybrid search lean towards dense search? Recall of the convex fusion with the dense
ranking weighted alpha and the keyword ranking 1 - alpha (dca's default: alpha 0.5, equal), on
the two sets where a retrieval rule may be chosen: SQuAD 2.0's calibration rows (1000-1499,
questions that reuse their paragraph's words) and the 32 paraphrased questions over dca's own
docs (benchmarks/data/docs_questions.jsonl). Same index, search and question sets as
bench_retrieval_quality.py; only the fusion's weights change (`fuse_convex(..., weights=)`).

The rule, decided before the sweep was first run (in the same session): a weight replaces 0.5 only if its recall@3 (dca
ask's k) is at least as high on both sets and higher on one.

    .venv/bin/python lab/fusion_weight_table.py      # lab/results/fusion_weight.json
    .venv/bin/python lab/fusion_weight_table.py --sets docs-more   # ..._docs-more.json: 36 more docs questions
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: dca and benchmarks/
from bench_retrieval_quality import DEFAULT_DATA, question_set

import dca.knowledge.retrieval as retrieval
from benchmarks._common import print_table, write_results
from dca.knowledge import SearchConfig

ALPHAS = (0.5, 0.6, 0.7, 0.8)
SETS = ("squad-calibration", "docs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", choices=(*SETS, "docs-more"), default=list(SETS))
    args = parser.parse_args()
    rows = []
    for name in args.sets:
        qset = question_set(name, DEFAULT_DATA[name])
        with qset.corpus(None) as (index, embedder):
            for alpha in ALPHAS:
                # dca's convex fusion with the dense ranking weighted alpha (0.5: exactly what ships)
                config = SearchConfig(k=3, mode="hybrid", dense_weight=None if alpha == 0.5 else alpha)
                r1 = r3 = 0
                for question, hit in zip(qset.questions, qset.hits, strict=True):
                    hits = retrieval.search(index, question, embedder=embedder, config=config)
                    first = next((h.rank for h in hits if hit(h.chunk)), None)
                    r1 += first == 1
                    r3 += first is not None
                n = len(qset.questions)
                rows.append({"set": name, "alpha_dense": alpha, "questions": n, "recall@1": r1 / n, "recall@3": r3 / n})
    print_table(rows, ["set", "alpha_dense", "questions", "recall@1", "recall@3"])
    write_results("fusion_weight" + ("" if args.sets == list(SETS) else "_" + "_".join(args.sets)), {"rows": rows})


if __name__ == "__main__":
    main()
