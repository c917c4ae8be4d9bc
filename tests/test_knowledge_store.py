"""Index add / update / remove / sync, search modes, verify, and crash safety."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import HashEmbedder, make_corpus, search_index_t
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.errors import ConfigError, IngestError, KnowledgeIndexError
from dca.knowledge import IngestConfig, KnowledgeIndex, SearchConfig, add_paths, remove_paths, sync_folder
from dca.knowledge.stores import open_store
from dca.knowledge.verify import verify_index

runner = CliRunner()


def _add(home: Paths, embedder: HashEmbedder, *inputs: Path, name: str = "t", **config: object):
    return add_paths(
        home,
        name,
        list(inputs),
        embedder_name=embedder.name,
        embedder_factory=lambda: embedder,
        config=IngestConfig(**config),
    )  # type: ignore[arg-type]


def _rows(home: Paths, name: str = "t") -> list[tuple]:
    """(path, start, end, text) of every chunk, in order: what two indexes compare by (either store)."""
    index = open_store(home, name)
    try:
        chunks = index.get_chunks([int(i) for i in index.vectors().ids()])
    finally:
        index.close()
    return sorted((c.path, c.char_start, c.char_end, c.text) for c in chunks.values())


def _verify(home: Paths, name: str = "t", **options: bool):
    index = open_store(home, name)
    try:
        return verify_index(index, **options)
    finally:
        index.close()


def _search(home: Paths, embedder: HashEmbedder, query: str, **config: object):
    return search_index_t(home, embedder, query, **config)


def test_add_reports_every_file_and_second_add_is_unchanged(
    home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    report = _add(home, embedder, corpus)
    assert len(report.added) == 5
    assert report.skipped == {str(corpus / "image.png"): "unsupported type .png"}
    calls = embedder.calls
    again = _add(home, embedder, corpus)
    assert again.unchanged == 5 and not again.added and again.chunks_added == 0
    assert embedder.calls == calls  # nothing re-embedded


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_each_mode_finds_the_right_section(
    home: Paths, tmp_path: Path, embedder: HashEmbedder, mode: str, store: str
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    top = _search(home, embedder, "dogs bark fetch sticks", mode=mode, k=3)[0]
    assert top.chunk.path == str(corpus / "animals.md") and top.chunk.heading == "Animals > Dogs"
    text = (corpus / "animals.md").read_text()
    assert text[top.chunk.char_start : top.chunk.char_end] == top.chunk.text


def test_bm25_leaves_function_words_out_of_the_query(
    home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str
) -> None:
    """Function words are left out of the keyword query: "what is ... how does it" matched every chunk that has those words."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "chatty.md").write_text("What is it? How does it work, and what is it for? It is what it is.\n")
    (corpus / "facts.md").write_text("The zebra gallops across the plain.\n")
    _add(home, embedder, corpus)
    top = _search(home, embedder, "What is it, and how does the zebra move?", mode="bm25", k=2)
    assert [Path(h.chunk.path).name for h in top] == ["facts.md"]  # the chatty file shares only function words
    only = _search(home, embedder, "what is it", mode="bm25", k=2)  # nothing but function words: kept
    # PostgreSQL's english text search indexes no function words at all: such a query finds nothing
    # by keyword there (hybrid search still has the dense side)
    assert [Path(h.chunk.path).name for h in only] == (["chatty.md"] if store == "embedded" else [])


