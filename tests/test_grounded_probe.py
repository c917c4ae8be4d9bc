"""Grounded or not, read from the hidden state (issue 31): the state where the grounded check
reads P("Yes"), taken from the same forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tiny_models import tiny_qwen2, write_gguf

from dca.errors import GeneratorError
from dca.runtime.generation import Completion, GenerationConfig
from dca.runtime.hidden import hidden_state
from dca.runtime.llama import LlamaRuntime, RuntimeConfig


def test_the_choice_state_is_the_hidden_state_and_changes_nothing(tmp_path: Path) -> None:
    model, tokens = tiny_qwen2()
    runtime = LlamaRuntime(
        write_gguf(model, tokens, tmp_path / "tiny.gguf"), name="tiny", config=RuntimeConfig(n_ctx=256)
    )
    answer = runtime.chat_prompt([{"role": "user", "content": "Sources: [1] 3 + 3 is 6. Question: 3 + 3?"}])
    config = GenerationConfig(max_tokens=8, ignore_eos=True)
    first = Completion()
    text = "".join(runtime.stream(answer, config, first))
    check = runtime.chat_prompt(
        [
            {"role": "user", "content": "Sources: [1] 3 + 3 is 6. Question: 3 + 3?"},
            {"role": "assistant", "content": text},
            {"role": "user", "content": "Is that answer stated in the sources above?"},
        ]
    )
    one = GenerationConfig(temperature=0.0, max_tokens=1)
    plain = runtime.choice_probabilities(check, ["Yes", "No"], one)
    probabilities, states = runtime.choice_state(check, ["Yes", "No"], one)
    state = states[0]
    assert probabilities == pytest.approx(plain, abs=1e-6) and sum(probabilities) == pytest.approx(1.0)
    # the same state a second context reads from the whole prompt (its own prefill, no cache)
    assert state.shape == (model.config.hidden_size,) and state.dtype == np.float32
    assert np.allclose(state, hidden_state(runtime, check), atol=1e-3)
    again = runtime.choice_state(check, ["Yes", "No"], one)[1][0]  # all of it cached: still read, the same
    assert np.allclose(again, state, atol=1e-3)
    # states at earlier positions come from the same pass: the end of the answer's prompt
    before = len(runtime.tokenize(answer)) - 1
    both = runtime.choice_state(check, ["Yes", "No"], one, at=(before, -1))[1]
    assert both.shape == (2, model.config.hidden_size)
    assert np.allclose(both[0], hidden_state(runtime, answer), atol=1e-3) and np.allclose(both[1], state, atol=1e-3)
    with pytest.raises(GeneratorError, match="outside a prompt"):
        runtime.choice_state(check, ["Yes", "No"], one, at=(len(runtime.tokenize(check)),))
    # embeddings are off again: generation is what it was
    second = Completion()
    assert "".join(runtime.stream(answer, config, second)) == text and second.tokens == first.tokens
    assert runtime.choice_probabilities(check, ["Yes", "No"], one) == pytest.approx(plain, abs=1e-6)
