"""What the trainers share (sft, dpo, grpo and the torch generator): the run folder's
config check, the base model loaded from its GGUF file, LoRA on it, devices and dtypes,
checkpoints that resume to the same weights, and the optimizer loop."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dca.choices import DTYPES
from dca.config import Paths
from dca.errors import ConfigError, TrainError
from dca.files import atomic_write_bytes, atomic_write_json, config_changes
from dca.machine import cpu_flags

SUPPORTED_ARCHITECTURES = ("qwen2", "llama")
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ProgressFn = Callable[[dict[str, Any]], None]  # one call per optimizer step with its log line


@dataclass(frozen=True)
class RunFolder:
    """Where a training run lives: ``runs/train/NAME`` under DCA_HOME, or the folder given
    (``--run-dir``); NAME also names what the run makes (NAME.gguf, NAME.probe.json)."""

    name: str
    paths: Paths
    folder: Path

    @classmethod
    def of(cls, name: str, paths: Paths | None = None, out: Path | None = None) -> RunFolder:
        paths = paths or Paths.resolve()
        return cls(name, paths, out or paths.home / "runs" / "train" / name)

    def export(self, model: Any, *, arch: str, alpha: float, base_model: str) -> Path:
        """The run's LoRA as NAME.gguf in its folder, the adapter the runtime loads."""
        from dca.train.export import export_lora

        blocks = int(model.config.num_hidden_layers)
        return export_lora(
            model, self.folder / f"{self.name}.gguf", arch=arch, n_blocks=blocks, alpha=alpha, base_model=base_model
        )


def check_run(folder: Path, config: Any) -> None:  # SFTConfig or DPOConfig
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


def architecture(path: Path) -> str:
    from dca.models.gguf import read_gguf_info

    arch = read_gguf_info(path).architecture
    if arch not in SUPPORTED_ARCHITECTURES:
        raise TrainError(
            f"{path.name} is a {arch!r} model; training supports {', '.join(SUPPORTED_ARCHITECTURES)} bases"
        )
    return arch


def load_base(path: Path, dtype: str) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=getattr(torch, dtype))
    except (MemoryError, RuntimeError) as exc:
        raise memory_error(exc) from None
    return model


def memory_error(exc: BaseException) -> BaseException:
    if isinstance(exc, MemoryError) or "memory" in str(exc).lower():
        return TrainError(
            "not enough memory to train; lower --seq-len, keep gradient checkpointing on, use bfloat16, "
            "or close other programs"
        )
    return exc


def schedule(step: int, total: int, warmup: int) -> float:
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
        load_base(base_path, resolve_dtype(dtype, device)),
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


def save_checkpoint(folder: Path, step: int, model: Any, optimizer: Any, state: dict[str, Any]) -> None:
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


def load_checkpoint(folder: Path, model: Any, optimizer: Any) -> dict[str, Any] | None:
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
    state = load_checkpoint(folder, model, optimizer) or {"step": 0, "tokens": 0, "seconds": 0.0}
    log = folder / "log.jsonl"
    resume_log(log, int(state["step"]))
    step = int(state["step"])
    while step < total_steps:
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        try:
            metrics, n_tokens = step_loss(step)
        except (MemoryError, RuntimeError) as exc:
            raise memory_error(exc) from None
        for group in optimizer.param_groups:
            group["lr"] = config.lr * schedule(step, total_steps, config.warmup)
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
            save_checkpoint(folder, step, model, optimizer, state)
    return step, state
