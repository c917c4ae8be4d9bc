"""Answer quality against sources read (issue 31): `dca eval` RAG short answers at k = 1..5 and
with the adaptive cutoff, on SQuAD 2.0 answerable first 100 and HotpotQA dev 100.

Every setting is a real `dca eval` run folder (lab/results/eval/TASK-rag-short-kN and
-kcCUT), the same as

    dca eval squad2 --data $D/squad2_dev/dev-v2.0.json --answerable-only --style short \
        --max-tokens 32 --limit 100 --k N [--k-cutoff C] --out $E/squad2-rag-short-kN

but run question by question across the settings in one process: the prompts of one question
at k and k+1 share the system prompt and the first k sources, so llama.cpp's prefix reuse reads
each source once instead of once per setting (about 2.5x less CPU). A setting's answer is what
its own run gives (greedy, the same prompt); its seconds are not comparable across settings
(later settings find their prefix cached), so the table compares prompt tokens, the prefill a
fresh question pays. Resumable: a rerun skips the answers already in the run folders.

    .venv/bin/python benchmarks/bench_k_sweep.py [--data-dir ../shared/data] [--limit 100]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from _common import RESULTS, print_table, sign_test, write_results

from dca.config import Paths
from dca.eval.runner import eval_config, run_eval
from dca.files import complete_jsonl_lines

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EVAL = RESULTS / "eval"


def _settings(cutoffs: list[float]) -> list[tuple[str, int, float]]:
    """(folder suffix, k, cutoff): k = 1..5, then each cutoff with k = 5 the most."""
    return [(f"k{k}", k, 0.0) for k in range(1, 6)] + [(f"kc{round(c * 100):03d}", 5, c) for c in cutoffs]


def _tasks(data_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("squad2", {"data": str(data_dir / "squad2_dev" / "dev-v2.0.json"), "answerable_only": True}),
        ("hotpotqa", {"data": str(data_dir / "hotpotqa" / "hotpot_dev_distractor_100.json")}),
    ]


def _rows(folder: Path, limit: int) -> list[dict[str, Any]]:
    return [json.loads(line) for line in complete_jsonl_lines(folder / "results.jsonl")][:limit]


def summarize(task: str, folders: dict[str, Path], limit: int) -> list[dict[str, Any]]:
    """One table row per setting: EM, F1, sources kept, gold recall, prompt tokens; EM paired with k=5."""
    base = {r["id"]: r for r in _rows(folders["k5"], limit)}
    table = []
    for name, folder in folders.items():
        rows = [r for r in _rows(folder, limit) if r["id"] in base]
        if not rows:
            continue
        n = len(rows)
        gained = sum(r["metrics"]["em"] > base[r["id"]]["metrics"]["em"] for r in rows)
        lost = sum(r["metrics"]["em"] < base[r["id"]]["metrics"]["em"] for r in rows)
        recall = [m for r in rows for key, m in r["metrics"].items() if key.startswith("recall@")]
        table.append(
            {
                "task": task,
                "setting": name,
                "n": n,
                "em": sum(r["metrics"]["em"] for r in rows) / n,
                "f1": sum(r["metrics"]["f1"] for r in rows) / n,
                "sources": sum(len(r["retrieved"] or []) for r in rows) / n,
                "gold_recall": sum(recall) / max(1, len(recall)),
                "prompt_tokens": sum(r["prompt_tokens"] for r in rows) / n,
                "em_vs_k5": f"+{gained} -{lost} (p {sign_test(gained, lost):.2f})",
            }
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--cutoff", type=float, action="append", default=None, help="adaptive cutoffs (0.85)")
    parser.add_argument("--tasks", default="squad2,hotpotqa")
    parser.add_argument("--table-only", action="store_true", help="no model: the table of what is recorded")
    args = parser.parse_args()
    settings = _settings(args.cutoff or [0.85])
    paths = Paths.resolve()
    generator = embedder = None
    if not args.table_only:
        from dca.knowledge.embedding import load_embedder
        from dca.runtime.remote import load_generator

        generator, embedder = load_generator(paths=paths), load_embedder(paths=paths)
    table = []
    for task, data in _tasks(args.data_dir):
        if task not in args.tasks.split(","):
            continue
        folders = {name: EVAL / f"{task}-rag-short-{name}" for name, _, _ in settings}
        began = time.perf_counter()
        for i in range(1, args.limit + 1 if not args.table_only else 1):
            for name, k, cutoff in settings:
                config = eval_config(
                    task=task, mode="rag", style="short", max_tokens=32, k=k, k_cutoff=cutoff, limit=i, **data
                )
                run_eval(config, out=folders[name], paths=paths, generator=generator, embedder=embedder)
            print(f"{task} {i}/{args.limit} {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
        table += summarize(task, folders, args.limit)
    columns = ["task", "setting", "n", "em", "f1", "sources", "gold_recall", "prompt_tokens", "em_vs_k5"]
    print_table(table, columns)
    write_results("k_sweep", {"limit": args.limit, "settings": settings, "table": table})


if __name__ == "__main__":
    main()