def test_convex_fusion_keeps_what_ranks_throw_away() -> None:
    """Reciprocal rank fusion sees ranks only: a chunk dense search puts far ahead of the rest
    but BM25 ranks 20th among near-equal scores would lose to one BM25 ranks first by a hair and
    dense search scores far below. The convex combination of normalised scores keeps both gaps."""
    from dca.knowledge.retrieval import fuse_convex

    answer, weak = 1, 99
    dense = [(answer, 0.80)] + [(100 + i, 0.60 - 0.002 * i) for i in range(8)] + [(weak, 0.50)]
    dense += [(120 + i, 0.45 - 0.001 * i) for i in range(40)]  # the last candidate scores 0.411
    keyword = [(weak, 3.50)] + [(200 + i, 3.49 - 0.01 * i) for i in range(18)] + [(answer, 3.30)]
    keyword += [(300 + i, 1.0 - 0.01 * i) for i in range(30)]
    rrf: dict[int, float] = {}  # reciprocal rank fusion, as it was dca's before (k = 60)
    for ranking in (dense, keyword):
        for rank, (chunk, _) in enumerate(ranking, start=1):
            rrf[chunk] = rrf.get(chunk, 0.0) + 1 / (60 + rank)
    assert max(rrf, key=rrf.__getitem__) == weak
    fused = dict(fuse_convex([dense, keyword]))
    assert max(fused, key=fused.__getitem__) == answer
    assert fused[answer] == pytest.approx(0.5 * 1 + 0.5 * (3.30 - 0.71) / (3.50 - 0.71))
    # first in both: 1; scores in [0, 1]; an empty ranking adds nothing, a flat one gives 1
    both = fuse_convex([[(7, 0.9), (8, 0.1)], [(7, 5.0), (8, 1.0)]])
    assert both == [(7, 1.0), (8, 0.0)]
    assert fuse_convex([[(7, 0.9), (8, 0.1)], []]) == [(7, 0.5), (8, 0.0)]
    assert fuse_convex([[(7, 0.4), (8, 0.4)], [(8, 2.0)]]) == [(8, 1.0), (7, 0.5)]
    assert fuse_convex([[], []]) == []
    weighted = fuse_convex([[(7, 0.9), (8, 0.1)], [(8, 2.0), (7, 1.0)]], weights=(0.75, 0.25))
    assert weighted == [(7, 0.75), (8, 0.25)]  # the first ranking weighs three times the second


