"""A preference-trained adapter as the verify strategy's verifier (V-STaR): llama.cpp's
log-probabilities of a response match torch's, `dca train dpo` writes a verifier file, and the
verifier prefers what the adapter was trained to prefer; damaged or foreign files are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from conftest import ScriptedGenerator  # noqa: E402
from tiny_models import tiny_qwen2, write_gguf  # noqa: E402

from dca.config import Paths  # noqa: E402
from dca.errors import ConfigError  # noqa: E402
from dca.reasoning.config import ReasoningConfig  # noqa: E402
from dca.reasoning.events import Finished  # noqa: E402
from dca.reasoning.run import reason  # noqa: E402
from dca.runtime.llama import LlamaRuntime, RuntimeConfig  # noqa: E402
from dca.train.base import RunFolder  # noqa: E402


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, object]:
    model, tokens = tiny_qwen2()
    return write_gguf(model, tokens, tmp_path / "tiny.gguf"), model


def test_llama_log_probabilities_match_torch(tiny: tuple[Path, object]) -> None:
    from dca.runtime.logprob import response_logprob
    from dca.train.data import encode
    from dca.train.dpo import sequence_logp

    path, model = tiny
    runtime = LlamaRuntime(path, name="tiny", config=RuntimeConfig(n_ctx=512))
    messages = [{"role": "system", "content": "Solve."}, {"role": "user", "content": "3 + 3?"}]
    response = "```python\nprint(3 + 3)\n```"
    example = encode(runtime, {"messages": messages, "response": response}, 512)
    with torch.no_grad():
        expected, n = sequence_logp(model.float().eval(), example)  # type: ignore[attr-defined]
    prompt = runtime.chat_prompt(messages) + "```python\n"
    got = response_logprob(runtime, prompt, response.removeprefix("```python\n"), adapter=None, end_of_turn=True)
    assert n > 3 and got == pytest.approx(float(expected), rel=2e-2, abs=5e-2)
    again = response_logprob(runtime, prompt, response.removeprefix("```python\n"), adapter=None, end_of_turn=True)
    assert again == pytest.approx(got, abs=1e-4)  # the prompt's KV cache reused: the same value
    shorter = response_logprob(runtime, prompt, "print(3)\n```", adapter=None)
    assert shorter != pytest.approx(got)


def test_dpo_writes_a_verifier_that_prefers_the_chosen(tmp_path: Path, tiny: tuple[Path, object], home: Paths) -> None:
    from test_train_dpo import _config

    from dca.pipeline.checks import load_verifier
    from dca.runtime.preference import PreferenceScorer, read_verifier
    from dca.train.dpo import train_dpo

    path, _ = tiny
    summary = train_dpo(_config(tmp_path, path), RunFolder.of("tiny-dpo", home, tmp_path / "run"))
    card = Path(summary["verifier"])
    data = json.loads(card.read_text())
    assert data["adapter"] == "tiny-dpo.gguf" and data["reference"] is None and data["base_model"] == "tiny"
    runtime = LlamaRuntime(path, name="tiny", config=RuntimeConfig(n_ctx=512))
    scorer = load_verifier(str(card), runtime)
    assert isinstance(scorer, PreferenceScorer)
    # the toy's pairs: "N + N?" prefers print(N + N) over print(N - N); the system prompt differs
    # from the toy's ("Solve."), so this also checks the reward carries to the program prompt
    right = scorer.score("2 + 2?", "```python\nprint(2 + 2)\n```\nOutput: 4")
    wrong = scorer.score("2 + 2?", "```python\nprint(2 - 2)\n```\nOutput: 0")
    assert 0.0 <= wrong < right <= 1.0
    assert scorer.score("2 + 2?", "I think it is 4.\nThe answer is 4.") == 0.5  # a thought: no opinion
    # bad files, each one line
    other = LlamaRuntime(path, name="other", config=RuntimeConfig(n_ctx=512))
    with pytest.raises(ConfigError, match="trained on tiny, not other"):
        load_verifier(str(card), other)
    for damage in ("{not json", json.dumps({**data, "beta": -1}), json.dumps({**data, "format": "pickle"}), "[]"):
        card.write_text(damage)
        with pytest.raises(ConfigError, match="is damaged"):
            read_verifier(card)
    card.write_text(json.dumps({**data, "adapter": "gone.gguf"}))
    with pytest.raises(ConfigError, match="names adapter .*gone.gguf, which does not exist"):
        read_verifier(card)


def test_verify_on_programs_draws_programs() -> None:
    generator = ScriptedGenerator(["print(4)\n```", "print(5)\n```", "print(4)\n```"])
    messages = [{"role": "user", "content": "What is 2 + 2?"}]
    config = ReasoningConfig(strategy="verify", n_samples=3, adaptive=False, verify_on="program")
    result = next(e for e in reason(generator, messages, config, question="What is 2 + 2?") if isinstance(e, Finished))
    assert [s.kind for s in result.result.samples] == ["program"] * 3 and result.result.final == "4"
    with pytest.raises(ConfigError, match="unknown verify samples"):
        ReasoningConfig(strategy="verify", verify_on="vibes")
