"""A learned verifier: a logistic-regression probe on the base model's hidden state.

The probe reads the final hidden state at the last token of ``probe_prompt(question,
solution)`` (the question as the user's turn, the candidate solution as the assistant's:
a program with its output, or a thought with its answer) and gives P(the solution is right).
``dca train probe`` fits it on judged train-row samples; it is stored as JSON (weights, the
feature standardization, the base model it reads), never pickled. ``ProbeScorer`` is a
verifier for the ``verify`` strategy (the ``Scorer`` interface of dca/reasoning/verify.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dca.errors import ConfigError
from dca.runtime.llama import LlamaRuntime

FORMAT = "dca-probe-1"
MAX_SOLUTION_CHARS = 2400  # a long solution is cut from the front: its end holds the answer


def probe_prompt(runtime: LlamaRuntime, question: str, solution: str) -> str:
    """The text whose last hidden state the probe reads."""
    if len(solution) > MAX_SOLUTION_CHARS:
        solution = "..." + solution[-MAX_SOLUTION_CHARS:]
    return runtime.chat_prompt([{"role": "user", "content": question}]) + solution


@dataclass(frozen=True, kw_only=True)
class Probe:
    """Logistic regression on standardized hidden states."""

    base_model: str  # the generator whose hidden states it reads
    weights: np.ndarray  # one per hidden dimension
    bias: float
    mean: np.ndarray  # feature standardization, from the training rows
    scale: np.ndarray
    meta: dict[str, Any]  # training data, counts, dev AUROC

    def predict(self, features: np.ndarray) -> np.ndarray:
        """P(right) for each row of ``features`` (n x width)."""
        z = ((features - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -40, 40)))

    def require_model(self, model: str, what: str) -> None:
        """A one-line ConfigError unless this probe reads ``model``'s hidden states (``what`` names
        the probe in it)."""
        if self.base_model != model:
            raise ConfigError(
                f"this {what} reads {self.base_model}'s hidden states, not {model}'s; use it with --model {self.base_model}"
            )

    def score(self, state: np.ndarray, what: str) -> float:
        """P for one hidden state; a state of another width (another model's) is a one-line ConfigError."""
        if state.shape != self.weights.shape:
            raise ConfigError(
                f"the {what} has {len(self.weights)} weights but the model's hidden state has "
                f"{len(state)} values; it was trained for another model"
            )
        return float(self.predict(state[None, :].astype(np.float64))[0])

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "base_model": self.base_model,
            "bias": self.bias,
            "weights": [float(x) for x in self.weights],
            "mean": [float(x) for x in self.mean],
            "scale": [float(x) for x in self.scale],
            "meta": self.meta,
        }

    @classmethod
    def load(cls, path: Path, what: str = "verifier") -> Probe:
        """Read a probe file (``what`` names it in errors); a damaged or foreign file is a one-line ConfigError."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            hint = (
                "train one with `dca train probe`" if what == "verifier" else "reinstall dca or answer with --no-check"
            )
            raise ConfigError(f"{what} {path} does not exist; {hint}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{what} {path} is damaged ({type(exc).__name__}); {_again(what)}") from None
        return cls.from_json(data, path, what)

    @classmethod
    def from_json(cls, data: Any, path: Path, what: str = "verifier") -> Probe:
        """A probe from a probe file's parsed content (``path`` names it in errors)."""
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"format {data.get('format')!r}")
            weights, mean, scale = (np.asarray(data[k], dtype=np.float64) for k in ("weights", "mean", "scale"))
            bias = float(data["bias"])
            if not (weights.ndim == 1 and weights.shape == mean.shape == scale.shape and len(weights) > 0):
                raise ValueError("shapes differ")
            if not (
                np.isfinite(weights).all() and np.isfinite(mean).all() and (scale > 0).all() and math.isfinite(bias)
            ):
                raise ValueError("values out of range")
            return cls(
                base_model=str(data["base_model"]),
                weights=weights,
                bias=bias,
                mean=mean,
                scale=scale,
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"{what} {path} is damaged ({exc}); {_again(what)}") from None


