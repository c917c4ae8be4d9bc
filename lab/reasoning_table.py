"""The reasoning-strategy table of lab/NOTEBOOK.md, read from eval run folders (not a benchmark
that runs anything: `lab/rounds/reasoning_runs.sh` makes the runs).

For each run: accuracy, completion tokens and seconds per question, the ratio of seconds to
the base (the direct single pass), samples drawn per question and the vote share. Two rows
are derived from runs that hold them exactly: "program, no repair" from the program run
(greedy decoding makes the first attempt identical; a first attempt that failed scores 0),
and the plain majority of the verify run. A fixed-N vote or verify run also gives the votes of
its first k samples (k = 3, 5 below N): the greedy sample first, then samples at the same
temperature, so its first k are drawn as a fixed-k run draws them (other random numbers,
the same distribution); their seconds are estimated from the run's time
in proportion to the samples' tokens (marked "est."). Below the table, for a verify run: how
well the judge's score and the vote share each tell right samples from wrong (AUROC).

    .venv/bin/python lab/reasoning_table.py lab/results/eval/gsm8k-*
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: dca and benchmarks/
from benchmarks._common import run_rows
from dca.eval.datasets import Example
from dca.eval.tasks import get_task
from dca.reasoning.vote import leader, tally


def _rows(run: Path) -> list[dict[str, Any]]:
    return run_rows(run)


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
    if config.get("strategy") in ("vote", "verify") and not config.get("adaptive", True):
        out.extend(_prefix_votes(config, rows, line, primary))
    if config.get("strategy") == "verify":
        majority = line("majority vote of the same samples", [r["metrics"].get("majority_accuracy", 0.0) for r in rows])
        majority["s/q"] = majority["tokens/q"] = "(same samples)"
        out.append(majority)
    return out


def _prefix_votes(config: dict[str, Any], rows: list[dict[str, Any]], line: Any, primary: str) -> list[dict[str, Any]]:
    """The majority (and, for verify, the best-scored answer) of each row's first k samples."""
    task = get_task(config["task"])
    out = []
    for k in (3, 5):
        if k >= config["samples"]:
            continue
        majority, best, tokens, seconds = [], [], 0.0, 0.0
        for row in rows:
            samples = row["reasoning"]["samples"]
            example = Example(id=row["id"], question=row["question"], answers=tuple(row["gold"]))
            finals = [s["final"] for s in samples[:k]]
            top, _ = leader(tally(finals), list(dict.fromkeys(f for f in finals if f)))
            majority.append(task.score(example, top, None, 0)[primary] if top else 0.0)
            scored = [s for s in samples[:k] if s["final"] and s.get("score") is not None]
            if scored:
                chosen = max(scored, key=lambda s: s["score"])["final"]
                best.append(task.score(example, chosen, None, 0)[primary])
            elif len(tally(finals)) <= 1:  # unanimous (the run skipped the judge): the vote's answer
                best.append(majority[-1])
            used = sum(s["reasoning_tokens"] + s["answer_tokens"] for s in samples[:k])
            total = sum(s["reasoning_tokens"] + s["answer_tokens"] for s in samples) or 1
            tokens += used
            seconds += row["seconds"] * used / total
        kinds = [("majority", majority)] + ([("verify (self-judge)", best)] if len(best) == len(rows) else [])
        for name, correct in kinds:
            derived = line(f"{name} of the first {k} samples (of the run above)", correct)
            derived["tokens/q"] = round(tokens / len(rows), 1)
            derived["s/q"] = f"{seconds / len(rows):.2f} est."
            derived["samples/q"] = k
            derived["vote share"] = ""
            out.append(derived)
    return out


def _auroc(right: list[float], wrong: list[float]) -> float:
    """The chance that a right sample outranks a wrong one (ties count half)."""
    wins = sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return wins / (len(right) * len(wrong))


def judge_separation(run: Path, limit: int) -> str:
    """How well the verify run's judge score, and the share of the samples that gave the same
    answer, tell right samples from wrong ones, over the questions the judge scored (the
    unanimous ones skip it)."""
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    task = get_task(config["task"])
    rows = _rows(run)[:limit] if limit else _rows(run)
    judged: dict[bool, list[float]] = {True: [], False: []}
    shared: dict[bool, list[float]] = {True: [], False: []}
    questions = 0
    for row in rows:
        samples = row["reasoning"]["samples"]
        if any(s.get("score") is None for s in samples):
            continue
        questions += 1
        example = Example(id=row["id"], question=row["question"], answers=tuple(row["gold"]))
        finals = [s["final"] for s in samples]
        for s in samples:
            right = bool(s["final"]) and task.score(example, s["final"], None, 0)["accuracy"] == 1.0
            judged[right].append(s["score"])
            shared[right].append(finals.count(s["final"]) / len(finals))
    if not (judged[True] and judged[False]):
        return f"{run.name}: no judged question has both right and wrong samples"
    return (
        f"{run.name}: over the {len(judged[True]) + len(judged[False])} samples of the {questions} judged questions "
        f"({len(judged[True])} right): AUROC of the judge's P(correct) {_auroc(judged[True], judged[False]):.3f}, "
        f"of the answer's vote share {_auroc(shared[True], shared[False]):.3f}"
    )


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
        elif str(row["s/q"]).endswith(" est."):
            row["x base s"] = f"{float(row['s/q'].split()[0]) / args.base_seconds:.2f} est."
        print("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    for run in args.runs:
        config_file = run / "config.json"
        if config_file.is_file() and json.loads(config_file.read_text(encoding="utf-8")).get("strategy") == "verify":
            print("\n" + judge_separation(run, args.limit))


if __name__ == "__main__":
    main()
