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
from dataclasses import replace
from pathlib import Path
from typing import Any

from dca.errors import TrainError
from dca.files import atomic_write_json, sha256_file
from dca.train.base import (
    RunFolder,
    architecture,
    check_run,
    lora_model,
    model_device,
    optimize,
    resolve_device,
)
from dca.train.configs import SFTConfig
from dca.train.data import Example, encode, pack, read_traces

ProgressFn = Callable[[dict[str, Any]], None]  # one call per optimizer step with its log line


def train_sft(config: SFTConfig, run: RunFolder, *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Train (or resume) the LoRA ``name``; returns the run summary with the adapter's path."""
    import torch

    from dca.runtime.llama import LlamaRuntime, RuntimeConfig, resolve_model

    name, paths, folder = run.name, run.paths, run.folder
    data = Path(config.data)
    traces = read_traces(data, max_easy=config.max_easy)
    config = replace(config, data=str(data.resolve()), data_sha256=sha256_file(data))
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
    adapter = run.export(model, arch=arch, alpha=config.alpha, base_model=base_name)
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
