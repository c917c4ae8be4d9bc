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
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dca.choices import DTYPES
from dca.config import Paths
from dca.errors import ConfigError, TrainError
from dca.files import atomic_write_bytes, atomic_write_json, config_changes, sha256_file
from dca.machine import cpu_flags
from dca.train.data import Example, encode, pack, read_traces

SUPPORTED_ARCHITECTURES = ("qwen2", "llama")
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
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


def _check_run(folder: Path, config: Any) -> None:  # SFTConfig or DPOConfig
    path = folder / "config.json"
    # neither the device nor gradient checkpointing is the run's identity: checkpoints are
    # device-free, a run may resume elsewhere, and recomputing activations changes no weight;
    # runs recorded before --device existed ran on the CPU's "auto"
    diff = config_changes(
        path, asdict(config), ignore=("device", "gradient_checkpointing"), defaults={"device": "auto"}
    )
    if diff:
        raise TrainError(
            f"{folder} was trained with another config ({'; '.join(diff)}); use another --out, "
            "or delete the folder to start over"
        )
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(config))


def _architecture(path: Path) -> str:
    from dca.models.gguf import read_gguf_info

    arch = read_gguf_info(path).architecture
    if arch not in SUPPORTED_ARCHITECTURES:
        raise TrainError(
            f"{path.name} is a {arch!r} model; training supports {', '.join(SUPPORTED_ARCHITECTURES)} bases"
        )
    return arch


def _load_base(path: Path, dtype: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=getattr(torch, dtype))
    except (MemoryError, RuntimeError) as exc:
        raise _memory_error(exc) from None
    return model


def _memory_error(exc: BaseException) -> BaseException:
    if isinstance(exc, MemoryError) or "memory" in str(exc).lower():
        return TrainError(
            "not enough memory to train; lower --seq-len, keep gradient checkpointing on, use bfloat16, "
            "or close other programs"
        )
    return exc


def _schedule(step: int, total: int, warmup: int) -> float:
    if warmup and step < warmup:
        return (step + 1) / warmup
    return max(0.0, (total - step) / max(1, total - warmup))


DEVICES = ("auto", "cpu", "cuda")


def check_device(device: str) -> None:
    if device not in DEVICES:
        raise ConfigError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")


def resolve_device(device: str) -> str:
    """The torch device a run trains on: ``auto`` is cuda when torch sees a GPU, else cpu; cuda
    without one is a one-line error naming the fix."""
    import torch

    check_device(device)
    if device == "cuda" and not torch.cuda.is_available():
        built = f"built with CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise TrainError(
            f"--device cuda, but torch ({torch.__version__}, {built}) sees no GPU; install torch for your "
            "CUDA version (make install TORCH_SPEC=...), or use --device cpu"
        )
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def cpu_has_bf16(flags: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX): elsewhere torch
    emulates it, ~6x slower than float32 (AMD EPYC Zen 3: 300 tokens forward in 44 s against 7 s).

    >>> cpu_has_bf16("fpu avx2 avx512f avx512_bf16"), cpu_has_bf16("fpu avx2 fma"), cpu_has_bf16("amx_bf16 x")
    (True, False, True)
    """
    found = set((cpu_flags() if flags is None else flags).split())  # none read (not Linux): False
    return bool(found & {"avx512_bf16", "amx_bf16"})


def resolve_dtype(dtype: str, device: str) -> str:
    """The precision a run computes in on a resolved ``device``: ``auto`` is bfloat16 on a GPU
    that supports it or a CPU with bf16 instructions, else float32."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dtype != "auto":
        return dtype
    if device == "cuda":
        import torch

        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if cpu_has_bf16() else "float32"


def model_device(model: Any) -> Any:
    """The device a model's weights are on (where its inputs must go)."""
    return next(model.parameters()).device


def lora_model(
    base_path: Path, dtype: str, *, rank: int, alpha: int, targets: tuple[str, ...], device: str = "cpu"
) -> Any:
    """The GGUF base dequantized in ``dtype`` (``auto``: see resolve_dtype) with a fresh peft LoRA,
    on ``device`` (a resolved one); the LoRA weights (and so their optimizer state) in float32."""
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        _load_base(base_path, resolve_dtype(dtype, device)),
        LoraConfig(r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0),
    )
    for _, parameter in model.named_parameters():
        if parameter.requires_grad:
            parameter.data = parameter.data.float()
    return model.to(device)


def resume_log(log: Path, step: int) -> None:
    """The per-step log of a run resumed at ``step``: lines written after that checkpoint
    (before a kill) are dropped; a run starting afresh starts a fresh log."""
    if step == 0:
        log.unlink(missing_ok=True)
        return
    kept = [line for line in log.read_text(encoding="utf-8").split("\n") if line and json.loads(line)["step"] <= step]
    atomic_write_bytes(log, "".join(line + "\n" for line in kept).encode("utf-8"))


