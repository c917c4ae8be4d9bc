"""Token certainty: llama.cpp reports each generated token's log-probability and its
step's confidence without changing what greedy decoding writes, and the program strategy keeps
a summary of them on its sample."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from conftest import ScriptedGenerator
from tiny_models import tiny_runtime

from dca.reasoning.certainty import certainty
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import Finished
from dca.reasoning.run import reason
from dca.runtime.generation import Completion, GenerationConfig


def test_log_probabilities_are_read_without_changing_greedy_output(tmp_path: Path) -> None:
    runtime, _ = tiny_runtime(tmp_path)
    prompt = runtime.chat_prompt([{"role": "user", "content": "3 + 3?"}])
    config = GenerationConfig(max_tokens=12, ignore_eos=True)
    runs = []
    for logprobs in (False, False, True):  # the first run fills the prompt's cache; compare warm runs
        completion = Completion()
        "".join(runtime.stream(prompt, GenerationConfig(**{**config.__dict__, "logprobs": logprobs}), completion))
        runs.append(completion)
    plain, read = runs[1], runs[2]
    assert read.tokens == plain.tokens and len(read.token_logprobs) == len(read.tokens) == 12
    assert not plain.token_logprobs and not plain.token_confidence
    for logprob, confidence in zip(read.token_logprobs, read.token_confidence, strict=True):
        # greedy takes the most likely token, so the top tokens' mean log-probability is at most its own
        assert logprob <= 0 and confidence >= -logprob - 1e-6
    summary = certainty(read)
    assert summary is not None and summary["min_logprob"] == pytest.approx(min(read.token_logprobs), abs=1e-4)
    assert "token_logprobs" not in read.to_json()


def test_the_program_sample_carries_its_certainty() -> None:
    class Sure(ScriptedGenerator):
        def stream(self, prompt: str, config: GenerationConfig, completion: Completion | None = None):  # type: ignore[no-untyped-def]
            assert config.logprobs  # programs ask for them
            if completion is not None:
                completion.token_logprobs, completion.token_confidence = [-0.5, -0.1], [4.0, 9.0]
            yield from super().stream(prompt, config, completion)

    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    events = list(reason(Sure(["print(2 + 2)\n```"]), messages, ReasoningConfig(strategy="program"), question="2+2"))
    result = events[-1].result if isinstance(events[-1], Finished) else None
    assert result is not None and result.final == "4"
    assert result.samples[0].certainty == {
        "mean_logprob": -0.3,
        "min_logprob": -0.5,
        "mean_conf": 6.5,
        "min_window_conf": 6.5,
        "tail_conf": 6.5,
        "low10_conf": 4.0,
    }
    assert result.to_json()["samples"][0]["certainty"]["min_logprob"] == -0.5


class _Certain(ScriptedGenerator):
    """Scripted programs, each generated with the step confidence given beside it."""

    def __init__(self, programs: list[tuple[str, float]]) -> None:
        super().__init__([text for text, _ in programs])
        self.confidence = [value for _, value in programs]

    def stream(self, prompt: str, config: GenerationConfig, completion: Completion | None = None):  # type: ignore[no-untyped-def]
        value = self.confidence[min(len(self.prompts), len(self.confidence) - 1)]
        if completion is not None and config.logprobs:
            completion.token_logprobs, completion.token_confidence = [-0.1] * 3, [value] * 3
        yield from super().stream(prompt, config, completion)


def _verify(generator: _Certain, question: str, **config: object) -> list[object]:
    settings = ReasoningConfig(strategy="verify", verify_on="program", n_samples=5, **config)  # type: ignore[arg-type]
    messages = [{"role": "user", "content": question}]
    result = list(reason(generator, messages, settings, question=question))[-1]
    assert isinstance(result, Finished)
    return result.result.samples  # type: ignore[no-any-return]


def test_a_sure_greedy_program_answers_alone_and_a_doubtful_one_draws_more() -> None:
    sure = _Certain([("print(4)\n```", 11.0)] * 5)
    assert len(_verify(sure, "How many apples?", sure_above=10.0)) == 1
    assert len(sure.prompts) == 1
    doubtful = _Certain([("print(4)\n```", 9.0)] + [("print(5)\n```", 11.0)] * 4)
    assert len(_verify(doubtful, "How many apples?", sure_above=10.0)) > 1
    flagged = _Certain([("print(-4)\n```", 12.0)] + [("print(4)\n```", 11.0)] * 4)  # sure, but a negative amount
    samples = _verify(flagged, "How much money is left?", sure_above=10.0)
    assert len(samples) > 1
    remote = ScriptedGenerator(["print(4)\n```", "print(5)\n```"])  # no token probabilities: the facts decide
    assert len(_verify(remote, "How many apples?", sure_above=10.0)) == 1  # type: ignore[arg-type]
    off = _Certain([("print(4)\n```", 11.0)] * 5)
    assert len(_verify(off, "How many apples?")) > 1  # None: verify as before, at least 2 samples


def test_sure_above_is_checked() -> None:
    from dca.errors import ConfigError

    with pytest.raises(ConfigError, match="--sure-above must be a certainty >= 0"):
        ReasoningConfig(strategy="verify", sure_above=-1.0)
