"""Damaged indexes: a page-corrupted SQLite file is reported by `dca index
verify`, in one line with what to do, never as a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import HashEmbedder, make_corpus
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.knowledge import add_paths

runner = CliRunner()


def _corpus_index(home: Paths, tmp_path: Path) -> Path:
    corpus = make_corpus(tmp_path / "corpus")
    for n in range(40):  # enough rows for a store of many pages
        (corpus / f"extra{n}.txt").write_text(f"Paragraph {n} about topic {n}. " * 60)
    embedder = HashEmbedder()
    add_paths(home, "hurt", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    return home.indexes / "hurt" / "store.sqlite"


def test_verify_reports_a_page_corrupted_sqlite_file(home: Paths, tmp_path: Path) -> None:
    store = _corpus_index(home, tmp_path)
    size = store.stat().st_size
    page = 4096
    assert size > 40 * page
    with store.open("r+b") as handle:  # 20 pages in the middle overwritten with random bytes
        handle.seek((size // page // 2) * page)
        handle.write(os.urandom(20 * page))
    result = runner.invoke(app, ["index", "verify", "-i", "hurt"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "damaged" in result.output
    assert "add the files again" in result.output and "--repair" not in result.output.splitlines()[-1]


def test_one_broken_manifest_does_not_hide_the_other_indexes(home: Paths, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    embedder = HashEmbedder()
    for name in ("good", "broken-one-with-a-rather-long-name"):
        add_paths(home, name, [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    (home.indexes / "broken-one-with-a-rather-long-name" / "manifest.json").write_text("{not json")
    result = runner.invoke(app, ["index", "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(line.startswith("good ") and "documents" in line for line in lines)
    assert any(line.startswith("broken-one-with-a-rather-long-name") and "BROKEN" in line for line in lines)
    rows = {r["name"]: r for r in __import__("json").loads(runner.invoke(app, ["index", "list", "--json"]).stdout)}
    assert "error" in rows["broken-one-with-a-rather-long-name"] and rows["good"]["documents"] > 0


def test_a_query_that_is_not_utf8_is_one_clear_line(home: Paths, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # `dca index search $'caf\xe9'` arrives as a str with an escaped byte
    from conftest import ScriptedGenerator

    import dca.runtime.llama as llama_module

    corpus = make_corpus(tmp_path / "corpus")
    embedder = HashEmbedder()
    add_paths(home, "default", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    monkeypatch.setattr("dca.knowledge.embedding.load_embedder", lambda *a, **k: embedder)
    bad = os.fsdecode(b"caf\xe9")
    for mode in ("dense", "hybrid", "bm25"):
        result = runner.invoke(app, ["index", "search", bad, "--mode", mode])
        assert result.exit_code == 1 and "not valid UTF-8" in result.output, (mode, result.output)
    generator = ScriptedGenerator(["Cats purr [1]."])
    monkeypatch.setattr(llama_module, "load_runtime", lambda model=None, paths=None, config=None: generator)
    result = runner.invoke(app, ["ask", bad])
    assert result.exit_code == 1 and "not valid UTF-8" in result.output
    chat = runner.invoke(app, ["chat"], input=b"caf\xe9\nwhat do cats do\n/exit\n")
    assert chat.exit_code == 0 and "not valid UTF-8" in chat.output and "Cats purr" in chat.output


def test_delete_is_refused_while_a_writer_holds_the_lock(home: Paths, tmp_path: Path) -> None:
    # the running writer used to crash with a traceback
    from dca.knowledge import KnowledgeIndex

    corpus = make_corpus(tmp_path / "corpus")
    embedder = HashEmbedder()
    add_paths(home, "busy", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    index = KnowledgeIndex.open(home, "busy")
    try:
        with index.writer():
            result = runner.invoke(app, ["index", "delete", "-i", "busy", "--yes"])
            assert result.exit_code == 1 and "being changed by another dca process" in result.output
            assert (home.indexes / "busy" / "store.sqlite").is_file()
    finally:
        index.close()
    result = runner.invoke(app, ["index", "delete", "-i", "busy", "--yes"])
    assert result.exit_code == 0 and not (home.indexes / "busy").exists()


def test_a_failed_embedder_leaves_no_poisoned_index(home: Paths, tmp_path: Path) -> None:
    # `index add --embedder X` with X unknown used to create an index
    # recorded with X, which then refused every later add or search
    from dca.errors import ModelNotFoundError
    from dca.knowledge import list_indexes

    corpus = make_corpus(tmp_path / "corpus")

    def unknown():  # type: ignore[no-untyped-def]
        raise ModelNotFoundError("unknown embedder 'bogus'")

    import pytest

    with pytest.raises(ModelNotFoundError):
        add_paths(home, "p", [corpus], embedder_name="bogus", embedder_factory=unknown)
    assert "p" not in list_indexes(home) and not (home.indexes / "p").exists()
    embedder = HashEmbedder()
    report = add_paths(home, "p", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    assert report.added
    result = runner.invoke(app, ["index", "add", str(corpus), "--index", "q", "--embedder", "qwen2.5-coder-1.5b"])
    assert result.exit_code == 1 and "not an embedder" in result.output and not (home.indexes / "q").exists()


def test_a_full_disk_says_so_and_loses_nothing(home: Paths, tmp_path: Path) -> None:
    # it used to end in "cannot rollback - no transaction is active"
    import sqlite3

    import pytest

    from dca.errors import KnowledgeIndexError
    from dca.knowledge import KnowledgeIndex

    corpus = make_corpus(tmp_path / "corpus")
    embedder = HashEmbedder()
    add_paths(home, "full", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    index = KnowledgeIndex.open(home, "full")
    before = set(index.documents())
    pages = index.db.execute("PRAGMA page_count").fetchone()[0]
    index.db.execute(f"PRAGMA max_page_count = {pages}")  # the database file cannot grow: SQLITE_FULL
    with pytest.raises(KnowledgeIndexError, match="is full .* nothing was lost"), index.transaction() as gen:
        for n in range(200):
            index.insert_document(path=f"/x/{n}.md" + "p" * 2000, sha256="0" * 64, size=1, mtime_ns=1, gen=gen)
    assert not index.db.in_transaction and set(index.documents()) == before
    index.close()
    assert (
        sqlite3.connect(home.indexes / "full" / "store.sqlite").execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    )


def test_flipped_vector_bytes_are_found_and_repaired(home: Paths, tmp_path: Path) -> None:
    # verify used to say ok while dense scores went wild
    import json

    _corpus_index(home, tmp_path)
    folder = home.indexes / "hurt"
    manifest = json.loads((folder / "manifest.json").read_text())
    faiss_file = folder / manifest["vectors_file"]
    data = bytearray(faiss_file.read_bytes())
    middle = len(data) // 2
    for i in range(middle - 2048, middle + 2048):  # 4 kB of float bytes flipped, the ids untouched
        data[i] ^= 0x5A
    faiss_file.write_bytes(bytes(data))
    deep = runner.invoke(app, ["index", "verify", "-i", "hurt", "--deep", "--json"])
    report = json.loads(deep.stdout)
    assert deep.exit_code == 1 and not report["ok"] and "differ from SQLite" in report["problems"][0]
    assert report["vectors_checked"] == report["chunks"]
    repaired = runner.invoke(app, ["index", "verify", "-i", "hurt", "--repair", "--deep", "--json"])
    assert json.loads(repaired.stdout)["repaired"] is True
    again = runner.invoke(app, ["index", "verify", "-i", "hurt", "--deep"])
    assert again.exit_code == 0 and again.stdout.rstrip().endswith("ok")


def test_vectors_can_be_read_back_from_exact_and_ivf_indexes() -> None:
    import numpy as np

    from dca.knowledge.vectors import AnnConfig, FaissIndex, build_ivf

    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(2000, 16)).astype(np.float32)
    ids = np.arange(10, 2010, dtype=np.int64) * 3  # ids are chunk ids, not positions
    exact = FaissIndex.exact(16)
    exact.add(ids, vectors)
    ivf, _ = build_ivf(ids, vectors, AnnConfig(ann_threshold=1000, n_recall_queries=20))
    pick = ids[[0, 777, 1999]]
    for index in (exact, ivf):
        assert np.allclose(index.reconstruct(pick), vectors[[0, 777, 1999]])


def test_index_stats_reads_as_text_not_a_python_dict(home: Paths, tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    embedder = HashEmbedder()
    add_paths(home, "s", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    result = runner.invoke(app, ["index", "stats", "-i", "s"])
    assert result.exit_code == 0 and "{" not in result.stdout
    assert "chunking    200 tokens, 32 overlap" in result.stdout and "MB" in result.stdout