def _again(what: str) -> str:
    return "train it again" if what == "verifier" else "reinstall dca, or answer with --no-check"


class ProbeScorer:
    """Scores a solution with a probe over ``runtime``'s hidden state (the verify strategy's verifier)."""

    def __init__(self, runtime: LlamaRuntime, probe: Probe) -> None:
        probe.require_model(runtime.name, "verifier")
        self.runtime = runtime
        self.probe = probe

    def score(self, question: str, solution: str) -> float:
        from dca.runtime.hidden import hidden_state

        return self.probe.score(hidden_state(self.runtime, probe_prompt(self.runtime, question, solution)), "verifier")


def answer_end(answer_prompt: str, answer: str, check_prompt: str) -> int:
    """Where ``answer`` ends in ``check_prompt``, the conversation that continues ``answer_prompt``
    with it (the token after it, in chat templates the one closing the turn, is the grounded
    probe's "answer" position).

    >>> check = "user: Q\\nassistant: A.\\nuser: stated?\\nassistant:"
    >>> check[: answer_end("user: Q\\nassistant:", "A.", check)]
    'user: Q\\nassistant: A.'
    """
    pairs = enumerate(zip(answer_prompt, check_prompt, strict=False))
    start = next((i for i, (a, b) in pairs if a != b), min(len(answer_prompt), len(check_prompt)))
    found = check_prompt.find(answer, start)
    if found < 0:
        raise ConfigError("the grounded check's prompt does not hold the answer (an unexpected chat template)")
    return found + len(answer)


GROUNDED = "grounded"  # meta["reads"] of a probe that scores whether the sources state an answer
GROUNDED_POSITIONS = ("question", "answer", "check")  # where its hidden state is read (meta["position"])


class GroundedScorer:
    """P(the sources state the answer): a probe over the hidden state at the end of the answer's
    prompt, at the token that closes the answer, or where the check reads P("Yes") (the probe's
    ``position``), all read in the grounded check's own forward pass (dca/answer/support.py asks the
    question; the probe replaces the P("Yes") the model gives to it; lab/NOTEBOOK.md)."""

    def __init__(self, runtime: LlamaRuntime, probe: Probe) -> None:
        if probe.meta.get("reads") != GROUNDED:
            raise ConfigError(
                "this probe scores reasoning samples (a verifier), not grounded answers; "
                "give a grounded-check probe (benchmarks/bench_grounded_probe.py --write-probe)"
            )
        probe.require_model(runtime.name, "grounded-check probe")
        self.position = str(probe.meta.get("position", "answer"))
        if self.position not in GROUNDED_POSITIONS:
            raise ConfigError(f"the grounded-check probe reads position {self.position!r}, which dca does not know")
        self.runtime = runtime
        self.probe = probe

    def score(self, answer_prompt: str, answer: str, check_prompt: str, config: Any) -> float:
        """``answer_prompt`` is what the answer was generated from, ``check_prompt`` the check's
        prompt that contains it followed by ``answer``."""
        _, states = grounded_states(self.runtime, answer_prompt, answer, check_prompt, config)
        return self.probe.score(states[GROUNDED_POSITIONS.index(self.position)], "grounded-check probe")


def grounded_states(
    runtime: LlamaRuntime, answer_prompt: str, answer: str, check_prompt: str, config: Any
) -> tuple[list[float], np.ndarray]:
    """The check's P("Yes"), P("No") and the hidden states at GROUNDED_POSITIONS (one row each),
    read in one pass from the end of the answer's prompt on: how every grounded probe is trained
    and scored. The same tokens evaluated in another split of batches give hidden states that
    differ by ~1 % (llama.cpp's kernels), which moved a probe's score by up to 0.13 (lab/NOTEBOOK.md)."""
    at = (
        len(runtime.tokenize(answer_prompt)) - 1,  # question: before the answer
        len(runtime.tokenize(check_prompt[: answer_end(answer_prompt, answer, check_prompt)])),  # answer
        -1,  # check: where the check reads P("Yes")
    )
    return runtime.choice_state(check_prompt, ["Yes", "No"], config, at=at)
