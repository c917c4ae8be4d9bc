"""Grounded or not, read from the hidden state: the state where the grounded check
reads P("Yes"), taken from the same forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from tiny_models import tiny_runtime

from dca.config import Paths
from dca.errors import GeneratorError
from dca.runtime.generation import Completion, GenerationConfig
from dca.runtime.hidden import hidden_state


def test_the_choice_state_is_the_hidden_state_and_changes_nothing(tmp_path: Path) -> None:
    runtime, model = tiny_runtime(tmp_path)
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


def _grounded_probe(path: Path, width: int, *, bias: float, position: str = "answer", **meta: object) -> Path:
    import json

    from dca.runtime.probe import GROUNDED, Probe

    rng = np.random.default_rng(0)
    probe = Probe(
        base_model="tiny",
        weights=rng.normal(size=width) * 0.01,
        bias=bias,
        mean=np.zeros(width),
        scale=np.ones(width),
        meta={"reads": GROUNDED, "position": position, **meta},
    )
    path.write_text(json.dumps(probe.to_json()))
    return path


def test_the_grounded_check_scores_with_a_probe_at_the_state_it_names(tmp_path: Path, home: Paths) -> None:
    from dca.answer.support import support_messages
    from dca.pipeline.checks import probe_support, support_score
    from dca.runtime.probe import GroundedScorer, Probe, answer_end

    runtime, model = tiny_runtime(tmp_path)
    width = model.config.hidden_size
    messages = [{"role": "user", "content": "Sources: [1] 3 + 3 is 6. Question: 3 + 3?"}]
    gen = GenerationConfig(max_tokens=6, ignore_eos=True)
    text = "".join(runtime.stream(runtime.chat_prompt(messages), gen)).strip() or "six"
    plain = support_score(runtime, messages, text, gen)  # P("Yes")

    def scored(path: Path) -> float:  # the support check's score as an experiment injects it
        return probe_support(GroundedScorer(runtime, Probe.load(path)))(runtime, messages, text, gen)

    answer_prompt = runtime.chat_prompt(messages)
    check = runtime.chat_prompt(support_messages(messages, text))
    closing = len(runtime.tokenize(check[: answer_end(answer_prompt, text, check)]))  # the token after the answer
    one = GenerationConfig(temperature=0.0, max_tokens=1)
    at_answer = runtime.choice_state(check, ["Yes", "No"], one, at=(closing,))[1][0]
    expected = {  # each state read on its own
        "question": hidden_state(runtime, answer_prompt),
        "answer": at_answer,
        "check": hidden_state(runtime, check),
    }
    for position, state in expected.items():
        path = _grounded_probe(tmp_path / f"{position}.json", width, bias=0.3, position=position)
        score = scored(path)
        assert score == pytest.approx(float(Probe.load(path).predict(state[None, :].astype(float))[0]), abs=1e-5)
        assert score != pytest.approx(plain)
    assert not np.allclose(expected["question"], expected["answer"]) and not np.allclose(
        expected["answer"], expected["check"]
    )
    # bias alone moves the score: the probe, not P("Yes"), decides
    low = _grounded_probe(tmp_path / "low.json", width, bias=-4.0)
    high = _grounded_probe(tmp_path / "high.json", width, bias=4.0)
    assert scored(low) < 0.1 and scored(high) > 0.9


def test_a_wrong_grounded_probe_is_one_line(tmp_path: Path) -> None:
    import json

    from dca.errors import ConfigError
    from dca.runtime.probe import GroundedScorer, Probe

    path = _grounded_probe(tmp_path / "g.json", 8, bias=0.0)
    damaged = tmp_path / "damaged.json"
    damaged.write_text("{not json")
    with pytest.raises(ConfigError, match="damaged"):
        Probe.load(damaged)

    class Named:
        name = "tiny"

    verifier = json.loads(path.read_text())
    verifier["meta"] = {}
    (tmp_path / "verifier.json").write_text(json.dumps(verifier))
    with pytest.raises(ConfigError, match="scores reasoning samples"):
        GroundedScorer(Named(), Probe.load(tmp_path / "verifier.json"))  # type: ignore[arg-type]
    Named.name = "other"
    with pytest.raises(ConfigError, match="reads tiny's hidden states, not other's"):
        GroundedScorer(Named(), Probe.load(path))  # type: ignore[arg-type]
    Named.name = "tiny"
    unknown = _grounded_probe(tmp_path / "u.json", 8, bias=0.0, position="middle")
    with pytest.raises(ConfigError, match="position 'middle'"):
        GroundedScorer(Named(), Probe.load(unknown))  # type: ignore[arg-type]


def test_a_probe_is_no_catalog_role() -> None:
    """The grounded-check probe left dca's surface (it did not beat P("Yes")): the catalog has no
    role for one, so no catalog can make it a default."""
    from dca.errors import CatalogError
    from dca.models.catalog import ModelEntry, ModelSource

    with pytest.raises(CatalogError, match="role"):
        ModelEntry(
            name="p", role="probe", file="p.json", size=0, sha256="", source=ModelSource(kind="local", path="/p")
        )
