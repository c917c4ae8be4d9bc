"""Settings: flag over environment over settings.toml over built-in; `dca models default`;
doctor shows where each value comes from; ask and the index commands follow them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import HashEmbedder, ScriptedGenerator, make_corpus
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.errors import ConfigError
from dca.knowledge import add_paths
from dca.settings import load_settings, save_setting, settings_file

runner = CliRunner()


def test_precedence_env_over_file_over_builtin(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(home).values["k"] == 3 and load_settings(home).sources["k"] == "built-in"
    save_setting(home, "k", 4)
    save_setting(home, "index", "notes")
    chosen = load_settings(home)
    assert (chosen["k"], chosen.sources["k"]) == (4, "settings.toml") and chosen["index"] == "notes"
    monkeypatch.setenv("DCA_K", "7")
    chosen = load_settings(home)
    assert (chosen["k"], chosen.sources["k"]) == (7, "env DCA_K")
    assert chosen.pick("k", 2) == 2 and chosen.pick("k", None) == 7  # a flag wins
    monkeypatch.setenv("DCA_NO_LOG", "1")
    assert load_settings(home)["log"] is False
    save_setting(home, "index", None)
    assert load_settings(home).sources["index"] == "built-in"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[defaults]\nk = 0\n", "k is out of range"),
        ("[defaults]\nthreads = 'many'\n", "threads must be a whole number"),
        ("[defaults]\ncolour = 'red'\n", "unknown setting 'colour'"),
        ("[defaults\n", "is not valid TOML"),
    ],
)
def test_bad_settings_are_one_clear_error(home: Paths, text: str, fragment: str) -> None:
    settings_file(home).parent.mkdir(parents=True, exist_ok=True)
    settings_file(home).write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(home)
    doctor = runner.invoke(app, ["doctor"])
    assert "[FAIL] settings:" in doctor.stdout and fragment in doctor.stdout


def test_models_default_sets_shows_and_unsets(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["models", "default"]).stdout.strip() == "qwen2.5-coder-1.5b (built-in)"
    assert runner.invoke(app, ["models", "default", "smollm2-135m"]).exit_code == 0
    shown = json.loads(runner.invoke(app, ["models", "default", "--json"]).stdout)
    assert shown == {"model": "smollm2-135m", "source": "settings.toml"}
    wrong = runner.invoke(app, ["models", "default", "all-minilm-l6-v2"])
    assert wrong.exit_code == 1 and "is an embedder, not a generator" in wrong.stderr
    assert runner.invoke(app, ["models", "default", "nosuch"]).exit_code == 1
    monkeypatch.setenv("DCA_MODEL", "qwen2.5-coder-0.5b")
    assert "qwen2.5-coder-0.5b (env DCA_MODEL)" in runner.invoke(app, ["models", "default"]).stdout
    monkeypatch.delenv("DCA_MODEL")
    runner.invoke(app, ["models", "default", "--unset"])
    assert "(built-in)" in runner.invoke(app, ["models", "default"]).stdout
    doctor = runner.invoke(app, ["doctor"]).stdout
    assert "setting k: 3  [built-in]" in doctor and "setting model: (catalog default)  [built-in]" in doctor


def test_ask_and_index_commands_follow_the_settings(
    home: Paths, tmp_path: Path, fake_embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dca.runtime.llama as llama_module

    add_paths(home, "notes", [make_corpus(tmp_path / "c")], embedder_name=fake_embedder.name,
              embedder_factory=lambda: fake_embedder)  # fmt: skip
    seen: list[object] = []
    generator = ScriptedGenerator(["Cats purr [1]."])

    def load(model: object = None, paths: object = None, config: object = None) -> ScriptedGenerator:
        seen.append((model, config))
        return generator

    monkeypatch.setattr(llama_module, "load_runtime", load)
    assert runner.invoke(app, ["ask", "cats"]).exit_code == 1  # no index "default" yet
    save_setting(home, "index", "notes")
    save_setting(home, "k", 2)
    save_setting(home, "threads", 1)
    save_setting(home, "model", "smollm2-135m")
    answer = json.loads(runner.invoke(app, ["ask", "what do cats do", "--json"]).stdout)
    assert answer["index"] == "notes" and len(answer["sources"]) == 2
    model, config = seen[-1]
    assert model == "smollm2-135m" and config.n_threads == 1  # type: ignore[attr-defined]
    flags = json.loads(runner.invoke(app, ["ask", "cats", "--json", "-k", "3", "--threads", "2", "-m", "x"]).stdout)
    assert len(flags["sources"]) == 3 and seen[-1][0] == "x" and seen[-1][1].n_threads == 2  # type: ignore[union-attr]
    stats = runner.invoke(app, ["index", "stats", "--json"])
    assert stats.exit_code == 0 and json.loads(stats.stdout)["name"] == "notes"
    monkeypatch.setenv("DCA_INDEX", "nope")
    assert "no index named 'nope'" in runner.invoke(app, ["index", "stats"]).stderr


def test_ask_and_the_api_retrieve_the_same_number_of_sources_by_default() -> None:
    from dca.pipeline import AskConfig
    from dca.settings import FIELDS

    assert FIELDS["k"][2] == AskConfig.k == AskConfig().k == 3
