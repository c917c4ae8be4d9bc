"""``dca train ...``: make the reasoning adapter: collect traces, SFT, RL rounds, GGUF export."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from dca.cli.common import Dtype, JsonFlag, PairAnchor, TraceFormat, print_json, resumes, user_errors

if TYPE_CHECKING:
    SolutionFormat = str
else:
    SolutionFormat = Literal["program", "cot"]

# Options the training commands share (one wording, one default each).
BaseModel = Annotated[str | None, typer.Option("--model", "-m", help="Base model: catalog name or GGUF path.")]
Alpha = Annotated[int, typer.Option(help="LoRA alpha (scale = alpha / rank).")]
MaxSteps = Annotated[int, typer.Option(help="Stop after N optimizer steps (0: the epochs decide).")]
Warmup = Annotated[int, typer.Option(help="Warm-up steps.")]
CheckpointEvery = Annotated[int, typer.Option(help="Optimizer steps between checkpoints.")]
Precision = Annotated[
    Dtype,
    typer.Option(
        help="Training precision; auto: bfloat16 on a GPU or a CPU with bf16 instructions (AVX-512 BF16, AMX), "
        "else float32 (several times faster than emulated bfloat16)."
    ),
]
Checkpointing = Annotated[
    bool,
    typer.Option(
        "--grad-checkpointing/--no-grad-checkpointing",
        help="Recompute activations in the backward pass: less memory, about a third more compute.",
    ),
]
Device = Annotated[str, typer.Option(help="Where torch trains: auto (cuda when torch sees a GPU), cpu or cuda.")]
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


def _end_progress() -> None:
    if sys.stderr.isatty():
        sys.stderr.write("\n")


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
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if as_json:
        print_json(counts)
        return
    typer.echo(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
    typer.echo(f"traces: {out}")


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
    if as_json:
        print_json(counts)
        return
    typer.echo(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items()))
    typer.echo(f"pairs: {out}")


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
    summary = train_probe(config, name=out, out=folder, progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if as_json:
        print_json(summary)
        return
    typer.echo(
        f"dev AUROC {summary['dev_auroc']} (vote share {summary['dev_vote_share_auroc']}) on "
        f"{summary['dev_samples']} samples of {summary['dev_questions']} questions; picks right: majority "
        f"{summary['dev_majority_accuracy']}, weighted by the probe {summary['dev_weighted_accuracy']}, "
        f"some sample {summary['dev_any_accuracy']}"
    )
    typer.echo(f"verifier: {summary['probe']}")


@train_app.command("sft")
@user_errors
@resumes
def sft_command(
    data: Annotated[Path, typer.Option(help="Traces JSONL from `dca train collect`.")],
    out: Annotated[str, typer.Option(help="Adapter name: the run folder is runs/train/NAME.")],
    model: BaseModel = None,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 16,
    alpha: Alpha = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-4,
    epochs: Annotated[int, typer.Option(help="Passes over the traces.")] = 1,
    max_steps: MaxSteps = 0,
    seq_len: Annotated[int, typer.Option(help="Tokens per packed sequence.")] = 512,
    grad_accum: Annotated[int, typer.Option(help="Sequences per optimizer step.")] = 4,
    warmup: Warmup = 5,
    checkpoint_every: CheckpointEvery = 25,
    dtype: Precision = "auto",
    checkpointing: Checkpointing = True,
    seed: Annotated[int, typer.Option(help="Seed (data order, initialisation).")] = 0,
    max_easy: Annotated[
        int, typer.Option(help="At most N traces of a question whose samples were mostly (3/4) right; 0: all.")
    ] = 0,
    device: Device = "auto",
    folder: RunDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a LoRA on traces (bf16 on the CPU; resumable after kill -9; exports NAME.gguf)."""
    from dca.train.sft import SFTConfig, train_sft

    config = SFTConfig(
        data=str(data),
        model=model,
        rank=rank,
        alpha=alpha,
        lr=lr,
        epochs=epochs,
        max_steps=max_steps,
        seq_len=seq_len,
        grad_accum=grad_accum,
        warmup=warmup,
        checkpoint_every=checkpoint_every,
        dtype=dtype,
        gradient_checkpointing=checkpointing,
        seed=seed,
        max_easy=max_easy,
        device=device,
    )
    summary = train_sft(config, name=out, out=folder, progress=_step_progress("sft", "loss"))
    _end_progress()
    if as_json:
        print_json(summary)
        return
    typer.echo(f"trained {summary['steps']} steps, final loss {summary['final_loss']}; adapter: {summary['adapter']}")


