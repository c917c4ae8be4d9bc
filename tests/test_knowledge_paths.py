"""Which files an index reads and under which names: a file reached twice
is read once, a name that is not UTF-8 is skipped with its reason, and symlinks follow one rule:
a document is recorded under the path the user gave, nothing outside the given folders is read
unless --follow-symlinks is passed (docs/knowledge.md, "Symlinks")."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import HashEmbedder
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.knowledge import add_paths
from dca.knowledge.ingest import IngestConfig, remove_paths, sync_folder
from dca.knowledge.loaders import LoadConfig
from dca.knowledge.store import KnowledgeIndex

runner = CliRunner()


def _add(home: Paths, name: str, inputs: list[Path], **load: object):  # type: ignore[no-untyped-def]
    embedder = HashEmbedder()
    config = IngestConfig(load=LoadConfig(**load))  # type: ignore[arg-type]
    return add_paths(home, name, inputs, embedder_name=embedder.name, embedder_factory=lambda: embedder, config=config)


def _documents(home: Paths, name: str) -> set[str]:
    index = KnowledgeIndex.open(home, name)
    try:
        return set(index.documents())
    finally:
        index.close()


def test_a_symlink_beside_its_target_is_read_once(home: Paths, tmp_path: Path) -> None:
    folder = tmp_path / "lnk"
    folder.mkdir()
    (folder / "real.txt").write_text("the real text\n")
    (folder / "alias.txt").symlink_to("real.txt")
    for _ in range(2):  # used to fail with FOREIGN KEY constraint failed, on every rerun
        report = _add(home, "lnk", [folder])
    assert _documents(home, "lnk") == {str(folder / "real.txt")}
    assert "indexed under that name" in report.skipped[str(folder / "alias.txt")]


def test_overlapping_arguments_read_a_file_once(home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nalpha\n")
    monkeypatch.chdir(tmp_path)
    report = _add(home, "d", [Path("docs/a.md"), Path("./docs/../docs/a.md"), Path("docs")])
    assert report.added == [str(docs / "a.md")] and _documents(home, "d") == {str(docs / "a.md")}


def test_a_name_that_is_not_utf8_is_skipped_and_the_rest_indexed(home: Paths, tmp_path: Path) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    bad = os.fsdecode(bytes(folder) + b"/caf\xe9.txt")
    Path(bad).write_text("hi\n")
    (folder / "good.txt").write_text("fine\n")
    report = _add(home, "t1", [folder])
    assert _documents(home, "t1") == {str(folder / "good.txt")}
    assert report.skipped[f"{folder}/caf\\xe9.txt"].startswith("the name is not valid UTF-8")
    sync = sync_folder(
        home, "t1", folder, embedder_name=HashEmbedder().name, embedder_factory=HashEmbedder, config=IngestConfig()
    )
    assert sync.unchanged == 1 and not sync.removed


def test_symlinks_to_outside_are_skipped_unless_followed_and_recorded_under_the_link(
    home: Paths, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "far.txt").write_text("far away text\n")
    (outside / "sub" / "deep.txt").write_text("deep text\n")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "own.txt").write_text("my text\n")
    (folder / "far.txt").symlink_to(outside / "far.txt")
    (folder / "linked").symlink_to(outside / "sub")
    (outside / "sub" / "loop").symlink_to(outside)  # a loop once followed
    report = _add(home, "a", [folder])
    assert _documents(home, "a") == {str(folder / "own.txt")}
    assert "pass --follow-symlinks" in report.skipped[str(folder / "far.txt")]
    assert "pass --follow-symlinks" in report.skipped[str(folder / "linked")]
    followed = _add(home, "b", [folder], follow_symlinks=True, exclude=("mine/linked/loop/*",))
    assert "symlink loop" in followed.skipped[str(folder / "linked" / "loop" / "sub")]  # counted, not dropped
    documents = _documents(home, "b")
    assert str(folder / "far.txt") in documents and str(folder / "linked" / "deep.txt") in documents
    assert not any(str(outside) in d for d in documents)  # recorded under the names the user sees
    _add(home, "c", [folder], follow_symlinks=True, exclude=("far.txt",))  # --exclude sees the link's name
    assert str(folder / "far.txt") not in _documents(home, "c")
    remove_paths(home, "b", [folder / "linked"], embedder_name=HashEmbedder().name)
    assert not any("linked" in d for d in _documents(home, "b"))  # `index remove FOLDER` reaches it


def test_the_cli_takes_follow_symlinks(home: Paths, tmp_path: Path) -> None:
    result = runner.invoke(app, ["index", "add", "--help"])
    assert "--follow-symlinks" in result.stdout


def test_an_empty_path_is_an_error_not_the_current_folder(
    home: Paths, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "here.txt").write_text("would be indexed\n")
    for args in (["index", "add", "", "--index", "e"], ["index", "sync", "", "--index", "e"], ["index", "remove", ""]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "a path is empty" in result.output, (args, result.output)
    assert not (home.indexes / "e").exists()
