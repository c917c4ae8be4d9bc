"""The store's behaviour on both backends (issue 30): the embedded FAISS + SQLite store and a
real PostgreSQL + pgvector server started by the fixture. One parametrized suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import HashEmbedder, make_corpus

from dca.config import Paths
from dca.errors import IndexNotFoundError, KnowledgeIndexError
from dca.knowledge import IngestConfig, SearchConfig, add_paths, remove_paths, search, sync_folder
from dca.knowledge.stores import index_names, open_store
from dca.knowledge.verify import verify_index


def _add(home: Paths, embedder: HashEmbedder, *inputs: Path, name: str = "t"):
    return add_paths(
        home, name, list(inputs), embedder_name=embedder.name, embedder_factory=lambda: embedder, config=IngestConfig()
    )  # type: ignore[arg-type]


def _search(home: Paths, embedder: HashEmbedder, query: str, **config: object):
    index = open_store(home, "t")
    try:
        return search(index, query, embedder=embedder, config=SearchConfig(**config))  # type: ignore[arg-type]
    finally:
        index.close()


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_finds_the_right_section(
    home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str, mode: str
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    report = _add(home, embedder, corpus)
    assert len(report.added) == 5 and index_names(home) == ["t"]
    top = _search(home, embedder, "dogs bark fetch sticks", mode=mode, k=3)[0]
    assert top.chunk.path == str(corpus / "animals.md") and top.chunk.heading == "Animals > Dogs"
    text = (corpus / "animals.md").read_text()
    assert text[top.chunk.char_start : top.chunk.char_end] == top.chunk.text
    again = _add(home, embedder, corpus)
    assert again.unchanged == 5 and not again.added  # nothing re-embedded


def test_changes_removals_and_verify(home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    (corpus / "animals.md").write_text("# Animals\n\n## Zebras\n\nZebras gallop across the plain.\n")
    report = _add(home, embedder, corpus)
    assert report.updated == [str(corpus / "animals.md")]
    assert _search(home, embedder, "zebras gallop", mode="bm25", k=1)[0].chunk.path == str(corpus / "animals.md")
    assert all("Dogs" not in h.chunk.heading for h in _search(home, embedder, "dogs bark", mode="hybrid", k=10))
    remove_paths(home, "t", [corpus / "animals.md"], embedder_name=embedder.name)
    assert all(h.chunk.path != str(corpus / "animals.md") for h in _search(home, embedder, "zebras", k=10))
    (corpus / "new.md").write_text("# New\n\nA fresh note about quokkas.\n")
    sync_folder(home, "t", corpus, embedder_name=embedder.name, embedder_factory=lambda: embedder)  # type: ignore[arg-type]
    assert _search(home, embedder, "quokkas", mode="bm25", k=1)[0].chunk.path == str(corpus / "new.md")
    index = open_store(home, "t")
    try:
        report = verify_index(index)
        stats = index.stats()
    finally:
        index.close()
    assert report.ok and not report.stale and report.chunks == stats["chunks"] > 0
    assert stats["documents"] == report.documents and stats["embedder"] == embedder.name


def test_another_embedder_and_unknown_index_are_one_line(
    home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    other = HashEmbedder()
    other.name = "other-embedder"
    with pytest.raises(KnowledgeIndexError, match="was built with embedder"):
        add_paths(home, "t", [corpus], embedder_name=other.name, embedder_factory=lambda: other)  # type: ignore[arg-type]
    with pytest.raises(IndexNotFoundError, match="no index named 'nope'"):
        open_store(home, "nope")


def test_an_unreachable_postgres_store_is_one_line(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg")
    monkeypatch.setenv("DCA_STORE", "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(KnowledgeIndexError, match="cannot reach the PostgreSQL store"):
        open_store(home, "t")
    monkeypatch.setenv("DCA_STORE", "mysql://x")
    from dca.errors import ConfigError

    with pytest.raises(ConfigError, match="DCA_STORE must be a postgresql:// URL"):
        open_store(home, "t")
    assert "DCA_STORE" in os.environ


def test_the_cli_lists_marks_and_deletes_on_either_store(
    home: Paths, tmp_path: Path, fake_embedder: HashEmbedder, store: str
) -> None:
    import json

    from typer.testing import CliRunner

    from dca.cli import app
    from dca.knowledge.stores import mark_eval_index

    runner = CliRunner()
    corpus = make_corpus(tmp_path / "corpus")
    assert runner.invoke(app, ["index", "add", str(corpus), "-i", "t"]).exit_code == 0
    assert runner.invoke(app, ["index", "add", str(corpus), "-i", "made-by-eval"]).exit_code == 0
    mark_eval_index(home, "made-by-eval")
    listed = runner.invoke(app, ["index", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [row["name"] for row in json.loads(listed.stdout)] == ["t"]  # eval-built indexes are hidden
    every = json.loads(runner.invoke(app, ["index", "list", "--all", "--json"]).stdout)
    assert sorted(row["name"] for row in every) == ["made-by-eval", "t"]
    found = runner.invoke(app, ["index", "search", "dogs bark", "-i", "t", "--json"])
    assert found.exit_code == 0 and json.loads(found.stdout)[0]["path"].endswith("animals.md")
    assert runner.invoke(app, ["index", "delete", "-i", "t", "--yes"]).exit_code == 0
    assert index_names(home, hide_eval=True) == []
    gone = runner.invoke(app, ["index", "delete", "-i", "t", "--yes"])
    assert gone.exit_code == 1 and "no index named 't'" in gone.stderr
