"""``dca eval TASK --data PATH`` (one subcommand per task) and ``dca eval report RUN_DIR...``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dca.cli.common import (
    AnswerStyle,
    BackendOpt,
    BaseUrlOpt,
    EvalSetting,
    Fusion,
    JsonFlag,
    ProgramPrompt,
    StoreOpt,
    StrategyName,
    VerifySamples,
    print_json,
    progress_bar,
    resumes,
    user_errors,
)
from dca.pipeline.config import AskConfig

_ASK = AskConfig()  # `dca ask`'s defaults: the fields eval shares take them
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


def eval_command(
    ctx: typer.Context,
    data: Annotated[Path | None, typer.Option(help="The dataset file.")] = None,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Generator (default: the catalog default).")
    ] = None,
    adapter: Annotated[
        str | None,
        typer.Option(
            help="LoRA adapter name or path; reasoning strategies default to the reasoning adapter; none: off."
        ),
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
    k: Annotated[
        int, typer.Option("--k", "-k", help="Sources retrieved per question (rag; dca ask's default).")
    ] = _ASK.k,
    k_cutoff: Annotated[
        float, typer.Option(help="rag: adaptive k, drop sources below this fraction of the best one's score.")
    ] = 0.0,
    fusion: Annotated[
        Fusion, typer.Option(help="rag: how hybrid search fuses dense and keyword rankings (docs/knowledge.md).")
    ] = "convex",
    max_tokens: Annotated[int, typer.Option(help="Most tokens per answer.")] = 512,
    style: Annotated[
        AnswerStyle,
        typer.Option(
            help="rag: cited (dca ask's prompt) or short (the answer phrase alone, for EM/F1).",
        ),
    ] = "cited",
    strategy: Annotated[StrategyName, typer.Option(help="How to reason (docs/reasoning.md).")] = "direct",
    samples: Annotated[int, typer.Option(help="vote/program-vote/mix/verify: most samples per question.")] = 5,
    adaptive: Annotated[bool, typer.Option("--adaptive/--fixed", help="votes and verify: stop once decided.")] = True,
    greedy_first: Annotated[
        bool,
        typer.Option("--greedy-first/--all-sampled", help="votes: the first sample of each kind is greedy."),
    ] = True,
    budget: Annotated[int, typer.Option(help="Most thinking tokens per sample.")] = 512,
    min_thinking: Annotated[int, typer.Option(help="Extend thinking shorter than this many tokens.")] = 0,
    repair: Annotated[bool, typer.Option("--repair/--no-repair", help="program: one repair after an error.")] = True,
    program_examples: Annotated[
        int, typer.Option(help="Programs: worked examples shown before each question (few-shot).")
    ] = 0,
    program_prompt: Annotated[
        ProgramPrompt, typer.Option(help="Programs: the instruction (docs/reasoning.md, design notes).")
    ] = "plain",
    sure_above: Annotated[
        float | None,
        typer.Option(
            help="votes and verify: answer with the greedy first sample alone when its certainty is this high."
        ),
    ] = None,
    searches: Annotated[int, typer.Option(help="rag: most searches during reasoning (0: sources up front).")] = 0,
    fallback: Annotated[
        bool, typer.Option("--fallback/--no-fallback", help="rag with searches: plain RAG when no answer comes.")
    ] = True,
    verifier: Annotated[
        str | None,
        typer.Option(
            help="verify: a learned verifier (NAME.probe.json or NAME.verifier.json of `dca train`, a verifier of "
            "`dca models list`, or none); default: the catalog's verifier for the model, when it has one."
        ),
    ] = None,
    verify_on: Annotated[
        VerifySamples, typer.Option(help="verify: the samples drawn and weighed: thoughts, programs, or both.")
    ] = "program",
    min_support: Annotated[
        float | None,
        typer.Option(
            help="rag: ask the model whether the sources state its answer; below this P(yes) answer "
            "'not in the sources' (0: ask and record it only)."
        ),
    ] = None,
    support_question: Annotated[
        str, typer.Option(help="rag: the wording of the grounded check (stated | answers; docs/answering.md).")
    ] = "stated",
    grounded_probe: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="rag, with --min-support: score the grounded check with this probe on the model's hidden "
            "state instead of its P(yes) (docs/answering.md).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run folder (default: runs/TASK-MODE-STRATEGY-MODEL).")] = None,
    as_json: JsonFlag = False,
    store: StoreOpt = None,
    backend: BackendOpt = None,
    base_url: BaseUrlOpt = None,
) -> None:
    """Evaluate a model on this task; a rerun of the same command resumes the run folder."""
    from dca.errors import ConfigError
    from dca.eval.runner import EvalConfig, run_eval

    task = str(ctx.info_name)
    if data is None:
        raise ConfigError(f"give the dataset with --data (e.g. ../shared/data for {task})")
    config = EvalConfig(
        task=task,
        data=str(data),
        model=model,
        adapter=adapter,
        verifier=verifier,
        verify_on=verify_on,
        min_support=min_support,
        support_question=support_question,
        grounded_probe=None if grounded_probe is None else str(grounded_probe),
        index=index,
        mode=setting or "",
        offset=offset,
        limit=limit,
        answerable_only=answerable_only,
        seed=seed,
        k=k,
        k_cutoff=k_cutoff,
        fusion=fusion,
        max_tokens=max_tokens,
        answer_style=style,
        strategy=strategy,
        samples=samples,
        adaptive=adaptive,
        greedy_first=greedy_first,
        budget=budget,
        min_thinking=min_thinking,
        repair=repair,
        program_examples=program_examples,
        program_prompt=program_prompt,
        sure_above=sure_above,
        searches=searches,
        fallback=fallback,
    )
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