def test_hybrid_search_finds_the_section(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    with pytest.raises(ConfigError, match="mode must be one of"):
        SearchConfig(mode="max")
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    top = _search(home, embedder, "dogs bark fetch sticks", mode="hybrid", k=3)[0]
    assert top.chunk.heading == "Animals > Dogs"


def test_source_glob_filters(home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    hits = _search(home, embedder, "fibonacci cats moon", source="*.py", k=5)
    assert hits and {h.chunk.path for h in hits} == {str(corpus / "sub" / "code.py")}


def test_changed_file_replaces_its_chunks(home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    (corpus / "space.txt").write_text("Jupiter has a great red spot.\n")
    report = _add(home, embedder, corpus)
    assert report.updated == [str(corpus / "space.txt")] and report.unchanged == 4
    texts = [r[3] for r in _rows(home) if r[0].endswith("space.txt")]
    assert texts == ["Jupiter has a great red spot."]
    assert _verify(home).ok


def test_sync_adds_updates_and_removes(home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    sync_folder(home, "t", corpus, embedder_name=embedder.name, embedder_factory=lambda: embedder)
    (corpus / "animals.md").write_text("# Birds\n\nBirds sing at dawn.\n")
    (corpus / "space.txt").unlink()
    (corpus / "new.md").write_text("Fresh note about tea.\n")
    report = sync_folder(home, "t", corpus, embedder_name=embedder.name, embedder_factory=lambda: embedder)
    assert report.removed == [str(corpus / "space.txt")]
    assert report.updated == [str(corpus / "animals.md")] and report.added == [str(corpus / "new.md")]
    _add(home, HashEmbedder(), corpus, name="fresh")
    assert _rows(home) == _rows(home, "fresh")  # exactly what a fresh index of the folder holds
    verified = _verify(home)
    assert verified.ok and not verified.stale


def test_remove_deletes_documents_and_vectors(home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    report = remove_paths(home, "t", [corpus / "sub"], embedder_name=embedder.name)
    assert report.removed == [str(corpus / "sub" / "code.py")]
    assert all("code.py" not in h.chunk.path for h in _search(home, embedder, "fibonacci", k=10))
    with pytest.raises(IngestError, match="nothing in index 't' is under"):
        remove_paths(home, "t", [corpus / "sub"], embedder_name=embedder.name)


def test_another_embedder_is_refused(home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    with pytest.raises(KnowledgeIndexError, match="built with embedder 'all-minilm-l6-v2', not 'other'"):
        add_paths(home, "t", [corpus], embedder_name="other", embedder_factory=lambda: embedder)


@pytest.mark.parametrize("name", ["../evil", "a/b", ".."])
def test_bad_index_names_are_refused(home: Paths, tmp_path: Path, embedder: HashEmbedder, name: str) -> None:
    with pytest.raises(KnowledgeIndexError, match="invalid"):
        _add(home, embedder, make_corpus(tmp_path / "c"), name=name)


def test_missing_path_is_an_error(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    with pytest.raises(IngestError, match="no such file or folder"):
        _add(home, embedder, tmp_path / "nope")


def test_damaged_vectors_file_is_reported_and_repaired(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    _add(home, embedder, make_corpus(tmp_path / "corpus"))
    index = KnowledgeIndex.open(home, "t")
    (index.folder / index.manifest.vectors_file).write_bytes(b"garbage")
    report = verify_index(KnowledgeIndex.open(home, "t"))
    assert not report.ok and "verify -i t --repair" in report.problems[0]
    repaired = verify_index(KnowledgeIndex.open(home, "t"), repair=True)
    assert repaired.repaired
    assert verify_index(KnowledgeIndex.open(home, "t")).ok


def test_stale_files_are_reported(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    (corpus / "space.txt").write_text("changed")
    (corpus / "page.html").unlink()
    report = verify_index(KnowledgeIndex.open(home, "t"))
    assert report.ok and len(report.stale) == 2


def test_exact_index_becomes_ivf_past_the_threshold(home: Paths, tmp_path: Path) -> None:
    from dca.knowledge.vectors import AnnConfig, build_ivf

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(50, 32))
    vectors = (centers[rng.integers(0, 50, 5000)] + 0.3 * rng.normal(size=(5000, 32))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(10, 5010, dtype=np.int64)
    index, recall = build_ivf(ids, vectors, AnnConfig(ann_threshold=1000, target_recall=0.95))
    assert index.kind == "ivf" and recall >= 0.95
    assert set(index.ids().tolist()) == set(ids.tolist())
    index.remove(ids[:100])
    assert index.ntotal == 4900 and 10 not in set(index.ids().tolist())


def test_cli_add_search_json_and_list(home: Paths, tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    added = runner.invoke(app, ["index", "add", str(corpus), "--json"])
    assert added.exit_code == 0, added.output
    assert len(json.loads(added.stdout)["added"]) == 5
    found = runner.invoke(app, ["index", "search", "volcanoes lava", "--json", "--k", "2"])
    assert found.exit_code == 0, found.output
    top = json.loads(found.stdout)[0]
    assert top["path"].endswith("notes.jsonl") and top["heading"] == "record 1" and top["rank"] == 1
    listing = runner.invoke(app, ["index", "list", "--json"])
    assert json.loads(listing.stdout)[0]["documents"] == 5
    again = runner.invoke(app, ["index", "add", str(corpus)])
    assert "0 added, 0 updated, 5 unchanged" in again.stdout


def test_cli_errors_are_one_line(home: Paths, tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    missing = runner.invoke(app, ["index", "search", "x", "--index", "nope"])
    assert missing.exit_code == 1 and "no index named 'nope'" in missing.stderr
    bad = runner.invoke(app, ["index", "add", str(tmp_path / "absent")])
    assert bad.exit_code == 1 and bad.stderr.count("\n") == 1
    slash = runner.invoke(app, ["index", "add", str(tmp_path), "--index", "../x"])
    assert slash.exit_code == 1 and "invalid" in slash.stderr


def test_langchain_retriever(home: Paths, tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    from dca.knowledge.langchain import DcaRetriever

    _add(home, fake_embedder, make_corpus(tmp_path / "corpus"), name="default")
    retriever = DcaRetriever(k=2)
    docs = retriever.invoke("bread flour yeast")
    assert docs[0].metadata["path"].endswith("page.html") and "yeast" in docs[0].page_content
    opened = retriever._opened
    assert opened is not None and retriever.invoke("cats")[0] and retriever._opened is opened  # kept open
    more = tmp_path / "more"
    more.mkdir()
    (more / "owls.md").write_text("# Owls\n\nOwls hoot in the dark forest.\n")
    _add(home, fake_embedder, more, name="default")  # another writer adds a file meanwhile
    assert retriever.invoke("owls hoot forest")[0].metadata["path"].endswith("owls.md")
    retriever.close()
    assert retriever._opened is None and retriever.invoke("cats")


_KILL_SCRIPT = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from conftest import HashEmbedder
from dca.config import Paths
from dca.knowledge import IngestConfig, add_paths

class Slow(HashEmbedder):
    def embed(self, texts):
        time.sleep(0.02)
        return super().embed(texts)

e = Slow()
add_paths(Paths.resolve({home!r}), "t", [Path({corpus!r})], embedder_name=e.name, embedder_factory=lambda: e,
          config=IngestConfig(batch_chunks=4, commit_chunks=8))
"""


def test_sigkill_mid_add_then_rerun_gives_exactly_the_right_chunks(tmp_path: Path, embedder: HashEmbedder) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(150):
        (corpus / f"doc{i:03d}.md").write_text(f"# Doc {i}\n\n" + f"Fact number {i} is about topic {i % 7}. " * 30)
    home = tmp_path / "home"
    script = _KILL_SCRIPT.format(tests=str(Path(__file__).parent), home=str(home), corpus=str(corpus))
    process = subprocess.Popen([sys.executable, "-c", script])
    db_path = home / "indexes" / "t" / "store.sqlite"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until a few groups are committed, then kill
        if db_path.exists():
            try:
                db = sqlite3.connect(db_path)
                done = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
                db.close()
            except sqlite3.Error:
                done = 0
            if done >= 20:
                break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    paths = Paths.resolve(home)
    partial = verify_index(KnowledgeIndex.open(paths, "t"))
    assert partial.ok, partial.problems
    assert 20 <= partial.documents < 150  # killed mid-run, in a committed state
    report = _add(paths, embedder, corpus)
    assert report.unchanged == partial.documents and len(report.added) == 150 - partial.documents
    final = verify_index(KnowledgeIndex.open(paths, "t"))
    assert final.ok and final.documents == 150
    fresh = Paths.resolve(tmp_path / "fresh")
    _add(fresh, HashEmbedder(), corpus)
    assert _rows(paths) == _rows(fresh)  # no duplicate, no lost chunk


def test_store_switches_to_ivf_and_stays_consistent(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    from dca.knowledge.vectors import AnnConfig

    corpus = tmp_path / "big"
    corpus.mkdir()
    words = ["alpha", "beta", "gamma", "delta", "omega", "kappa", "sigma", "theta"]
    lines = [json.dumps({"text": f"record {i} {words[i % 8]} {words[(i * 3) % 8]} item{i}"}) for i in range(1500)]
    (corpus / "a.jsonl").write_text("\n".join(lines[:800]) + "\n")
    (corpus / "b.jsonl").write_text("\n".join(lines[800:]) + "\n")
    _add(home, embedder, corpus, ann=AnnConfig(ann_threshold=1000))
    index = KnowledgeIndex.open(home, "t")
    assert index.stats()["vectors"] == "ivf" and index.manifest.ann["recall_at_10"] >= 0.95
    assert len(_search(home, embedder, "alpha beta", mode="dense", k=5)) == 5  # through the IVF index
    assert _search(home, embedder, "item1234", mode="bm25", k=1)[0].chunk.text.endswith("item1234")
    remove_paths(home, "t", [corpus / "a.jsonl"], embedder_name=embedder.name)
    report = verify_index(KnowledgeIndex.open(home, "t"))
    assert report.ok and report.chunks == 700


def test_readers_are_not_blocked_and_see_only_committed_state(
    home: Paths, tmp_path: Path, embedder: HashEmbedder
) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus)
    writer = KnowledgeIndex.open(home, "t")
    with writer.writer(), writer.transaction() as gen:  # a write in flight, not committed
        doc = writer.insert_document(path="/x/new.md", sha256="0" * 64, size=1, mtime_ns=1, gen=gen)
        writer.insert_chunks(doc, 0, make_chunks("zebra stripes gallop"), embedder.embed(["zebra"]), gen)
        hits = _search(home, embedder, "zebra stripes gallop", mode="bm25")
        assert hits == []  # the reader ran during the write and saw the last committed state
        with pytest.raises(KnowledgeIndexError, match="being changed by another dca process"):
            _add(home, embedder, corpus)
    assert _search(home, embedder, "zebra stripes gallop", mode="bm25")[0].chunk.path == "/x/new.md"


def make_chunks(text: str) -> list:
    from dca.knowledge import Chunk

    return [Chunk(text=text, start=0, end=len(text), n_tokens=3)]
