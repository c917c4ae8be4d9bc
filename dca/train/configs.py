"""The LoRA training runs' configs: one base with the fields and checks every run shares
(``TrainConfig``), one for the runs that pass over a file in epochs (``EpochConfig``: sft, dpo),
and each method's own (trl's layout: ``DPOConfig(TrainingArguments)``). Each option is declared
once, with its help (dca/options.py); ``dca train sft|dpo|grpo`` derive their flags from these
fields. Each config is recorded in its run folder and compared on resume. Light to import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dca.choices import DTYPES
from dca.errors import ConfigError
from dca.options import option, redefault
from dca.train.base import DEVICES, TARGETS, check_device

SOLUTION_FORMATS = ("program", "cot")  # what the model writes: a program, or a thought


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """What every LoRA run has: data, base, the LoRA, the optimizer's rate, checkpoints, hardware."""

    data: str  # the run's input file (traces, pairs or questions)
    data_sha256: str = ""  # filled in from the file: another file is another run
    model: str | None = option(
        None, help="Base model: catalog name or GGUF path.", flags=("--model", "-m"), shown="the default generator"
    )
    rank: int = option(16, help="LoRA rank.")
    alpha: int = option(32, help="LoRA alpha (scale = alpha / rank).")
    targets: tuple[str, ...] = TARGETS  # the linear layers that get a LoRA
    lr: float = option(2e-4, help="Peak learning rate.")
    checkpoint_every: int = option(25, help="Optimizer steps between checkpoints.")
    dtype: str = option(
        "auto",
        help="Training precision; auto: bfloat16 on a GPU or a CPU with bf16 instructions (AVX-512 BF16, AMX), "
        "else float32 (several times faster than emulated bfloat16).",
        choices=DTYPES,
    )
    device: str = option(
        "auto", help="Where torch trains: auto (cuda when torch sees a GPU), cpu or cuda.", choices=DEVICES
    )
    seed: int = option(0, help="Seed (data order, initialisation).")

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha < 1:
            raise ConfigError(f"rank and alpha must be positive, got {self.rank} and {self.alpha}")
        if not 0 < self.lr < 1:
            raise ConfigError(f"lr must be in (0, 1), got {self.lr}")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        check_device(self.device)
        if not self.targets:
            raise ConfigError("give at least one target layer")


@dataclass(frozen=True, kw_only=True)
class EpochConfig(TrainConfig):
    """A run that passes over its file in epochs of optimizer steps (sft, dpo)."""

    epochs: int = option(1, help="Passes over the data.")
    max_steps: int = option(0, help="Stop after N optimizer steps (0: the epochs decide).")
    seq_len: int = option(512, help="Tokens per sequence (sft: packed examples; dpo: prompt + response of a side).")
    grad_accum: int = option(4, help="Sequences (sft) or pairs (dpo) per optimizer step.")
    warmup: int = option(5, help="Warm-up steps (linear), then linear decay to 0.")
    gradient_checkpointing: bool = option(
        True,
        help="Recompute activations in the backward pass: less memory, about a third more compute.",
        flags=("--grad-checkpointing/--no-grad-checkpointing",),
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.epochs < 1 or self.max_steps < 0:
            raise ConfigError("epochs must be at least 1 and max_steps at least 0")
        if self.seq_len < 16 or self.grad_accum < 1 or self.warmup < 0:
            raise ConfigError("seq_len >= 16, grad_accum >= 1 and warmup >= 0 are required")


@dataclass(frozen=True, kw_only=True)
class SFTConfig(EpochConfig):
    """Supervised fine-tuning on traces (`dca train collect`)."""

    max_easy: int = option(0, help="At most N traces of a question whose samples were mostly (3/4) right; 0: all.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_easy < 0:
            raise ConfigError(f"max_easy must be >= 0, got {self.max_easy}")


@dataclass(frozen=True, kw_only=True)
class DPOConfig(EpochConfig):
    """Preference training on right/wrong pairs (`dca train pairs`): DPO + NLL on the chosen (IRPO)."""

    init_adapter: str | None = option(
        None, help="LoRA GGUF to start from; it is also the reference policy.", shown="the base model"
    )
    lr: float = redefault(TrainConfig, "lr", 5e-5)
    beta: float = option(0.1, help="DPO beta: strength of the pull away from the reference.")
    nll_weight: float = option(1.0, help="Weight of the chosen response's NLL (IRPO); 0: plain DPO.")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0 or self.nll_weight < 0:
            raise ConfigError(f"beta must be > 0 and nll_weight >= 0, got {self.beta} and {self.nll_weight}")


@dataclass(frozen=True, kw_only=True)
class GRPOConfig(TrainConfig):
    """GRPO with verifiable rewards on train questions (never test rows)."""

    init_run: str = option("", help="An SFT run folder whose LoRA is the starting policy.", shown="a fresh LoRA")
    format: str = option("program", help="What the model writes.", choices=SOLUTION_FORMATS)
    rank: int = redefault(TrainConfig, "rank", 8)
    alpha: int = redefault(TrainConfig, "alpha", 16)
    lr: float = redefault(TrainConfig, "lr", 1e-5)
    steps: int = option(100, help="Optimizer steps.")
    questions: int = option(4, help="Questions per step.")
    group: int = option(8, help="Completions sampled per question (compared within the group).")
    max_new_tokens: int = option(256, help="Most tokens per completion.")
    temperature: float = option(1.0, help="Sampling temperature.")
    offset: int = option(0, help="Skip the first N train questions (a dev split).")
    checkpoint_every: int = redefault(TrainConfig, "checkpoint_every", 10)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.format not in SOLUTION_FORMATS:
            raise ConfigError(f"format must be program or cot, got {self.format!r}")
        if self.group < 2:
            raise ConfigError(f"a group needs at least 2 completions to compare, got {self.group}")
        if self.steps < 1 or self.questions < 1 or self.max_new_tokens < 1:
            raise ConfigError("steps, questions and max_new_tokens must be at least 1")
        if "test" in Path(self.data).name.lower():
            raise ConfigError(f"{self.data} looks like a test split; train on train rows only")
