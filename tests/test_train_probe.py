"""The learned verifier: a logistic-regression probe on hidden states, trained on
judged samples, stored as JSON, scoring through the verify strategy's Scorer interface."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dca.config import Paths
from dca.errors import ConfigError, TrainError
from dca.runtime.probe import Probe
from dca.train.base import RunFolder
from dca.train.probe import auroc, fit_logistic, read_samples


def test_the_logistic_fit_separates_a_learnable_toy() -> None:
    rng = np.random.default_rng(0)
    direction = rng.normal(size=16)
    x = rng.normal(size=(400, 16))
    y = (x @ direction + 0.3 * rng.normal(size=400)) > 0
    weights, bias = fit_logistic(x[:300], y[:300], l2=1.0)
    scores = x[300:] @ weights + bias
    assert auroc(scores, y[300:]) > 0.95
    assert np.isnan(auroc([0.1, 0.2], [True, True]))


def test_with_fewer_rows_than_features_the_fit_is_the_same_in_the_rows_basis() -> None:
    from dca.train.probe import _newton

    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 50))
    y = x[:, 0] + 0.5 * rng.normal(size=20) > 0
    weights, bias = fit_logistic(x, y, l2=3.0)  # 20 rows, 50 features: the reduced fit
    full_weights, full_bias = _newton(x, y, l2=3.0, steps=50)  # the 50-dimensional Newton fit
    assert np.allclose(weights, full_weights, atol=1e-6) and bias == pytest.approx(full_bias, abs=1e-6)


def _probe(width: int = 3) -> Probe:
    return Probe(
        base_model="tiny",
        weights=np.ones(width),
        bias=-1.0,
        mean=np.zeros(width),
        scale=np.ones(width),
        meta={"dev_auroc": 0.8},
    )


def test_a_probe_round_trips_and_a_damaged_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "v.probe.json"
    path.write_text(json.dumps(_probe().to_json()))
    loaded = Probe.load(path)
    assert loaded.base_model == "tiny" and loaded.meta["dev_auroc"] == 0.8
    assert loaded.predict(np.array([[1.0, 0.0, 0.0]]))[0] == pytest.approx(0.5)
    for damage in ("{not json", json.dumps({**_probe().to_json(), "weights": [1.0]}),
                   json.dumps({**_probe().to_json(), "scale": [0.0, 1.0, 1.0]}),
                   json.dumps({**_probe().to_json(), "format": "pickle"}), "[]"):  # fmt: skip
        path.write_text(damage)
        with pytest.raises(ConfigError, match="is damaged"):
            Probe.load(path)
    with pytest.raises(ConfigError, match="does not exist"):
        Probe.load(tmp_path / "missing.json")


def _traces(path: Path, n: int = 10) -> Path:
    rows = []
    for i in range(n):
        samples = [
            {"response": f"```python\nprint({i} + {i})\n```", "kind": "program", "final": str(2 * i),
             "output": str(2 * i), "correct": True},
            {"response": f"```python\nprint({i} * 3 + 1)\n```", "kind": "program", "final": str(3 * i + 1),
             "output": str(3 * i + 1), "correct": False},
            {"response": "```python\nraise ValueError\n```", "kind": "program", "final": "", "output": "",
             "error": "ValueError", "correct": False},
        ]  # fmt: skip
        rows.append({"id": f"q{i}", "question": f"What is {i} + {i}?", "gold": str(2 * i), "samples": samples})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_samples_become_rows_with_the_verifiers_text_and_vote_share(tmp_path: Path) -> None:
    rows = read_samples(_traces(tmp_path / "t.jsonl", 2))
    assert len(rows) == 6 and rows[0]["solution"] == "```python\nprint(0 + 0)\n```\nOutput: 0"
    assert [r["right"] for r in rows[:3]] == [True, False, False]
    assert rows[2]["vote_share"] == 0.0  # a failed program has no answer to share
    only_right = tmp_path / "r.jsonl"
    only_right.write_text(json.dumps({"question": "q", "samples": [{**json.loads(
        (tmp_path / "t.jsonl").read_text().splitlines()[0])["samples"][0]}]}) + "\n")  # fmt: skip
    with pytest.raises(TrainError, match="both right and wrong"):
        read_samples(only_right)


def test_the_probe_trains_on_a_tiny_model_and_scores_through_the_scorer(
    tmp_path: Path, home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    from tiny_models import tiny_qwen2, write_gguf

    from dca.runtime import hidden
    from dca.runtime.llama import LlamaRuntime, RuntimeConfig
    from dca.runtime.probe import ProbeScorer
    from dca.train.probe import L2_GRID, ProbeConfig, held_out, train_probe

    model, tokens = tiny_qwen2()
    tiny = write_gguf(model, tokens, tmp_path / "tiny.gguf")
    data = _traces(tmp_path / "t.jsonl", 12)
    config = ProbeConfig(data=str(data), model=str(tiny), dev_fraction=0.3, l2=0.1)
    summary = train_probe(config, RunFolder.of("v", home, tmp_path / "run"))
    held = sum(held_out(f"What is {i} + {i}?", 0.3) for i in range(12))
    assert 0 < held < 12 and summary["dev_questions"] == held
    assert summary["train_samples"] == 3 * (12 - held) and summary["dev_samples"] == 3 * held
    assert summary["train_auroc"] > 0.9  # it fits what it was trained on
    assert 0.0 <= summary["dev_auroc"] <= 1.0 and 0.0 <= summary["dev_vote_share_auroc"] <= 1.0
    assert 0.0 <= summary["dev_within_auroc"] <= 1.0 and 0.0 <= summary["dev_vote_share_within_auroc"] <= 1.0
    assert summary["dev_any_accuracy"] == 1.0 and 0.0 <= summary["dev_weighted_accuracy"] <= 1.0
    with np.load(tmp_path / "run" / "features.npz") as cache:
        assert cache["values"].shape[0] == 36
    runtime = LlamaRuntime(tiny, name="tiny", config=RuntimeConfig(n_ctx=512))
    calls = []
    real = hidden.hidden_state
    monkeypatch.setattr(hidden, "hidden_state", lambda rt, prompt: calls.append(prompt) or real(rt, prompt))
    again = train_probe(config, RunFolder.of("v", home, tmp_path / "run"))  # features from the cache
    assert again["train_auroc"] == summary["train_auroc"] and calls == []
    grown = tmp_path / "grown.jsonl"
    grown.write_text(data.read_text() + _traces(tmp_path / "more.jsonl", 13).read_text().splitlines()[-1] + "\n")
    chosen = train_probe(replace(config, data=str(grown), l2=None), RunFolder.of("v", home, tmp_path / "run"))
    assert len(calls) == 3  # a grown file: only the new question's samples are read
    assert chosen["l2"] in L2_GRID and set(chosen["cv_auroc"]) == {f"{x:g}" for x in L2_GRID}
    probe = Probe.load(Path(summary["probe"]))
    scorer = ProbeScorer(runtime, probe)
    score = scorer.score("What is 1 + 1?", "```python\nprint(1 + 1)\n```\nOutput: 2")
    assert 0.0 <= score <= 1.0
    other = LlamaRuntime(tiny, name="other", config=RuntimeConfig(n_ctx=512))
    with pytest.raises(ConfigError, match="reads tiny's hidden states, not other's"):
        ProbeScorer(other, probe)
    from dca.pipeline import AskConfig
    from dca.pipeline.checks import load_verifier

    assert isinstance(load_verifier(summary["probe"], runtime), ProbeScorer)  # what verify gets with --verifier
    with pytest.raises(ConfigError, match="verifier .* does not exist"):
        AskConfig(verifier=str(tmp_path / "missing.probe.json"))
