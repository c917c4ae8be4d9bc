"""Which instruction makes the default model write a cited answer in words, not "[1]" alone?

The cited style's instruction before 2026-12-06 ("before") was answered with a citation marker
alone on about a quarter of short factual questions, which dca then asks again with the short
style's instruction (a phrase); "sentence" has been dca's instruction since
(lab/NOTEBOOK.md, "Asked for a full sentence"). This runs `dca eval` with the cited instruction
replaced by a candidate (the same prompt otherwise: same system prompt, sources, question), and
records which questions came back bare. ``--no-retry`` keeps a bare answer as it is (to see what
the instruction alone does); otherwise dca's retry runs as it ships.

    .venv/bin/python lab/cited_instruction_table.py run --variant sentence --no-retry \\
        --out $E/RUN --task squad2 --data $D/squad2_dev/dev-v2.0.json --set answerable_only=true \\
        --set k=3 --set max_tokens=96 --set limit=100   # EvalConfig's fields
    .venv/bin/python lab/cited_instruction_table.py table BASE RUN [RUN ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import paired_change, print_table, run_rows
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


def run(variant: str, retry: bool, out: Path, eval_options: dict[str, Any]) -> None:
    """`dca eval` with the cited instruction replaced by ``variant`` and the bare-citation check
    logging each bare answer (and, without ``retry``, keeping it): both through the pipeline's
    stages, nothing patched."""
    from dataclasses import replace

    from dca.answer.prompt import INSTRUCTION_GROUNDED
    from dca.eval.runner import eval_config, run_eval
    from dca.pipeline import STAGES, bare_citation_retry, fit_prompt

    out.mkdir(parents=True, exist_ok=True)
    asked = out / "asked_again.jsonl"

    def prompt(run: Any) -> Any:
        yield from fit_prompt(run)
        for message in run.parts.messages:
            message["content"] = message["content"].replace(INSTRUCTION_GROUNDED, VARIANTS[variant])

    def logged_retry(run: Any) -> Any:
        if run.held is not None and run.text and says_nothing(run.text):
            with asked.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"question": run.question, "bare": run.text}) + "\n")
            if not retry:
                held, run.held = run.held, None
                yield from held  # the bare answer as it came
                return
        yield from bare_citation_retry(run)

    stages = replace(STAGES, prompt=prompt, checks=(logged_retry, *STAGES.checks[1:]))
    run_eval(eval_config(**eval_options), out=out, stages=stages)


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
    r.add_argument("--task", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE", help="an EvalConfig field (JSON value)")
    t = sub.add_parser("table")
    t.add_argument("base", type=Path)
    t.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    if args.command == "run":
        options: dict[str, Any] = {"task": args.task, "data": args.data}
        for item in args.set:
            key, _, value = item.partition("=")
            options[key] = json.loads(value) if value[:1] in '-0123456789tfn[{"' else value
        run(args.variant, not args.no_retry, args.out, options)
    else:
        rows = [describe(args.base, run_dir) for run_dir in args.runs]
        print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