@train_app.command("dpo")
@user_errors
@resumes
def dpo_command(
    data: Annotated[Path, typer.Option(help="Pairs JSONL from `dca train pairs`.")],
    out: Annotated[str, typer.Option(help="Adapter name: the run folder is runs/train/NAME.")],
    model: BaseModel = None,
    init_adapter: Annotated[
        Path | None, typer.Option(help="LoRA GGUF to start from; it is also the reference policy.")
    ] = None,
    rank: Annotated[int, typer.Option(help="LoRA rank (that of --init-adapter when given).")] = 16,
    alpha: Alpha = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 5e-5,
    beta: Annotated[float, typer.Option(help="DPO beta: strength of the pull away from the reference.")] = 0.1,
    nll_weight: Annotated[float, typer.Option(help="Weight of the chosen response's NLL (IRPO); 0: plain DPO.")] = 1.0,
    epochs: Annotated[int, typer.Option(help="Passes over the pairs.")] = 1,
    max_steps: MaxSteps = 0,
    seq_len: Annotated[int, typer.Option(help="Prompt + response tokens kept per side of a pair.")] = 512,
    grad_accum: Annotated[int, typer.Option(help="Pairs per optimizer step.")] = 4,
    warmup: Warmup = 5,
    checkpoint_every: CheckpointEvery = 25,
    dtype: Precision = "auto",
    checkpointing: Checkpointing = True,
    seed: Annotated[int, typer.Option(help="Seed (pair order, initialisation).")] = 0,
    device: Device = "auto",
    folder: RunDir = None,
    as_json: JsonFlag = False,
) -> None:
    """Preference-train a LoRA on right/wrong pairs: DPO + NLL on the chosen (IRPO); resumable; exports NAME.gguf."""
    from dca.train.dpo import DPOConfig, train_dpo

    config = DPOConfig(
        data=str(data),
        model=model,
        init_adapter=str(init_adapter) if init_adapter else None,
        rank=rank,
        alpha=alpha,
        lr=lr,
        beta=beta,
        nll_weight=nll_weight,
        epochs=epochs,
        max_steps=max_steps,
        seq_len=seq_len,
        grad_accum=grad_accum,
        warmup=warmup,
        checkpoint_every=checkpoint_every,
        dtype=dtype,
        gradient_checkpointing=checkpointing,
        seed=seed,
        device=device,
    )
    summary = train_dpo(
        config,
        name=out,
        out=folder,
        progress=_step_progress("dpo", "loss", "margin"),
        reference_progress=_count_progress("dpo: the reference's log-probabilities, pairs"),
    )
    _end_progress()
    if as_json:
        print_json(summary)
        return
    typer.echo(
        f"trained {summary['steps']} steps on {summary['pairs']} pairs; final {summary['final']}; "
        f"adapter: {summary['adapter']}"
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
    from dca.train.sft import SFTConfig

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

    log = train_rl(config, name=out, out=folder, progress=progress)
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
def grpo_command(
    data: Annotated[Path, typer.Option(help="GSM8K train JSONL (test rows are refused).")],
    out: Annotated[str, typer.Option(help="Name: the run folder is runs/train/NAME.")],
    model: BaseModel = None,
    init_run: Annotated[str, typer.Option(help="An SFT run folder whose LoRA is the starting policy.")] = "",
    format: Annotated[SolutionFormat, typer.Option("--format", help="What the model writes.")] = "program",
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 100,
    questions: Annotated[int, typer.Option(help="Questions per step.")] = 4,
    group: Annotated[int, typer.Option(help="Completions sampled per question (compared within the group).")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Most tokens per completion.")] = 256,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-5,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    alpha: Annotated[int, typer.Option(help="LoRA alpha.")] = 16,
    offset: Annotated[int, typer.Option(help="Skip the first N train questions (a dev split).")] = 0,
    device: Device = "auto",
    dtype: Precision = "auto",
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    folder: RunDir = None,
    as_json: JsonFlag = False,
) -> None:
    """GRPO with verifiable rewards (the option for a GPU; on a CPU, `rl` samples faster)."""
    from dca.train.grpo import GRPOConfig, train_grpo

    config = GRPOConfig(
        data=str(data),
        model=model,
        init_run=init_run,
        format=format,
        steps=steps,
        questions=questions,
        group=group,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        lr=lr,
        rank=rank,
        alpha=alpha,
        offset=offset,
        device=device,
        dtype=dtype,
        seed=seed,
    )

    def progress(line: dict[str, object]) -> None:
        if sys.stderr.isatty():
            sys.stderr.write(
                f"\rgrpo: step {line['step']}/{steps}  reward {line['reward']}  accuracy {line['accuracy']}  "
                f"{line['mean_tokens']} tokens  {line['seconds']} s/step   "
            )
            sys.stderr.flush()

    summary = train_grpo(config, name=out, out=folder, progress=progress)
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    if as_json:
        print_json(summary)
        return
    typer.echo(
        f"trained {summary['steps']} steps on {summary['device']}, reward {summary['first_reward']} -> "
        f"{summary['last_reward']}; adapter: {summary['adapter']}"
    )
