"""The generation interface every answer goes through: ``Generator``, its configs and results.

``LlamaRuntime`` implements it for real models and the tests' scripted generator fakes it,
so the answering pipeline and the reasoning strategies never depend on llama.cpp.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dca.errors import ConfigError

MAX_SAMPLES = 64  # most samples one call may ask for (memory and time grow with each)


@dataclass(frozen=True, kw_only=True)
class GenerationConfig:
    """How one answer is sampled."""

    max_tokens: int = 512  # most tokens to generate
    temperature: float = 0.0  # 0 = greedy (deterministic)
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    stop: tuple[str, ...] = ()  # strings that end the answer (not included in it)
    seed: int | None = None  # None = the runtime's seed
    adapter: str | None = None  # a loaded LoRA adapter's name; None = the base model
    adapter_scale: float = 1.0  # strength of the adapter
    ignore_eos: bool = False  # keep generating past end-of-turn (benchmarks: fixed-length outputs)
    logprobs: bool = False  # record each generated token's log-probability and confidence (local runtime)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError(f"max_tokens must be at least 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")


@dataclass(kw_only=True)
class Completion:
    """One generated text with its costs."""

    text: str = ""
    finish_reason: str = ""  # "stop" (end of turn or a stop string), "length" or "interrupted"
    prompt_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused
    completion_tokens: int = 0
    prompt_seconds: float = 0.0  # time to the first generated token
    decode_seconds: float = 0.0
    tokens: list[int] = field(default_factory=list)
    # with GenerationConfig.logprobs, one entry per generated token (the end of turn included):
    # its log-probability, and its step's confidence, minus the mean log-probability of the
    # CONFIDENCE_TOP most likely tokens (high where the distribution is peaked)
    token_logprobs: list[float] = field(default_factory=list)
    token_confidence: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in _PER_TOKEN}


CONFIDENCE_TOP = 10
_PER_TOKEN = ("tokens", "token_logprobs", "token_confidence")


class Generator(Protocol):
    """What answering and reasoning need from a language model (LlamaRuntime, RemoteRuntime,
    TorchGenerator, or a fake in tests), abilities that not every backend has included."""

    name: str
    n_ctx: int
    # LoRA adapters load into this process (False: a server holds the weights; the pipeline then
    # answers with the base model and says so)
    supports_adapters: bool
    # the hidden state can be read (``choice_state``): learned probes score with it
    reads_hidden_states: bool

    @property
    def control_tokens(self) -> tuple[str, ...]:
        """The template's control strings, which quoted sources must not contain."""
        ...

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The model's chat template applied to ``messages``, ready for the assistant's turn."""
        ...

    def tokenize(self, prompt: str) -> list[int]: ...

    def stream(self, prompt: str, config: GenerationConfig, completion: Completion | None = None) -> Iterator[str]:
        """Yield text as it is generated; ``completion`` receives the counts (also when closed early).

        Consecutive prompts that extend the previous one reuse its KV cache: continuing a
        text costs only the new tokens.
        """
        ...

    def sample(self, prompt: str, n: int, config: GenerationConfig) -> list[Completion]:
        """``n`` completions of ``prompt``; sample ``s`` uses seed ``config.seed + s``."""
        ...

    def choice_probabilities(self, prompt: str, choices: Sequence[str], config: GenerationConfig) -> list[float]:
        """Probability of each choice's first token as the next token after ``prompt`` (renormalized)."""
        ...

    def load_adapter(self, name: str, path: Path) -> None: ...


class StateReader(Generator, Protocol):
    """A generator whose ``reads_hidden_states`` is True (LlamaRuntime): learned probes read it."""

    def prompt_state(self, prompt: str, config: GenerationConfig) -> Any:
        """The final hidden state (float32 array) at the last token of ``prompt``, read so that an
        answer generated next from the same prompt reuses the evaluation."""
        ...


def check_samples(n: int) -> int:
    """``n`` if it is a sane number of samples, else a ConfigError naming the range."""
    if not 1 <= n <= MAX_SAMPLES:
        raise ConfigError(f"the number of samples must be between 1 and {MAX_SAMPLES}, got {n}")
    return n
