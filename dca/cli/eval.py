"""``dca eval TASK --data PATH`` (one subcommand per task) and ``dca eval report RUN_DIR...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dca.cli.common import (
    BackendOpt,
    BaseUrlOpt,
    EvalSetting,
    JsonFlag,
    StoreOpt,
    print_json,
    progress_bar,
    resumes,
    user_errors,
)
from dca.cli.options import answer_options, with_settings

TASK_HELP = {
    "gsm8k": "Grade-school math word problems (accuracy of the final number).",
    "math500": "MATH-500 competition problems (accuracy of the final answer).",
    "squad2": "SQuAD 2.0 reading comprehension over its paragraphs (EM/F1, RAG by default).",
    "hotpotqa": "HotpotQA multi-hop questions over their paragraphs (EM/F1, RAG by default).",
}


class _Tasks(TyperGroup):
    """An unknown task is one line and exit 1, as other bad input is (not click's usage box)."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            typer.echo(f"error: unknown task {args[0]!r}; use one of: {', '.join(self.commands)}", err=True)
            raise typer.Exit(1)
        return super().resolve_command(ctx, args)


eval_app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[n]" stays "[n]"
    cls=_Tasks,
    help="Evaluate a model on a task (a resumable run folder), or compare runs with `report`.",
    no_args_is_help=True,
)


@answer_options("eval")
def eval_command(
    ctx: typer.Context,
    data: Annotated[Path | None, typer.Option(help="The dataset file.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Generator (default: the catalog default).")
    ] = None,
    index: Annotated[
        str | None, typer.Option("--index", "-i", help="rag: index to search (default: built from the data).")
    ] = None,
    setting: Annotated[
        EvalSetting | None,
        typer.Option(help="Without or with an index (default: the task's)."),
    ] = None,
    offset: Annotated[int, typer.Option(help="Skip the first N examples (a dev split of a train file).")] = 0,
    limit: Annotated[int, typer.Option(help="First N examples after the offset (0 = all).")] = 0,
    answerable_only: Annotated[bool, typer.Option(help="squad2: answerable questions only.")] = False,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/TASK-MODE-STRATEGY-MODEL).")] = None,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
    *,
    options: dict[str, Any],
) -> None:
    """Evaluate a model on this task; a rerun of the same command resumes the run folder. The
    answer options are `dca ask`'s, with its defaults."""
    from dca.errors import ConfigError
    from dca.eval.runner import eval_config, run_eval

    task = str(ctx.info_name)
    if data is None:
        raise ConfigError(f"give the dataset with --data (e.g. ../shared/data for {task})")
    config = eval_config(
        task=task,
        data=str(data),
        model=model,
        index=index,
        mode=setting or "",
        offset=offset,
        limit=limit,
        answerable_only=answerable_only,
        seed=seed,
        **with_settings(options),
    )
    strategy = config.ask.reasoning.strategy
    folder = out or Path("runs") / f"{task}-{setting or 'default'}-{strategy}-{model or 'default'}"

    with progress_bar(unit="questions") as bar:

        def progress(done: int, total: int, metric: float) -> None:
            bar(f"{task}: running {metric:.3f}", done, total)

        summary = run_eval(config, out=folder, progress=progress)
    if as_json:
        print_json(summary)
        return
    typer.echo((folder / "summary.md").read_text(encoding="utf-8"))
    typer.echo(f"run folder: {folder}")


def report_command(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR...", help="The eval run folders to compare.")],
    out: Annotated[Path, typer.Option(help="Where report.md and report.png go.")] = Path("runs") / "report",
    as_json: JsonFlag = False,
) -> None:
    """Compare run folders: a table and a plot of quality against seconds and tokens per question."""
    from dca.eval.report import load_summary, run_cpu, write_report

    md, png = write_report(list(runs), out)
    if as_json:
        summaries = [load_summary(run) for run in runs]
        print_json(
            {
                "report": str(md),
                "plot": str(png),
                "runs": [
                    {
                        "run": str(run),
                        "task": s["task"],
                        "n": s["n"],
                        "metric": s["primary_metric"],
                        "value": s["metrics"][s["primary_metric"]],
                        "per_question": s["per_question"],
                        "config": s["config"],
                        "cpu": run_cpu(s),
                    }
                    for run, s in zip(runs, summaries, strict=True)
                ],
            }
        )
        return
    typer.echo(md.read_text(encoding="utf-8"))
    typer.echo(f"written {md} and {png}")


def register(app: typer.Typer) -> None:
    from dca.eval.tasks import TASKS

    for task in TASKS:
        eval_app.command(task, help=TASK_HELP.get(task, f"Evaluate on {task}."))(user_errors(resumes(eval_command)))
    eval_app.command("report")(user_errors(report_command))
    app.add_typer(eval_app, name="eval")
