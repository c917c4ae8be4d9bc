"""Token certainty (issue 29): llama.cpp reports each generated token's log-probability and its
step's confidence without changing what greedy decoding writes, and the program strategy keeps
a summary of them on its sample."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from conftest import ScriptedGenerator
from tiny_models import tiny_qwen2, write_gguf

from dca.reasoning.certainty import certainty
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import Finished
from dca.reasoning.run import reason
from dca.runtime.generation import Completion, GenerationConfig
from dca.runtime.llama import LlamaRuntime, RuntimeConfig


def test_log_probabilities_are_read_without_changing_greedy_output(tmp_path: Path) -> None:
    model, tokens = tiny_qwen2()
    runtime = LlamaRuntime(
        write_gguf(model, tokens, tmp_path / "tiny.gguf"), name="tiny", config=RuntimeConfig(n_ctx=256)
    )
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
