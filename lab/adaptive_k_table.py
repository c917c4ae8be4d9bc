"""Adaptive k (issue 31), from retrieval alone: how many sources each cutoff keeps, and whether
the gold paragraph is still among them.

The SQuAD 2.0 and HotpotQA paragraphs are indexed as `dca eval` does (dca's own ingest, hybrid
search, k=5); for every question, the hits are cut by `adaptive_k` at each cutoff. The cutoff
is chosen on SQuAD answerable questions that no evaluation uses (``--calibration-offset`` on,
after the first 300 that squad2-rag-short reads): the one that keeps the fewest sources while
its gold-paragraph recall stays within ``--max-recall-loss`` of k=5's. The table reports it on
the evaluation sets (SQuAD answerable first 100, HotpotQA dev 100: recall of both gold
paragraphs). The answer quality at each k is measured with `dca eval` (lab/NOTEBOOK.md).

    .venv/bin/python lab/adaptive_k_table.py [--data-dir ../shared/data]

Results go to lab/results/adaptive_k_convex.json (the cutoff compares fused scores, whose
scale the fusion sets; lab/results/adaptive_k_rrf.json was made with reciprocal rank fusion,
which left dca on 2026-12-07).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: dca and benchmarks/
from benchmarks._common import paragraph_index, print_table, write_results
from dca.eval.datasets import load_hotpotqa, load_squad2, paragraph_of
from dca.knowledge import SearchConfig, search
from dca.knowledge.retrieval import adaptive_k

CUTOFFS = (0.0, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _ranked(paragraphs: tuple[str, ...], questions: list[tuple[str, set[int]]], k: int) -> list[dict[str, Any]]:
    """For each (question, gold paragraphs): the hits and the gold paragraph numbers."""
    with paragraph_index(paragraphs) as (index, embedder):
        config = SearchConfig(k=k, mode="hybrid")
        return [{"hits": search(index, q, embedder=embedder, config=config), "gold": gold} for q, gold in questions]


def _at(rows: list[dict[str, Any]], cutoff: float, k: int | None = None) -> dict[str, Any]:
    """Mean sources kept, gold recall and source characters: adaptive at ``cutoff``, or the first ``k``."""
    kept = recall = chars = 0.0
    for row in rows:
        hits = row["hits"][:k] if k else adaptive_k(row["hits"], cutoff)
        found = {paragraph_of(h.chunk.path) for h in hits}
        kept += len(hits)
        chars += sum(len(h.chunk.text) for h in hits)
        recall += len(found & row["gold"]) / len(row["gold"])
    n = max(1, len(rows))
    rule = f"k={k}" if k else f"cutoff {cutoff}"
    return {"rule": rule, "cutoff": cutoff, "mean_k": kept / n, "recall": recall / n, "source_chars": chars / n}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--calibration-offset", type=int, default=1000)
    parser.add_argument("--calibration", type=int, default=500)
    parser.add_argument("--max-recall-loss", type=float, default=0.01)
    args = parser.parse_args()
    began = time.perf_counter()
    squad = load_squad2(args.data_dir / "squad2_dev" / "dev-v2.0.json")
    answerable = [q for q in squad.questions if q.answers]
    calibration_q = answerable[args.calibration_offset : args.calibration_offset + args.calibration]
    squad_rows = _ranked(
        squad.paragraphs,
        [(q.question, {q.paragraph}) for q in answerable[:100] + calibration_q],
        args.k,
    )
    evaluation, calibration = squad_rows[:100], squad_rows[100:]
    hotpot = load_hotpotqa(args.data_dir / "hotpotqa" / "hotpot_dev_distractor_100.json")
    hotpot_rows = _ranked(hotpot.paragraphs, [(e.question, set(e.support)) for e in hotpot.examples], args.k)
    table = []
    sets = (("squad calibration", calibration), ("squad first 100", evaluation), ("hotpotqa 100", hotpot_rows))
    for name, rows in sets:
        for fixed in range(2, args.k):
            table.append({"set": name, **_at(rows, 0.0, fixed)})
        for cutoff in CUTOFFS:
            table.append({"set": name, **_at(rows, cutoff)})
    for row in table:
        for key in ("mean_k", "recall", "source_chars"):
            row[key] = round(row[key], 4)
    full = next(r for r in table if r["set"] == "squad calibration" and r["rule"] == "cutoff 0.0")
    fits = [
        r for r in table if r["set"] == "squad calibration" and r["recall"] >= full["recall"] - args.max_recall_loss
    ]
    chosen = min(fits, key=lambda r: (r["mean_k"], -r["cutoff"]))["cutoff"]
    print_table(table, ["set", "rule", "mean_k", "recall", "source_chars"])
    print(f"chosen cutoff {chosen} (fewest sources within {args.max_recall_loss} recall of k={args.k} on calibration)")
    write_results(
        "adaptive_k_convex",
        {
            "k": args.k,
            "fusion": "convex",
            "calibration": f"SQuAD 2.0 answerable questions {args.calibration_offset}-"
            f"{args.calibration_offset + len(calibration_q) - 1}",
            "max_recall_loss": args.max_recall_loss,
            "chosen_cutoff": chosen,
            "seconds": round(time.perf_counter() - began, 1),
            "table": table,
        },
    )


if __name__ == "__main__":
    main()
