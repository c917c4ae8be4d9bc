"""The reasoning-strategy table of docs/RESULTS.md, read from eval run folders (not a benchmark
that runs anything: `benchmarks/reasoning_runs.sh` makes the runs).

For each run: accuracy, completion tokens and seconds per question, the ratio of seconds to
the base (the direct single pass), samples drawn per question and the vote share. Two rows
are derived from runs that hold them exactly: "program, no repair" from the program run
(greedy decoding makes the first attempt identical; a first attempt that failed scores 0),
and the plain majority of the verify run.

    .venv/bin/python benchmarks/reasoning_table.py benchmarks/results/eval/gsm8k-*
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _rows(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text(encoding="utf-8").splitlines() if line]


def _name(config: dict[str, Any]) -> str:
    strategy = config.get("strategy", "direct")
    if strategy == "cot":
        return f"cot, budget {config['budget']}"
    if strategy in ("vote", "program-vote", "mix"):
        return f"{strategy}, {'adaptive N<=' if config.get('adaptive', True) else 'N='}{config['samples']}"
    if strategy == "verify":
        return f"verify (self-judge), N={config['samples']}"
    if strategy == "program":
        return "program, with repair" if config.get("repair", True) else "program, no repair"
    return "direct (base)"


def summarize(run: Path, limit: int) -> list[dict[str, Any]]:
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    rows = _rows(run)[:limit] if limit else _rows(run)
    n = len(rows)
    if not n:
        return []
    primary = "accuracy" if "accuracy" in rows[0]["metrics"] else "em"

    def line(name: str, correct: list[float]) -> dict[str, Any]:
        samples = [len(r["reasoning"]["samples"]) for r in rows if r.get("reasoning")]
        shares = [r["reasoning"]["confidence"] for r in rows if r.get("reasoning")]
        return {
            "run": run.name,
            "strategy": name,
            "n": n,
            primary: round(sum(correct) / n, 3),
            "tokens/q": round(sum(r["completion_tokens"] for r in rows) / n, 1),
            "s/q": round(sum(r["seconds"] for r in rows) / n, 2),
            "samples/q": round(sum(samples) / len(samples), 2) if samples else 1,
            "vote share": round(sum(shares) / len(shares), 2) if shares and max(samples) > 1 else "",
            "forced": round(sum(r["reasoning"]["forced"] for r in rows if r.get("reasoning")) / n, 2)
            if config.get("strategy") in ("cot", "vote", "verify", "mix")  # the strategies that think
            else "",
        }

    out = [line(_name(config), [r["metrics"][primary] for r in rows])]
    if config.get("strategy") == "program" and config.get("repair", True):
        first = [r["metrics"][primary] if r["reasoning"]["samples"][0].get("attempts", 1) == 1 else 0.0 for r in rows]
        derived = line("program, no repair (first attempt of the run above)", first)
        derived["tokens/q"] = derived["s/q"] = "(see text)"
        out.append(derived)
    if config.get("strategy") == "verify":
        majority = line("majority vote of the same samples", [r["metrics"].get("majority_accuracy", 0.0) for r in rows])
        majority["s/q"] = majority["tokens/q"] = "(same samples)"
        out.append(majority)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="only the first N rows of each run")
    parser.add_argument("--base-seconds", type=float, default=8.7, help="seconds per question of the base")
    args = parser.parse_args()
    lines = [row for run in args.runs if (run / "results.jsonl").is_file() for row in summarize(run, args.limit)]
    columns = ["strategy", "n", "accuracy", "em", "tokens/q", "s/q", "x base s", "samples/q", "vote share", "forced"]
    columns = [c for c in columns if c == "x base s" or any(c in row for row in lines)]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in lines:
        if isinstance(row["s/q"], float):
            row["x base s"] = round(row["s/q"] / args.base_seconds, 2)
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")


if __name__ == "__main__":
    main()