def _save_checkpoint(folder: Path, step: int, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """checkpoints/step-N, written beside and renamed: a crash (or a full disk) leaves the previous one.
    A write that fails (no space left, a read-only folder) removes its partial copy and stops the run
    with one line naming the checkpoint a rerun resumes from."""
    root = folder / "checkpoints"
    tmp = root / f".step-{step}.tmp"
    try:
        _write_checkpoint(root, tmp, step, model, optimizer, state)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        latest = root / "latest"
        kept = latest.read_text(encoding="utf-8").strip() if latest.is_file() else ""
        resume = f"{kept} is intact and a rerun resumes from it" if kept else "a rerun starts from the beginning"
        raise TrainError(
            f"could not write checkpoint step-{step} in {root} ({exc.strerror or exc}); {resume}: "
            "free disk space and rerun the same command"
        ) from None


def _write_checkpoint(root: Path, tmp: Path, step: int, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    import torch
    from safetensors.torch import save_file

    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    trainable = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
    save_file(trainable, str(tmp / "adapter.safetensors"))
    moments: dict[str, torch.Tensor] = {}
    names = {id(p): n for n, p in model.named_parameters() if p.requires_grad}
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in st:
                    moments[f"{names[id(p)]}::{key}"] = st[key].cpu().contiguous()
            if "step" in st:
                moments[f"{names[id(p)]}::step"] = torch.as_tensor(st["step"]).reshape(1).float()
    moments["rng::torch"] = torch.get_rng_state()
    save_file(moments, str(tmp / "optimizer.safetensors"))
    (tmp / "state.json").write_text(json.dumps(state), encoding="utf-8")
    for file in tmp.iterdir():
        with file.open("rb") as handle:
            os.fsync(handle.fileno())
    final = root / f"step-{step}"
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    atomic_write_bytes(root / "latest", f"step-{step}\n".encode())
    for old in sorted(root.glob("step-*"), key=lambda p: int(p.name.split("-")[1]))[:-2]:
        shutil.rmtree(old, ignore_errors=True)


def _load_checkpoint(folder: Path, model: Any, optimizer: Any) -> dict[str, Any] | None:
    import torch
    from safetensors.torch import load_file

    latest = folder / "checkpoints" / "latest"
    if not latest.is_file():
        return None
    path = folder / "checkpoints" / latest.read_text(encoding="utf-8").strip()
    weights = load_file(str(path / "adapter.safetensors"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, tensor in weights.items():
            params[name].copy_(tensor)
    moments = load_file(str(path / "optimizer.safetensors"))
    for name, p in params.items():
        if f"{name}::exp_avg" in moments:
            optimizer.state[p] = {
                "step": moments[f"{name}::step"].reshape(()),
                "exp_avg": moments[f"{name}::exp_avg"].to(p.device),
                "exp_avg_sq": moments[f"{name}::exp_avg_sq"].to(p.device),
            }
    torch.set_rng_state(moments["rng::torch"])
    return dict(json.loads((path / "state.json").read_text(encoding="utf-8")))


def optimize(
    model: Any,
    config: Any,
    *,
    folder: Path,
    total_steps: int,
    step_loss: Callable[[int], tuple[dict[str, float], int]],
    progress: ProgressFn | None,
) -> tuple[int, dict[str, Any]]:
    """The optimizer loop of every LoRA run (sft, dpo): AdamW on the trainable weights, linear
    warm-up and decay, gradient clipping, one ``log.jsonl`` line per step, checkpoints every
    ``config.checkpoint_every`` steps, and resume from the newest one. ``step_loss(step)`` runs
    the forward and backward passes of one optimizer step and returns its logged metrics and
    token count. Returns the last step and the run's state (step, tokens, seconds)."""
    import torch

    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    state = _load_checkpoint(folder, model, optimizer) or {"step": 0, "tokens": 0, "seconds": 0.0}
    log = folder / "log.jsonl"
    resume_log(log, int(state["step"]))
    step = int(state["step"])
    while step < total_steps:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        try:
            metrics, n_tokens = step_loss(step)
        except (MemoryError, RuntimeError) as exc:
            raise _memory_error(exc) from None
        for group in optimizer.param_groups:
            group["lr"] = config.lr * _schedule(step, total_steps, config.warmup)
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        step += 1
        seconds = time.perf_counter() - started
        state = {"step": step, "tokens": state["tokens"] + n_tokens, "seconds": state["seconds"] + seconds}
        line = {
            "step": step,
            "total_steps": total_steps,
            **metrics,
            "lr": optimizer.param_groups[0]["lr"],
            "tokens_per_s": round(n_tokens / seconds, 1),
            "seconds": round(seconds, 2),
        }
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
        if progress:
            progress(line)
        if step % config.checkpoint_every == 0 or step == total_steps:
            _save_checkpoint(folder, step, model, optimizer, state)
    return step, state


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
    _check_run(folder, config)
    base_name, base_path = resolve_model(config.model, paths)
    arch = _architecture(base_path)
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
