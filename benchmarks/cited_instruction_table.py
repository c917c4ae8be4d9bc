"""Which instruction makes the default model write a cited answer in words, not "[1]" alone?

The cited style's instruction before 2026-12-06 ("before") was answered with a citation marker
alone on about a quarter of short factual questions, which dca then asks again with the short
style's instruction (a phrase); "sentence" has been dca's instruction since
(docs/RESULTS.md, "Asked for a full sentence"). This runs `dca eval` with the cited instruction
replaced by a candidate (the same prompt otherwise: same system prompt, sources, question), and
records which questions came back bare. ``--no-retry`` keeps a bare answer as it is (to see what
the instruction alone does); otherwise dca's retry runs as it ships.

    .venv/bin/python benchmarks/cited_instruction_table.py run --variant sentence --no-retry \\
        --out $E/RUN -- eval squad2 --data ... --k 3 --max-tokens 96 ...   # a dca eval command line
    .venv/bin/python benchmarks/cited_instruction_table.py table BASE RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import paired_change, print_table, run_rows

from dca.answer import is_refusal, says_nothing

_REFUSE = "If the sources do not contain the answer, say so."
VARIANTS = {
    # the cited instruction until 2026-12-06 (the -sayit runs were made with it)
    "before": (
        "Answer the question below using only the sources above. End each sentence with the number of the "
        "source it comes from in square brackets, like [1]. " + _REFUSE
    ),
    # dca's since (dca.answer.prompt.INSTRUCTION_GROUNDED)
    "sentence": (
        "Answer the question below in a full sentence, using only the sources above. End each sentence with "
        "the number of the source it comes from in square brackets, like [1]. " + _REFUSE
    ),
    "words-first": (
        "Answer the question below using only the sources above. Write the answer in words, then the number "
        "of the source it comes from in square brackets, like [1]. " + _REFUSE
    ),
}


def run(variant: str, retry: bool, out: Path, argv: list[str]) -> None:
    import dca.pipeline as pipeline
    from dca.answer import prompt
    from dca.cli import app
    from dca.reasoning.events import AnswerText

    prompt.STYLES["cited"] = VARIANTS[variant]
    out.mkdir(parents=True, exist_ok=True)
    asked = out / "asked_again.jsonl"
    ships = pipeline._say_it

    def say_it(*args: Any, **kwargs: Any) -> Any:
        called = inspect.signature(ships).bind(*args, **kwargs).arguments  # by name, however it is called
        with asked.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"question": called["question"], "bare": called["bare"]}) + "\n")
        bare = called["bare"]
        if retry:
            return (yield from ships(*args, **kwargs))
        yield AnswerText(bare)
        return bare

    pipeline._say_it = say_it  # type: ignore[assignment]
    app([*argv, "--out", str(out)], standalone_mode=False)


def describe(base: Path, run_dir: Path) -> dict[str, Any]:
    old = {r["id"]: r for r in run_rows(base)}
    new = {r["id"]: r for r in run_rows(run_dir)}
    ids = [i for i in new if i in old]
    asked = run_dir / "asked_again.jsonl"
    bare_first = {json.loads(line)["question"] for line in asked.read_text().splitlines()} if asked.exists() else set()
    row: dict[str, Any] = {"run": run_dir.name, "questions": len(ids)}
    row["bare_first"] = sum(new[i]["question"] in bare_first for i in ids)
    row["bare_final"] = sum(says_nothing(new[i]["prediction"]) for i in ids)
    row["refused"] = sum(is_refusal(new[i]["prediction"]) for i in ids)
    unanswerable = [i for i in ids if not new[i]["gold"]]  # SQuAD 2.0 without --answerable-only
    if unanswerable:
        row["unanswerable_refused"] = (
            f"{sum(is_refusal(old[i]['prediction']) for i in unanswerable)} -> "
            f"{sum(is_refusal(new[i]['prediction']) for i in unanswerable)} of {len(unanswerable)}"
        )
    for metric in ("correct", "f1"):
        row[metric] = paired_change(old, new, ids, metric)
    row["tokens"] = f"{sum(new[i]['completion_tokens'] for i in ids) / max(1, len(ids)):.1f}"
    row["s_per_q"] = f"{sum(new[i]['seconds'] for i in ids) / max(1, len(ids)):.2f}"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run")
    r.add_argument("--variant", choices=VARIANTS, required=True)
    r.add_argument("--no-retry", action="store_true")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("argv", nargs=argparse.REMAINDER)
    t = sub.add_parser("table")
    t.add_argument("base", type=Path)
    t.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        run(args.variant, not args.no_retry, args.out, [a for a in args.argv if a != "--"])
    else:
        rows = [describe(args.base, run_dir) for run_dir in args.runs]
        print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
