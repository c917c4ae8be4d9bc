"""``dca train ...``: make the reasoning adapter: collect traces, SFT, RL rounds, GGUF export."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from dca.cli.common import JsonFlag, PairAnchor, TraceFormat, print_json, resumes, user_errors
from dca.cli.options import config_options
from dca.train.base import RunFolder
from dca.train.configs import DPOConfig, GRPOConfig, SFTConfig

if TYPE_CHECKING:
    SolutionFormat = str
else:
    SolutionFormat = Literal["program", "cot"]

# The base model of the commands that are not a LoRA run of dca/train/configs.py (those derive
# their flags from their config).
BaseModel = Annotated[str | None, typer.Option("--model", "-m", help="Base model: catalog name or GGUF path.")]
RunDir = Annotated[Path | None, typer.Option("--run-dir", help="Run folder (default runs/train/NAME).")]


def _step_progress(label: str, *shown: str) -> Callable[[dict[str, object]], None]:
    """A progress line for an optimizer loop's log lines (on a terminal): step, the ``shown``
    metrics, tokens/s and the time left."""
    started = time.monotonic()

    def progress(line: dict[str, object]) -> None:
        if sys.stderr.isatty():
            step, total = int(line["step"]), int(line["total_steps"])  # type: ignore[call-overload]
            eta = (time.monotonic() - started) / max(1, step) * (total - step)
            metrics = "  ".join(f"{name} {line[name]}" for name in shown)
            sys.stderr.write(
                f"\r{label}: step {step}/{total}  {metrics}  {line['tokens_per_s']} tok/s  ETA {eta / 60:.1f} min   "
            )
            sys.stderr.flush()

    return progress


def _count_progress(label: str) -> Callable[[int, int], None]:
    """A progress line for a counted pass (on a terminal): done/total and the time left."""
    started = time.monotonic()

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            eta = (time.monotonic() - started) / max(1, done) * (total - done)
            sys.stderr.write(f"\r{label}: {done}/{total}  ETA {eta / 60:.1f} min   ")
            sys.stderr.flush()

    return progress


def _finish(result: Any, as_json: bool, *lines: str) -> None:
    """End the progress line, then print the result as JSON (--json) or its lines."""
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if as_json:
        print_json(result)
        return
    for line in lines:
        typer.echo(line)


train_app = typer.Typer(
    rich_markup_mode=None,  # help text is plain: "[n]" stays "[n]"
    help="Train the reasoning adapter: collect traces, SFT a LoRA, RL rounds (ReST-EM); exports GGUF.",
    no_args_is_help=True,
)


@train_app.command("collect")
@user_errors
@resumes
def collect_command(
    data: Annotated[Path, typer.Option(help="GSM8K train JSONL (test rows are refused).")],
    out: Annotated[Path, typer.Option(help="Output JSONL: one line per question with its kept traces.")],
    format: Annotated[
        TraceFormat,
        typer.Option(
            "--format",
            help="reference and reference-program: the dataset's own solutions as thoughts or as programs.",
        ),
    ] = "program",
    samples: Annotated[
        int, typer.Option(help="Solutions sampled per question (0 with --greedy-first: the greedy one alone).")
    ] = 4,
    keep: Annotated[int, typer.Option(help="Shortest correct solutions kept per question.")] = 1,
    offset: Annotated[int, typer.Option(help="Skip the first N questions.")] = 0,
    limit: Annotated[int, typer.Option(help="Questions after the offset (0 = all).")] = 0,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    budget: Annotated[int, typer.Option(help="cot: thinking tokens per sample.")] = 384,
    seed: Annotated[int, typer.Option(help="Seed of the first sample (sample k uses seed + k).")] = 0,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Generator (default: the catalog default).")
    ] = None,
    adapter: Annotated[str | None, typer.Option(help="LoRA adapter to sample from.")] = None,
    greedy_first: Annotated[
        bool, typer.Option(help="A greedy solution first; sample only when it is wrong (cheap on easy questions).")
    ] = False,
    rationalize: Annotated[
        bool,
        typer.Option(
            help="Programs: a question no sample solved gets one greedy pass with its reference solution as a "
            "hint; kept under the plain prompt when it prints the answer without stating it."
        ),
    ] = False,
    device: Annotated[
        str,
        typer.Option(
            help="llama: llama.cpp (CPU, or its GPU build); cuda: the base in torch on a GPU, samples batched; "
            "cpu: torch on the CPU (slow; tests)."
        ),
    ] = "llama",
    batch_questions: Annotated[
        int,
        typer.Option(
            help="cuda/cpu: questions solved at once, their samples decoded in one batch (a GPU decodes many "
            "sequences in about the time of one)."
        ),
    ] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Sample solutions to train questions, keep the shortest correct ones (resumable)."""
    from dca.train.traces import CollectConfig, collect

    config = CollectConfig(
        data=str(data),
        format=format,
        samples=samples,
        keep=keep,
        offset=offset,
        limit=limit,
        temperature=temperature,
        budget=budget,
        seed=seed,
        model=model,
        adapter=adapter,
        greedy_first=greedy_first,
        rationalize=rationalize,
        device=device,
        batch_questions=batch_questions,
    )
    started = time.monotonic()

    def progress(done: int, total: int, kept: int) -> None:
        if sys.stderr.isatty():
            rate = (time.monotonic() - started) / max(1, done)
            sys.stderr.write(f"\rcollect: {done}/{total} questions, {kept} traces kept, {rate:.1f} s/question   ")
            sys.stderr.flush()

    counts = collect(config, out=out, progress=progress)
    _finish(counts, as_json, ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()), f"traces: {out}")


