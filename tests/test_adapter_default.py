"""The reasoning adapter that ships with dca: a catalog entry (role adapter, bundled, pinned by
sha256, made for one base model), used by default when a question is reasoned about, off with
`--adapter none`, shown by `models list` and `doctor`, never used by single passes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ScriptedGenerator, catalog_with_bundled, write_catalog
from typer.testing import CliRunner

from dca.api import AskConfig, Assistant
from dca.cli import app
from dca.config import Paths
from dca.errors import CatalogError, PullError
from dca.eval.runner import eval_config, resolve_config
from dca.models.catalog import Catalog
from dca.models.pull import pull_model
from dca.reasoning.config import ReasoningConfig
from dca.runtime.adapters import choose_adapter

runner = CliRunner()
ADAPTER = b"GGUF fake adapter bytes"


def _catalog(paths: Paths, *, base: str = "scripted", data: bytes = ADAPTER) -> Path:
    return catalog_with_bundled(paths, name="reason-test", role="adapter", base=base, data=data)


def test_an_adapter_entry_names_its_base_and_nothing_else_does(home: Paths) -> None:
    _catalog(home)
    entry = Catalog.load(home).adapter_for("scripted")
    assert entry is not None and entry.name == "reason-test" and entry.path(home).is_file()
    assert Catalog.load(home).adapter_for("another-model") is None


@pytest.mark.parametrize("role", ["adapter", "verifier"])
def test_an_adapter_or_verifier_without_a_base_is_refused(home: Paths, role: str) -> None:
    write_catalog(
        home,
        f'[[model]]\nname = "x"\nrole = "{role}"\nfile = "x.gguf"\nsize = 0\nsha256 = ""\n'
        '[model.source]\nkind = "local"\npath = "/x"\n',
    )
    with pytest.raises(CatalogError, match="names its base model"):
        Catalog.load(home)


def test_reasoning_uses_the_default_adapter_and_none_turns_it_off(home: Paths) -> None:
    _catalog(home)
    assert choose_adapter(None, "scripted", thinking=True, paths=home) == "reason-test"
    assert choose_adapter(None, "scripted", thinking=False, paths=home) is None  # single passes: base alone
    assert choose_adapter("none", "scripted", thinking=True, paths=home) is None
    assert choose_adapter("mine", "scripted", thinking=True, paths=home) == "mine"
    assert choose_adapter(None, "other-model", thinking=True, paths=home) is None  # made for another base


def test_a_damaged_adapter_is_not_used(home: Paths, caplog: pytest.LogCaptureFixture) -> None:
    path = _catalog(home)
    path.write_bytes(b"X" * len(ADAPTER))  # same size, other bytes
    assert choose_adapter(None, "scripted", thinking=True, paths=home) is None
    assert "reason-test is not used" in caplog.text


def test_the_pipeline_loads_it_for_reasoning_only(home: Paths) -> None:
    path = _catalog(home)
    generator = ScriptedGenerator(["x </think>", "The answer is 4."])
    assistant = Assistant(index=None, home=home.home, generator=generator)
    cot = AskConfig(retrieval=False, reasoning=ReasoningConfig(strategy="cot"))
    assistant.ask("2 + 2?", config=cot)
    assert generator.adapters == {"reason-test": path}
    assert {c.adapter for c in generator.configs} == {"reason-test"}  # type: ignore[attr-defined]
    generator = ScriptedGenerator(["x </think>", "The answer is 4."])
    assistant = Assistant(index=None, home=home.home, generator=generator)
    assistant.ask(
        "2 + 2?", config=AskConfig(retrieval=False, adapter="none", reasoning=ReasoningConfig(strategy="cot"))
    )
    assistant.ask("2 + 2?", config=AskConfig(retrieval=False))  # direct
    assert generator.adapters == {} and {c.adapter for c in generator.configs} == {None}  # type: ignore[attr-defined]


def test_eval_records_the_adapter_a_reasoning_run_uses(home: Paths, tmp_path: Path) -> None:
    _catalog(home)
    data = tmp_path / "gsm.jsonl"
    data.write_text(json.dumps({"question": "q", "answer": "#### 1"}) + "\n", encoding="utf-8")
    program = eval_config(task="gsm8k", data=str(data), model="scripted", strategy="program")
    assert resolve_config(program, home).ask.adapter == "reason-test"
    off = eval_config(task="gsm8k", data=str(data), model="scripted", strategy="program", adapter="none")
    assert resolve_config(off, home).ask.adapter is None
    assert resolve_config(eval_config(task="gsm8k", data=str(data), model="scripted"), home).ask.adapter is None


def test_models_list_doctor_and_pull_show_the_bundled_adapter(home: Paths) -> None:
    path = _catalog(home)
    listed = runner.invoke(app, ["models", "list"])
    assert listed.exit_code == 0, listed.output
    line = next(x for x in listed.stdout.splitlines() if x.startswith("reason-test"))
    assert "adapter" in line and "verified" in line and "for scripted" in line
    doctor = runner.invoke(app, ["doctor", "--json"])
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["adapter reason-test (default) for scripted"]["ok"] is True
    entry = Catalog.load(home).get("reason-test")
    assert pull_model(entry, home).skipped
    path.unlink()
    with pytest.raises(PullError, match="ships with dca .* missing"):
        pull_model(entry, home)
    result = runner.invoke(app, ["pull", "reason-test"])
    assert result.exit_code == 1 and "restore models/adapters/reason-test.gguf from git" in result.output
