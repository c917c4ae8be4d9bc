"""A preference-trained adapter as a verifier (V-STaR; DPO's implicit reward).

`dca train dpo` trains a LoRA to prefer right solutions over wrong ones against a reference
policy (the base, or the adapter it started from). The log-probability it gains on a candidate
against that reference, ``beta * (log p_adapter - log p_reference)``, is DPO's implicit reward:
high for solutions like the ones it learned to prefer. ``PreferenceScorer`` reads both
log-probabilities on side contexts (dca/runtime/logprob.py) and gives ``sigmoid(reward)`` as
the candidate's weight in the ``verify`` strategy. The verifier file (``NAME.verifier.json``,
written beside the adapter) names the adapter, the reference and beta; it is JSON, and a
damaged or foreign one is a one-line error.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dca.errors import ConfigError
from dca.runtime.llama import LlamaRuntime

FORMAT = "dca-preference-verifier-1"


@dataclass(frozen=True, kw_only=True)
class PreferenceVerifier:
    """What a preference verifier file says."""

    base_model: str  # the generator the adapters were trained on
    adapter: Path  # the preference-trained LoRA (GGUF)
    reference: Path | None  # the LoRA the training started from; None: the base alone
    beta: float  # DPO's beta: the reward's scale
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self, folder: Path) -> dict[str, Any]:
        """The file's content; adapter paths inside ``folder`` are written relative to it."""

        def name(path: Path | None) -> str | None:
            if path is None:
                return None
            return str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)

        return {
            "format": FORMAT,
            "base_model": self.base_model,
            "adapter": name(self.adapter),
            "reference": name(self.reference),
            "beta": self.beta,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], folder: Path) -> PreferenceVerifier:
        def where(value: object) -> Path | None:
            if value is None:
                return None
            path = Path(str(value))
            return path if path.is_absolute() else folder / path

        adapter = where(data["adapter"])
        beta = float(data["beta"])
        if adapter is None or not (beta > 0 and math.isfinite(beta)):
            raise ValueError("no adapter, or beta out of range")
        return cls(
            base_model=str(data["base_model"]),
            adapter=adapter,
            reference=where(data.get("reference")),
            beta=beta,
            meta=dict(data.get("meta", {})),
        )


def read_verifier(path: Path) -> Any:
    """A verifier file: a probe (``dca train probe``) or a preference verifier (``dca train dpo``)."""
    from dca.runtime.probe import FORMAT as PROBE_FORMAT
    from dca.runtime.probe import Probe

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"verifier {path} does not exist; train one with `dca train probe` or `dca train dpo`"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"verifier {path} is damaged ({type(exc).__name__}); train it again") from None
    kind = data.get("format") if isinstance(data, dict) else None
    if kind == PROBE_FORMAT:
        return Probe.from_json(data, path)
    if kind != FORMAT:
        raise ConfigError(f"verifier {path} is damaged (format {kind!r}); train it again")
    try:
        verifier = PreferenceVerifier.from_json(data, path.parent)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"verifier {path} is damaged ({exc}); train it again") from None
    for adapter in (verifier.adapter, verifier.reference):
        if adapter is not None and not adapter.is_file():
            raise ConfigError(f"verifier {path} names adapter {adapter}, which does not exist")
    return verifier


class PreferenceScorer:
    """Scores a candidate by the preference adapter's implicit reward (the verify strategy's verifier).

    ``prompt_for(question)`` is the chat prompt the adapter was trained under; ``response_of(solution)``
    is the response it would have written for a solution text, or None for a candidate of
    another kind (it gets 0.5, no opinion).
    """

    def __init__(
        self,
        runtime: LlamaRuntime,
        verifier: PreferenceVerifier,
        *,
        prompt_for: Callable[[str], str],
        response_of: Callable[[str], str | None],
    ) -> None:
        if verifier.base_model != runtime.name:
            raise ConfigError(
                f"this verifier's adapter was trained on {verifier.base_model}, not {runtime.name}; "
                f"use it with --model {verifier.base_model}"
            )
        self.runtime = runtime
        self.verifier = verifier
        self.prompt_for = prompt_for
        self.response_of = response_of
        self.adapter = f"verifier:{verifier.adapter.name}"
        runtime.load_adapter(self.adapter, verifier.adapter)
        self.reference: str | None = None
        if verifier.reference is not None:
            self.reference = f"verifier-reference:{verifier.reference.name}"
            runtime.load_adapter(self.reference, verifier.reference)

    def reward(self, question: str, solution: str) -> float | None:
        """beta * (log p_adapter - log p_reference) of the candidate's response; None: not scored."""
        from dca.runtime.logprob import response_logprob

        response = self.response_of(solution)
        if response is None:
            return None
        prompt = self.prompt_for(question)
        trained = response_logprob(self.runtime, prompt, response, adapter=self.adapter, end_of_turn=True)
        reference = response_logprob(self.runtime, prompt, response, adapter=self.reference, end_of_turn=True)
        return self.verifier.beta * (trained - reference)

    def score(self, question: str, solution: str) -> float:
        reward = self.reward(question, solution)
        if reward is None:
            return 0.5
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, reward))))