@train_app.command("pairs")
@user_errors
def pairs_command(
    data: Annotated[
        list[Path],
        typer.Option(
            metavar="<path>",
            help="Traces JSONL from `dca train collect` (every judged sample kept); repeat it to merge the "
            "samples of the same questions from several files.",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output JSONL: one (question, chosen, rejected) pair per line.")],
    per_question: Annotated[int, typer.Option(help="Most pairs per question.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of the order of the wrong samples.")] = 0,
    anchor: Annotated[
        PairAnchor,
        typer.Option(
            help="greedy: the question's greedy solution (collect --greedy-first) on one side of every pair, "
            "rejected where it is wrong, chosen where it is right."
        ),
    ] = "none",
    as_json: JsonFlag = False,
) -> None:
    """Pair right and wrong samples of the same question, for preference training (DPO)."""
    from dca.train.pairs import PairsConfig, make_pairs

    config = PairsConfig(data=tuple(str(d) for d in data), per_question=per_question, seed=seed, anchor=anchor)
    counts = make_pairs(config, out=out)
    _finish(counts, as_json, ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()), f"pairs: {out}")


@train_app.command("questions")
@user_errors
@resumes
def questions_command(
    index: Annotated[str, typer.Option("--index", "-i", help="The index whose chunks are read.")],
    out: Annotated[Path, typer.Option(help="Output JSONL: one line per chunk read, its pair and whether it is kept.")],
    limit: Annotated[int, typer.Option(help="Chunks read (a seeded sample).")] = 100,
    min_chars: Annotated[int, typer.Option(help="Skip chunks shorter than this many characters.")] = 200,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Generator (default: the catalog default).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Make question-answer pairs from an index: the model asks about a chunk, a pair is kept
    when its answer is a span of the chunk (resumable)."""
    from dca.train.questions import QuestionsConfig, make_questions

    config = QuestionsConfig(index=index, limit=limit, min_chars=min_chars, seed=seed, model=model)
    counts = make_questions(config, out=out, progress=_count_progress("questions: chunks read"))
    _finish(
        counts, as_json, f"{counts['pairs_kept']} pairs kept of {counts['chunks_read']} chunks read", f"pairs: {out}"
    )


@train_app.command("probe")
@user_errors
@resumes
def probe_command(
    data: Annotated[Path, typer.Option(help="Traces JSONL from `dca train collect` (every judged sample kept).")],
    out: Annotated[str, typer.Option(help="Verifier name: the run folder is runs/train/NAME.")],
    model: Annotated[str | None, typer.Option("--model", "-m", help="Base whose hidden states are read.")] = None,
    dev_fraction: Annotated[
        float, typer.Option(help="Share of the questions held out for the AUROC (chosen by a hash of the text).")
    ] = 0.2,
    l2: Annotated[
        float | None,
        typer.Option(help="Ridge penalty of the logistic regression (default: chosen by cross-validation)."),
    ] = None,
    folder: RunDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Fit the learned verifier: a linear probe on the base's hidden state, P(right) per sample (resumable)."""
    from dca.train.probe import ProbeConfig, train_probe

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(f"\rprobe: hidden states {done}/{total}   ")
            sys.stderr.flush()

    config = ProbeConfig(data=str(data), model=model, dev_fraction=dev_fraction, l2=l2)
    summary = train_probe(config, RunFolder.of(out, out=folder), progress=progress)
    _finish(
        summary,
        as_json,
        f"dev AUROC {summary['dev_auroc']} (vote share {summary['dev_vote_share_auroc']}) on "
        f"{summary['dev_samples']} samples of {summary['dev_questions']} questions; picks right: majority "
        f"{summary['dev_majority_accuracy']}, weighted by the probe {summary['dev_weighted_accuracy']}, "
        f"some sample {summary['dev_any_accuracy']}",
        f"verifier: {summary['probe']}",
    )


@train_app.command("sft")
@user_errors
@resumes
@config_options(SFTConfig)
def sft_command(
    data: Annotated[Path, typer.Option(help="Traces JSONL from `dca train collect`.")],
    out: Annotated[str, typer.Option(help="Adapter name: the run folder is runs/train/NAME.")],
    folder: RunDir = None,
    as_json: JsonFlag = False,
    *,
    options: dict[str, Any],
) -> None:
    """Train a LoRA on traces (bf16 on the CPU; resumable after kill -9; exports NAME.gguf)."""
    from dca.train.sft import train_sft

    config = SFTConfig(data=str(data), **options)
    summary = train_sft(config, RunFolder.of(out, out=folder), progress=_step_progress("sft", "loss"))
    _finish(
        summary,
        as_json,
        f"trained {summary['steps']} steps, final loss {summary['final_loss']}; adapter: {summary['adapter']}",
    )


@train_app.command("dpo")
@user_errors
@resumes
@config_options(DPOConfig)
def dpo_command(
    data: Annotated[Path, typer.Option(help="Pairs JSONL from `dca train pairs`.")],
    out: Annotated[str, typer.Option(help="Adapter name: the run folder is runs/train/NAME.")],
    folder: RunDir = None,
    as_json: JsonFlag = False,
    *,
    options: dict[str, Any],
) -> None:
    """Preference-train a LoRA on right/wrong pairs: DPO + NLL on the chosen (IRPO); resumable; exports NAME.gguf."""
    from dca.train.dpo import train_dpo

    config = DPOConfig(data=str(data), **options)
    summary = train_dpo(
        config,
        RunFolder.of(out, out=folder),
        progress=_step_progress("dpo", "loss", "margin"),
        reference_progress=_count_progress("dpo: the reference's log-probabilities, pairs"),
    )
    _finish(
        summary,
        as_json,
        f"trained {summary['steps']} steps on {summary['pairs']} pairs; final {summary['final']}; "
        f"adapter: {summary['adapter']}",
    )


@train_app.command("rl")
@user_errors
@resumes
def rl_command(
    data: Annotated[Path, typer.Option(help="GSM8K train JSONL (test rows are refused).")],
    out: Annotated[str, typer.Option(help="Name: the run folder is runs/train/NAME.")],
    model: BaseModel = None,
    init_adapter: Annotated[str | None, typer.Option(help="Policy of round 1 (e.g. the SFT adapter).")] = None,
    init_traces: Annotated[Path | None, typer.Option(help="Traces every fine-tune also learns from.")] = None,
    rounds: Annotated[int, typer.Option(help="Rounds of sample, reward, keep, fine-tune.")] = 2,
    questions: Annotated[int, typer.Option(help="Questions per round (disjoint slices).")] = 100,
    offset: Annotated[int, typer.Option(help="First question of round 1.")] = 0,
    samples: Annotated[int, typer.Option(help="Solutions sampled per question.")] = 4,
    format: Annotated[SolutionFormat, typer.Option("--format", help="What the model writes.")] = "program",
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.8,
    max_steps: Annotated[int, typer.Option(help="Most SFT steps per round (0: one epoch).")] = 0,
    seq_len: Annotated[int, typer.Option(help="SFT: tokens per packed sequence.")] = 512,
    lr: Annotated[float, typer.Option(help="SFT: peak learning rate.")] = 2e-4,
    rank: Annotated[int, typer.Option(help="SFT: LoRA rank.")] = 8,
    alpha: Annotated[int, typer.Option(help="SFT: LoRA alpha.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    folder: RunDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Expert iteration (ReST-EM): sample from the current adapter, keep correct short traces, fine-tune."""
    from dca.train.rl import RLConfig, train_rl

    config = RLConfig(
        data=str(data),
        model=model,
        init_adapter=init_adapter,
        init_traces=str(init_traces) if init_traces else None,
        rounds=rounds,
        questions=questions,
        offset=offset,
        samples=samples,
        format=format,
        temperature=temperature,
        seed=seed,
        sft=SFTConfig(
            data="(per round)", max_steps=max_steps, seq_len=seq_len, lr=lr, rank=rank, alpha=alpha, seed=seed
        ),
    )

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    log = train_rl(config, RunFolder.of(out, out=folder), progress=progress)
    if as_json:
        print_json(log)
        return
    for line in log:
        typer.echo(
            f"round {line['round']}: sample accuracy {line['sample_accuracy']}, mean reward {line['mean_reward']}, "
            f"mean length {line['mean_sample_tokens']} tokens, {line['traces_kept']} traces kept, "
            f"SFT loss {line['sft_final_loss']}"
        )


@train_app.command("grpo")
@user_errors
@resumes
@config_options(GRPOConfig)
def grpo_command(
    data: Annotated[Path, typer.Option(help="GSM8K train JSONL (test rows are refused).")],
    out: Annotated[str, typer.Option(help="Name: the run folder is runs/train/NAME.")],
    folder: RunDir = None,
    as_json: JsonFlag = False,
    *,
    options: dict[str, Any],
) -> None:
    """GRPO with verifiable rewards (the option for a GPU; on a CPU, `rl` samples faster)."""
    from dca.train.grpo import train_grpo

    config = GRPOConfig(data=str(data), **options)
    steps = config.steps

    def progress(line: dict[str, object]) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(
                f"\rgrpo: step {line['step']}/{steps}  reward {line['reward']}  accuracy {line['accuracy']}  "
                f"{line['mean_tokens']} tokens  {line['seconds']} s/step   "
            )
            sys.stderr.flush()

    summary = train_grpo(config, RunFolder.of(out, out=folder), progress=progress)
    _finish(
        summary,
        as_json,
        f"trained {summary['steps']} steps on {summary['device']}, reward {summary['first_reward']} -> "
        f"{summary['last_reward']}; adapter: {summary['adapter']}",
    )
