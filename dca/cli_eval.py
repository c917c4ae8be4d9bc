"""``dca eval TASK --data PATH`` and ``dca eval report RUN_DIR...``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from dca.cli_common import JsonFlag, print_json, resumes, user_errors


def eval_command(
    task: Annotated[str, typer.Argument(help="gsm8k, math500, squad2, hotpotqa, or report.")],
    runs: Annotated[list[Path] | None, typer.Argument(help="report: the run folders to compare.")] = None,
    data: Annotated[Path | None, typer.Option(help="The dataset file.")] = None,
    model: Annotated[str | None, typer.Option(help="Generator (default: the catalog default).")] = None,
    adapter: Annotated[
        str | None,
        typer.Option(
            help="LoRA adapter name or path; reasoning strategies default to the reasoning adapter; none: off."
        ),
    ] = None,
    index: Annotated[str | None, typer.Option(help="rag: index to search (default: built from the data).")] = None,
    mode: Annotated[str, typer.Option(help="closed-book or rag (default: the task's).")] = "",
    limit: Annotated[int, typer.Option(help="First N examples (0 = all).")] = 0,
    answerable_only: Annotated[bool, typer.Option(help="squad2: answerable questions only.")] = False,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    k: Annotated[int, typer.Option("--k", help="Sources retrieved per question (rag).")] = 5,
    max_tokens: Annotated[int, typer.Option(help="Most tokens per answer.")] = 512,
    answer_style: Annotated[
        str, typer.Option(help="rag: cited (dca ask's prompt) or short (the answer phrase alone, for EM/F1).")
    ] = "cited",
    strategy: Annotated[str, typer.Option(help="direct, cot, vote, program, mix or verify.")] = "direct",
    samples: Annotated[int, typer.Option(help="vote/mix/verify: most samples per question.")] = 5,
    adaptive: Annotated[bool, typer.Option("--adaptive/--fixed", help="vote/mix: stop once decided.")] = True,
    greedy_first: Annotated[
        bool,
        typer.Option("--greedy-first/--all-sampled", help="vote/mix/verify: the first sample of each kind is greedy."),
    ] = True,
    budget: Annotated[int, typer.Option(help="Most thinking tokens per sample.")] = 512,
    min_thinking: Annotated[int, typer.Option(help="Extend thinking shorter than this many tokens.")] = 0,
    repair: Annotated[bool, typer.Option("--repair/--no-repair", help="program: one repair after an error.")] = True,
    searches: Annotated[int, typer.Option(help="rag: most searches during reasoning (0: sources up front).")] = 0,
    fallback: Annotated[
        bool, typer.Option("--fallback/--no-fallback", help="rag with searches: plain RAG when no answer comes.")
    ] = True,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/TASK-MODE-STRATEGY-MODEL).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Evaluate a model on a task (resumable run folder), or compare runs with `report`."""
    if task == "report":
        from dca.eval.report import write_report

        if not runs:
            raise typer.BadParameter("give the run folders to compare: dca eval report RUN_DIR...")
        md, png = write_report(list(runs), out or Path("runs") / "report")
        typer.echo(md.read_text(encoding="utf-8"))
        typer.echo(f"written {md} and {png}")
        return
    from dca.errors import ConfigError
    from dca.eval.runner import EvalConfig, run_eval

    if runs:
        raise ConfigError(f"unexpected arguments after the task: {' '.join(map(str, runs))}")
    if data is None:
        raise ConfigError(f"give the dataset with --data (e.g. ../shared/data for {task})")
    config = EvalConfig(
        task=task,
        data=str(data),
        model=model,
        adapter=adapter,
        index=index,
        mode=mode,
        limit=limit,
        answerable_only=answerable_only,
        seed=seed,
        k=k,
        max_tokens=max_tokens,
        answer_style=answer_style,
        strategy=strategy,
        samples=samples,
        adaptive=adaptive,
        greedy_first=greedy_first,
        budget=budget,
        min_thinking=min_thinking,
        repair=repair,
        searches=searches,
        fallback=fallback,
    )
    folder = out or Path("runs") / f"{task}-{mode or 'default'}-{strategy}-{model or 'default'}"

    started = time.monotonic()
    first_done: list[int] = []

    def progress(done: int, total: int, metric: float) -> None:
        if not sys.stderr.isatty():
            return
        first_done.append(done)
        new = done - first_done[0] + 1  # examples done in this process (a resumed run skips some)
        eta = (time.monotonic() - started) / new * (total - done)
        sys.stderr.write(f"\r{task}: {done}/{total}  running {metric:.3f}  ETA {eta / 60:.1f} min   ")
        sys.stderr.flush()

    summary = run_eval(config, out=folder, progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if as_json:
        print_json(summary)
        return
    typer.echo((folder / "summary.md").read_text(encoding="utf-8"))
    typer.echo(f"run folder: {folder}")


def register(app: typer.Typer) -> None:
    app.command("eval")(user_errors(resumes(eval_command)))
