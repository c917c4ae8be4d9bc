"""``dca train ...``: make the reasoning adapter (trace collection now; SFT, RL and export next)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from dca.cli_common import JsonFlag, print_json, user_errors

train_app = typer.Typer(
    help="Train the reasoning adapter: collect traces (SFT, RL, export: not yet).", no_args_is_help=True
)


@train_app.command("collect")
@user_errors
def collect_command(
    data: Annotated[Path, typer.Option(help="GSM8K train JSONL (test rows are refused).")],
    out: Annotated[Path, typer.Option(help="Output JSONL: one line per question with its kept traces.")],
    format: Annotated[str, typer.Option("--format", help="program, cot or reference.")] = "program",
    samples: Annotated[int, typer.Option(help="Solutions sampled per question.")] = 4,
    keep: Annotated[int, typer.Option(help="Shortest correct solutions kept per question.")] = 1,
    offset: Annotated[int, typer.Option(help="Skip the first N questions.")] = 0,
    limit: Annotated[int, typer.Option(help="Questions after the offset (0 = all).")] = 0,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 0.7,
    budget: Annotated[int, typer.Option(help="cot: thinking tokens per sample.")] = 384,
    seed: Annotated[int, typer.Option(help="Seed of the first sample (sample k uses seed + k).")] = 0,
    model: Annotated[str | None, typer.Option(help="Generator (default: the catalog default).")] = None,
    adapter: Annotated[str | None, typer.Option(help="LoRA adapter to sample from.")] = None,
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
