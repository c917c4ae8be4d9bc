"""The learned verifier that ships with dca: a catalog entry (role verifier, bundled, pinned by
sha256, made for one base model) with its NAME.verifier.json beside the adapter; the verify
strategy's default, off with `--verifier none`, skipped (said once) where the weights are on a
server, named in an eval run's config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ScriptedGenerator, catalog_with_bundled
from typer.testing import CliRunner

from dca.api import AskConfig, Assistant
from dca.cli import app
from dca.config import Paths
from dca.errors import ConfigError
from dca.eval.runner import eval_config, resolve_config
from dca.models.catalog import Catalog
from dca.pipeline import checks
from dca.reasoning.config import ReasoningConfig
from dca.runtime.adapters import choose_verifier

runner = CliRunner()
VERIFIER = b"GGUF fake verifier adapter bytes"


def _catalog(paths: Paths, *, base: str = "scripted") -> Path:
    adapter = catalog_with_bundled(paths, name="judge-test", role="verifier", base=base, data=VERIFIER)
    card = adapter.with_name("judge-test.verifier.json")
    card.write_text(
        json.dumps(
            {"format": "dca-preference-verifier-1", "adapter": "judge-test.gguf", "base_model": base, "beta": 0.1}
        ),
        encoding="utf-8",
    )
    return card


def test_a_verifier_entry_names_its_base(home: Paths) -> None:
    _catalog(home)
    entry = Catalog.load(home).verifier_for("scripted")
    assert entry is not None and entry.name == "judge-test"
    assert Catalog.load(home).verifier_for("another-model") is None  # without a base: test_adapter_default


def test_the_default_verifier_none_a_file_and_a_catalog_name(home: Paths, tmp_path: Path) -> None:
    card = _catalog(home)
    assert choose_verifier(None, "scripted", home) == str(card)
    assert choose_verifier("none", "scripted", home) is None
    assert choose_verifier("judge-test", "other", home) == str(card)  # asked for by name
    mine = tmp_path / "mine.probe.json"
    mine.write_text("{}", encoding="utf-8")
    assert choose_verifier(str(mine), "scripted", home) == str(mine)
    assert choose_verifier(None, "other-model", home) is None  # made for another base
    with pytest.raises(ConfigError, match="verifier nope does not exist; .* or none"):
        choose_verifier("nope", "scripted", home)
    with pytest.raises(ConfigError, match="verifier scripted does not exist"):  # a generator is no verifier
        choose_verifier("scripted", "scripted", home)


def test_a_damaged_or_incomplete_verifier_is_not_used(home: Paths, caplog: pytest.LogCaptureFixture) -> None:
    card = _catalog(home)
    (card.parent / "judge-test.gguf").write_bytes(b"X" * len(VERIFIER))  # same size, other bytes
    assert choose_verifier(None, "scripted", home) is None
    assert "judge-test is not used" in caplog.text
    _catalog(home)
    card.unlink()
    assert choose_verifier(None, "scripted", home) is None
    assert "judge-test.verifier.json is missing" in caplog.text


class _ServerGenerator(ScriptedGenerator):
    supports_adapters = False  # as the openai backend: the weights are on the server


def test_the_verify_strategy_weighs_with_the_default_and_a_server_skips_it(
    home: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = _catalog(home)
    seen: list[Any] = []
    monkeypatch.setattr(checks, "load_verifier", lambda path, generator: seen.append(path))
    verify = ReasoningConfig(strategy="verify", n_samples=2, verify_on="program")
    scripted = ["```python\nprint(4)\n```"]
    weighed = Assistant(index=None, home=home.home, generator=ScriptedGenerator(scripted)).ask(
        "2 + 2?", config=AskConfig(retrieval=False, adapter="none", reasoning=verify)
    )
    off = AskConfig(retrieval=False, adapter="none", verifier="none", reasoning=verify)
    facts = Assistant(index=None, home=home.home, generator=ScriptedGenerator(scripted)).ask("2 + 2?", config=off)
    assert (weighed.to_json()["verifier"], facts.to_json()["verifier"]) == ("judge-test", None)  # said to apps
    answer = Assistant(index=None, home=home.home, generator=_ServerGenerator(scripted)).ask(
        "2 + 2?", config=AskConfig(retrieval=False, adapter="none", reasoning=verify)
    )
    assert seen == [str(card), None, None]
    assert any("without dca's learned verifier" in w for w in answer.warnings)


def test_eval_records_the_verifier_a_verify_run_uses(home: Paths, tmp_path: Path) -> None:
    card = _catalog(home)
    data = tmp_path / "gsm.jsonl"
    data.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n", encoding="utf-8")
    verify = eval_config(task="gsm8k", data=str(data), model="scripted", strategy="verify")
    assert resolve_config(verify, home).ask.verifier == str(card)
    off = eval_config(task="gsm8k", data=str(data), model="scripted", strategy="verify", verifier="none")
    assert resolve_config(off, home).ask.verifier == "none"
    assert resolve_config(eval_config(task="gsm8k", data=str(data), model="scripted"), home).ask.verifier is None
    card.unlink()
    assert resolve_config(verify, home).ask.verifier == "none"  # no usable default: execution facts alone


def test_models_list_and_doctor_show_the_verifier(home: Paths) -> None:
    _catalog(home)
    listed = runner.invoke(app, ["models", "list"])
    line = next(x for x in listed.stdout.splitlines() if x.startswith("judge-test"))
    assert "verifier" in line and "verified" in line and "for scripted" in line
    checks = {c["name"]: c for c in json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)["checks"]}
    assert checks["verifier judge-test (default) for scripted"]["ok"] is True
