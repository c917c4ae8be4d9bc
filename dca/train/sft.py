"""``dca train sft``: a LoRA trained through peft on the base model dequantized from its GGUF file.

bf16 on the CPU with gradient checkpointing; loss on the response tokens only; examples packed
into fixed-length sequences. The run folder ``runs/train/NAME`` holds ``config.json``
(a rerun with another config is refused, naming the field), ``log.jsonl`` (loss, tokens/s
per optimizer step), ``checkpoints/step-N`` (LoRA weights, optimizer moments and RNG
state as safetensors, position as JSON; written to a temporary folder and renamed, the
two newest kept) and, at the end, ``NAME.gguf``, the adapter the runtime loads. After a
``kill -9`` the same command resumes from the newest checkpoint and ends with the same
weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dca.choices import DTYPES
from dca.config import Paths
from dca.errors import ConfigError, TrainError
from dca.files import atomic_write_json, sha256_file
from dca.train.base import (
    TARGETS,
    architecture,
    check_device,
    check_run,
    lora_model,
    model_device,
    optimize,
    resolve_device,
)
from dca.train.data import Example, encode, pack, read_traces

ProgressFn = Callable[[dict[str, Any]], None]  # one call per optimizer step with its log line


@dataclass(frozen=True, kw_only=True)
class SFTConfig:
    """One supervised fine-tuning run; recorded in the run folder and compared on resume."""

    data: str  # traces JSONL (`dca train collect`)
    data_sha256: str = ""  # filled in from the file
    model: str | None = None  # base: catalog name or GGUF path (None = the default generator)
    rank: int = 16
    alpha: int = 32
    targets: tuple[str, ...] = TARGETS  # linear layers that get a LoRA
    lr: float = 2e-4
    epochs: int = 1
    max_steps: int = 0  # stop after this many optimizer steps (0 = the epochs decide)
    seq_len: int = 512  # tokens per packed sequence
    grad_accum: int = 4  # sequences per optimizer step
    warmup: int = 5  # optimizer steps of linear warm-up, then linear decay to 0
    checkpoint_every: int = 25  # optimizer steps between checkpoints
    dtype: str = "auto"  # bfloat16 | float32
    gradient_checkpointing: bool = True
    seed: int = 0
    max_easy: int = 0  # at most this many traces of an easy question (most samples right); 0 = all
    device: str = "auto"  # auto (cuda when torch sees a GPU) | cpu | cuda

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.max_easy < 0:
            raise ConfigError(f"max_easy must be >= 0, got {self.max_easy}")
        if self.rank < 1 or self.alpha < 1:
            raise ConfigError(f"rank and alpha must be positive, got {self.rank} and {self.alpha}")
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr must be in (0, 1), got {self.lr}")
        if self.epochs < 1 or self.max_steps < 0:
            raise ConfigError("epochs must be at least 1 and max_steps at least 0")
        if self.seq_len < 16 or self.grad_accum < 1 or self.checkpoint_every < 1 or self.warmup < 0:
            raise ConfigError("seq_len >= 16, grad_accum >= 1, checkpoint_every >= 1 and warmup >= 0 are required")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if not self.targets:
            raise ConfigError("give at least one target layer")


def train_sft(
    config: SFTConfig,
    *,
    name: str,
    paths: Paths | None = None,
    out: Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Train (or resume) the LoRA ``name``; returns the run summary with the adapter's path."""
    import torch

    from dca.runtime.llama import LlamaRuntime, RuntimeConfig, resolve_model
    from dca.train.export import export_lora

    paths = paths or Paths.resolve()
    data = Path(config.data)
    traces = read_traces(data, max_easy=config.max_easy)
    config = replace(config, data=str(data.resolve()), data_sha256=sha256_file(data))
    folder = out or paths.home / "runs" / "train" / name
    device = resolve_device(config.device)  # before anything loads: --device cuda without a GPU is one line
    check_run(folder, config)
    base_name, base_path = resolve_model(config.model, paths)
    arch = architecture(base_path)
    tokenizer = LlamaRuntime(base_path, name=base_name, config=RuntimeConfig(vocab_only=True))
    examples = [encode(tokenizer, trace, config.seq_len) for trace in traces]
    examples = [e for e in examples if any(label != -100 for label in e.labels)]
    if not examples:
        raise TrainError(
            f"no trace of {data.name} has a response within --seq-len {config.seq_len} tokens "
            "(the prompt alone is longer); raise --seq-len"
        )
    torch.manual_seed(config.seed)
    model = lora_model(
        base_path, config.dtype, rank=config.rank, alpha=config.alpha, targets=config.targets, device=device
    )
    epochs = [pack(examples, config.seq_len, config.seed + epoch) for epoch in range(config.epochs)]
    schedule = [(epoch, i) for epoch, seqs in enumerate(epochs) for i in range(len(seqs))]
    total_steps = math.ceil(len(schedule) / config.grad_accum)
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    def step_loss(step: int) -> tuple[dict[str, float], int]:
        losses, n_tokens = [], 0
        for epoch, index in schedule[step * config.grad_accum : (step + 1) * config.grad_accum]:
            sequence: Example = epochs[epoch][index]
            tokens = torch.tensor([sequence.tokens], device=model_device(model))
            labels = torch.tensor([sequence.labels], device=model_device(model))
            loss = model(input_ids=tokens, labels=labels).loss
            (loss / config.grad_accum).backward()
            losses.append(float(loss.detach()))
            n_tokens += len(sequence.tokens)
        return {"loss": round(sum(losses) / len(losses), 5)}, n_tokens

    step, state = optimize(
        model, config, folder=folder, total_steps=total_steps, step_loss=step_loss, progress=progress
    )
    log = folder / "log.jsonl"
    adapter = export_lora(
        model,
        folder / f"{name}.gguf",
        arch=arch,
        n_blocks=int(model.config.num_hidden_layers),
        alpha=config.alpha,
        base_model=base_name,
        base_sha256="",
    )
    summary = {
        "name": name,
        "adapter": str(adapter),
        "steps": step,
        "tokens": state["tokens"],
        "hours": round(state["seconds"] / 3600, 3),
        "tokens_per_s": round(state["tokens"] / max(state["seconds"], 1e-9), 1),
        "examples": len(examples),
        "device": device,
        "sequences_per_epoch": len(epochs[0]),
        "final_loss": json.loads(log.read_text(encoding="utf-8").splitlines()[-1])["loss"] if log.is_file() else None,
    }
    atomic_write_json(folder / "summary.json", summary)
    return summary
