"""The store's behaviour on both backends: the embedded FAISS + SQLite store and a
real PostgreSQL + pgvector server started by the fixture. The store suite of
tests/test_knowledge_store.py runs on both through the same ``store`` fixture; this file holds
what concerns the choice of store: the CLI on either, concurrent writers and a kill, copies,
doctor, a server that is down."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import HashEmbedder, make_corpus, search_index_t

from dca.config import Paths
from dca.errors import IndexNotFoundError, KnowledgeIndexError
from dca.knowledge import IngestConfig, add_paths, remove_paths, sync_folder
from dca.knowledge.stores import index_names, open_store
from dca.knowledge.verify import verify_index


def _add(home: Paths, embedder: HashEmbedder, *inputs: Path, name: str = "t"):
    return add_paths(
        home, name, list(inputs), embedder_name=embedder.name, embedder_factory=lambda: embedder, config=IngestConfig()
    )  # type: ignore[arg-type]


def _search(home: Paths, embedder: HashEmbedder, query: str, **config: object):
    return search_index_t(home, embedder, query, **config)


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


def test_keyword_search_weighs_a_rare_word_over_a_common_repeated_one(
    home: Paths, tmp_path: Path, embedder: HashEmbedder, store: str
) -> None:
    """BM25 on both stores: a word most chunks share counts for little, however often a chunk
    repeats it; the one chunk with the rare word ranks first."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(8):
        (corpus / f"river{i}.md").write_text(f"# River {i}\n\nThe river flows past town number {i}.\n")
    (corpus / "floods.md").write_text("# Floods\n\nThe river river river river rose; the river river flooded.\n")
    (corpus / "otter.md").write_text("# Otter\n\nAn otter swims in the river.\n")
    _add(home, embedder, corpus)
    hits = _search(home, embedder, "otter river", mode="bm25", k=3)
    assert hits[0].chunk.path == str(corpus / "otter.md")
    long = "otter " + " ".join(f"word{i}" for i in range(300))  # a pasted paragraph as the query
    assert _search(home, embedder, long, mode="bm25", k=3)[0].chunk.path == str(corpus / "otter.md")


def test_an_unknown_index_is_one_line_naming_how_to_make_it(home: Paths, store: str) -> None:
    with pytest.raises(IndexNotFoundError, match="no index named 'nope'"):
        open_store(home, "nope")
    assert index_names(home) == []


def test_an_unreachable_postgres_store_is_one_line(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg")
    monkeypatch.setenv("DCA_STORE", "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(KnowledgeIndexError, match="cannot reach the PostgreSQL store"):
        open_store(home, "t")
    monkeypatch.setenv("DCA_STORE", "mysql://x")
    from dca.errors import ConfigError

    with pytest.raises(ConfigError, match=r"the store \(env DCA_STORE\) must be a postgresql:// URL"):
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
    deleted = runner.invoke(app, ["index", "delete", "-i", "t", "--yes", "--json"])
    assert deleted.exit_code == 0 and json.loads(deleted.stdout) == {"deleted": "t"}
    assert index_names(home, hide_eval=True) == []
    gone = runner.invoke(app, ["index", "delete", "-i", "t", "--yes"])
    assert gone.exit_code == 1 and "no index named 't'" in gone.stderr
    if store == "postgresql":  # --store URL says the same as DCA_STORE
        url = os.environ.pop("DCA_STORE")
        flagged = runner.invoke(app, ["index", "list", "--all", "--json", "--store", url])
        assert [row["name"] for row in json.loads(flagged.stdout)] == ["made-by-eval"]
    secret = runner.invoke(app, ["index", "list", "--store", "postgresql://me:hunter2@db.example/x"])
    assert secret.exit_code == 1 and "holds a password" in secret.stderr and "hunter2" not in secret.stderr


def test_a_wrong_password_and_a_database_without_pgvector_are_one_line_each(
    home: Paths, postgres_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that logs in with a password (scram-sha-256 for it alone, in the real server's
    pg_hba.conf), and a database where it may not create the vector extension (pgvector is not
    a trusted extension): the CLI says which, in one line, exit 1, and never shows the password."""
    import psycopg
    from typer.testing import CliRunner

    from dca.cli import app

    uri = postgres_server.get_uri()  # type: ignore[attr-defined]
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS plaindb")
        conn.execute("DROP ROLE IF EXISTS plain")
        conn.execute("CREATE ROLE plain LOGIN PASSWORD 'rightpass'")
        conn.execute("CREATE DATABASE plaindb OWNER plain")
        hba = Path(conn.execute("SHOW hba_file").fetchone()[0])
        if "plain" not in hba.read_text():
            hba.write_text("local all plain scram-sha-256\n" + hba.read_text())
        conn.execute("SELECT pg_reload_conf()")
    socket = uri.split("host=")[1].split("&")[0]
    monkeypatch.setenv("DCA_STORE", f"postgresql://plain@/plaindb?host={socket}")
    runner = CliRunner()
    monkeypatch.setenv("PGPASSWORD", "wrongpass")
    wrong = runner.invoke(app, ["index", "list"])
    assert wrong.exit_code == 1 and len(wrong.stderr.strip().splitlines()) == 1, wrong.output
    assert "refused the login" in wrong.stderr and "PGPASSWORD" in wrong.stderr
    assert "wrongpass" not in wrong.output and "Traceback" not in wrong.output
    monkeypatch.setenv("PGPASSWORD", "rightpass")
    bare = runner.invoke(app, ["index", "list"])
    assert bare.exit_code == 1 and len(bare.stderr.strip().splitlines()) == 1, bare.output
    assert "no pgvector extension" in bare.stderr and "rightpass" not in bare.output


_WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from conftest import HashEmbedder
from dca.config import Paths
from dca.knowledge import IngestConfig, add_paths

class Slow(HashEmbedder):
    def embed(self, texts):
        time.sleep({pause})
        return super().embed(texts)

e = Slow()
add_paths(Paths.resolve({home!r}), "t", [Path({corpus!r})], embedder_name=e.name, embedder_factory=lambda: e,
          config=IngestConfig(batch_chunks=4, commit_chunks=8))
"""


def _corpus(folder: Path, n: int, tag: str) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        (folder / f"{tag}{i:03d}.md").write_text(f"# {tag} {i}\n\n" + f"Fact {tag}{i} is about topic {i % 7}. " * 30)
    return folder


def _chunk_rows(home: Paths) -> list[tuple[str, int, int, str]]:
    index = open_store(home, "t")
    try:
        ids = [int(i) for i in index.vectors().ids()]
        chunks = index.get_chunks(ids)
    finally:
        index.close()
    return sorted((c.path, c.char_start, c.char_end, c.text) for c in chunks.values())


def test_concurrent_writers_and_a_killed_one_leave_a_clean_index(
    home: Paths, tmp_path: Path, embedder: HashEmbedder, postgres_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several dca processes write one PostgreSQL index at once; one is killed with
    SIGKILL mid-ingest; verify passes, and a rerun gives exactly a clean single ingest."""
    import signal
    import subprocess
    import sys
    import time

    import psycopg

    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("DROP DATABASE IF EXISTS concurrent")
        conn.execute("CREATE DATABASE concurrent")
    url = postgres_server.get_uri("concurrent")  # type: ignore[attr-defined]
    monkeypatch.setenv("DCA_STORE", url)
    _add(home, embedder, _corpus(tmp_path / "seed", 1, "s"))  # the index exists before the writers race
    corpora = [_corpus(tmp_path / f"c{w}", 30, f"w{w}x") for w in range(3)]
    tests = str(Path(__file__).parent)
    env = {**os.environ, "DCA_STORE": url}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER.format(tests=tests, home=str(home.home), corpus=str(c), pause=0.01)], env=env
        )
        for c in corpora
    ]
    victim = _corpus(tmp_path / "victim", 60, "v")
    killed = subprocess.Popen(
        [sys.executable, "-c", _WRITER.format(tests=tests, home=str(home.home), corpus=str(victim), pause=0.05)],
        env=env,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill the fourth writer once it has committed a few documents
        watched = open_store(home, "t")
        try:
            committed = sum(1 for p in watched.documents() if "/victim/" in p)
        finally:
            watched.close()
        if committed >= 5:
            break
        time.sleep(0.1)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    assert all(w.wait(timeout=300) == 0 for w in writers)
    index = open_store(home, "t")
    try:
        partial = verify_index(index)
        documents = index.documents()
    finally:
        index.close()
    assert partial.ok, partial.problems
    assert 5 <= sum(1 for p in documents if "/victim/" in p) < 60  # killed mid-ingest, in a committed state
    assert len(documents) >= 1 + 90  # the three other writers finished
    for corpus in (*corpora, victim):  # the rerun finishes what the kill left
        _add(home, embedder, corpus)
    monkeypatch.setenv("DCA_STORE", url)
    raced = _chunk_rows(home)
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("DROP DATABASE IF EXISTS clean")
        conn.execute("CREATE DATABASE clean")
    monkeypatch.setenv("DCA_STORE", postgres_server.get_uri("clean"))  # type: ignore[attr-defined]
    for corpus in (tmp_path / "seed", *corpora, victim):
        _add(home, HashEmbedder(), corpus)
    assert raced == _chunk_rows(home)  # no duplicate, no lost chunk


def test_doctor_checks_the_store(home: Paths, store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dca.doctor import _check_settings, _check_store

    checks = _check_store(home)
    if store == "embedded":
        assert checks == []
    else:
        assert checks[0].ok and "reachable, pgvector" in checks[0].detail
        shown = next(c for c in _check_settings(home) if c.name == "setting store")
        assert "postgresql://" in shown.detail and "[env DCA_STORE]" in shown.detail
    monkeypatch.setenv("DCA_STORE", "postgresql://nobody@127.0.0.1:1/none")
    down = _check_store(home)
    assert not down[0].ok and "cannot reach" in down[0].detail and "unset DCA_STORE" in down[0].fix


def test_an_index_copies_between_the_stores_without_embedding_again(
    home: Paths, tmp_path: Path, fake_embedder: HashEmbedder, postgres_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import psycopg
    from typer.testing import CliRunner

    from dca.cli import app

    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute("DROP DATABASE IF EXISTS copies")
        conn.execute("CREATE DATABASE copies")
    url = postgres_server.get_uri("copies")  # type: ignore[attr-defined]
    monkeypatch.setenv("DCA_STORE", "")
    runner = CliRunner()
    corpus = make_corpus(tmp_path / "corpus")
    assert runner.invoke(app, ["index", "add", str(corpus), "-i", "t"]).exit_code == 0
    local = runner.invoke(app, ["index", "search", "dogs bark fetch sticks", "-i", "t", "--json", "-k", "4"])
    calls = fake_embedder.calls  # a search embeds its query; the copy must embed nothing
    copied = runner.invoke(app, ["index", "copy", "-i", "t", "--to", url, "--json"])
    assert copied.exit_code == 0, copied.output
    counts = json.loads(copied.stdout)
    assert counts["copied"] == counts["documents"] == 5 and counts["chunks"] > 5
    assert fake_embedder.calls == calls  # nothing embedded again
    again = json.loads(runner.invoke(app, ["index", "copy", "-i", "t", "--to", url, "--json"]).stdout)
    assert again["skipped"] == 5 and again["copied"] == 0  # a rerun (or a killed copy's rerun) skips what is there
    remote = runner.invoke(
        app, ["index", "search", "dogs bark fetch sticks", "-i", "t", "--json", "-k", "4", "--store", url]
    )
    top = lambda out: json.loads(out.stdout)[0]  # noqa: E731
    assert top(remote)["path"] == top(local)["path"] and top(remote)["text"] == top(local)["text"]
    back = runner.invoke(app, ["index", "copy", "-i", "t", "--as", "t2", "--to", "embedded", "--store", url, "--json"])
    assert back.exit_code == 0 and json.loads(back.stdout)["copied"] == 5
    monkeypatch.setenv("DCA_STORE", "")
    verified = runner.invoke(app, ["index", "verify", "-i", "t2", "--json"])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"]
    same = runner.invoke(app, ["index", "copy", "-i", "t", "--to", "embedded"])
    assert same.exit_code == 1 and "same index" in same.stderr


def _fresh_database(server: object, name: str) -> str:
    """The URL of a new, empty database on the real server (no vector extension in it yet)."""
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return server.get_uri(name)  # type: ignore[attr-defined]


def test_no_url_shown_anywhere_holds_a_password(
    home: Paths, postgres_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A password in a libpq keyword (?password=, ?sslpassword=) is refused like one in the user
    part, by every command, and no output (doctor, errors, --json) shows it; the refusal names
    where the URL came from (--store or DCA_STORE)."""
    from typer.testing import CliRunner

    from dca.cli import app
    from dca.knowledge.stores import redact_url

    runner = CliRunner()
    url = _fresh_database(postgres_server, "secrets")
    for keyword in ("password", "sslpassword", "PassWord"):
        secret_url = f"{url}&{keyword}=S3cret"
        monkeypatch.setenv("DCA_STORE", secret_url)
        for command in (["doctor"], ["doctor", "--json"], ["index", "list"], ["index", "list", "--json"]):
            result = runner.invoke(app, command)
            assert "S3cret" not in result.output, (command, result.output)
            assert "Traceback" not in result.output
        refused = runner.invoke(app, ["index", "list"])
        assert refused.exit_code == 1 and len(refused.stderr.strip().splitlines()) == 1
        assert f"(env DCA_STORE) holds a password in its {keyword.lower()}= option" in refused.stderr
        monkeypatch.delenv("DCA_STORE")
        flagged = runner.invoke(app, ["index", "list", "--store", secret_url])
        assert flagged.exit_code == 1 and "(--store) holds a password" in flagged.stderr, flagged.stderr
        assert "S3cret" not in flagged.output and "DCA_STORE" not in flagged.stderr
        assert "S3cret" not in redact_url(secret_url)
    os.environ.pop("DCA_STORE", None)


@pytest.mark.parametrize(
    ("suffix", "fragment"),
    [("&bogusopt=1", "cannot be used (invalid URI query parameter"), ("&sslmode=sometimes", "invalid sslmode value")],
)
def test_a_malformed_store_url_is_one_line(
    home: Paths, postgres_server: object, monkeypatch: pytest.MonkeyPatch, suffix: str, fragment: str
) -> None:
    from typer.testing import CliRunner

    from dca.cli import app

    monkeypatch.setenv("DCA_STORE", postgres_server.get_uri() + suffix)  # type: ignore[attr-defined]
    for command in (["index", "list"], ["doctor"]):
        result = CliRunner().invoke(app, command)
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    listed = CliRunner().invoke(app, ["index", "list"])
    assert listed.exit_code == 1 and len(listed.stderr.strip().splitlines()) == 1, listed.output
    assert fragment in listed.stderr


def test_a_url_with_a_bad_escape_is_one_line(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("psycopg")
    from typer.testing import CliRunner

    from dca.cli import app

    monkeypatch.setenv("DCA_STORE", "postgresql://%zz@/x")
    listed = CliRunner().invoke(app, ["index", "list"])
    assert listed.exit_code == 1 and len(listed.stderr.strip().splitlines()) == 1, listed.output
    assert "cannot be used" in listed.stderr and "Traceback" not in listed.output


_FIRST_WRITER = """
import sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from conftest import HashEmbedder
from dca.config import Paths
from dca.knowledge import IngestConfig, add_paths, sync_folder

e = HashEmbedder()
while time.time() < {start}:  # all writers begin together
    time.sleep(0.001)
home = Paths.resolve({home!r})
if {sync}:
    sync_folder(home, "t", Path({corpus!r}), embedder_name=e.name, embedder_factory=lambda: e)
else:
    add_paths(home, "t", [Path({corpus!r})], embedder_name=e.name, embedder_factory=lambda: e, config=IngestConfig())
"""


def test_writers_racing_on_a_fresh_database_all_succeed(
    home: Paths, tmp_path: Path, postgres_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four adds and one sync started at once on a database with no extension and no index:
    making the extension, the index and its dimension races no more (three rounds)."""
    import subprocess
    import sys
    import time

    tests = str(Path(__file__).parent)
    corpora = [_corpus(tmp_path / f"c{w}", 3, f"w{w}x") for w in range(5)]
    for round_ in range(3):
        url = _fresh_database(postgres_server, f"race{round_}")
        env = {**os.environ, "DCA_STORE": url}
        start = time.time() + 3  # after every interpreter has started
        writers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    _FIRST_WRITER.format(tests=tests, home=str(home.home), corpus=str(c), start=start, sync=w == 4),
                ],
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
            for w, c in enumerate(corpora)
        ]
        errors = [w.communicate(timeout=120)[1] for w in writers]
        assert [w.returncode for w in writers] == [0] * 5, "\n".join(errors)
        monkeypatch.setenv("DCA_STORE", url)
        index = open_store(home, "t")
        try:
            assert len(index.documents()) == 15 and verify_index(index).ok
        finally:
            index.close()


class _Gate(HashEmbedder):
    """Embeds only once ``open`` is set (the group in flight waits there, its transaction open)."""

    def __init__(self) -> None:
        import threading

        super().__init__()
        self.open = threading.Event()
        self.waiting = threading.Event()

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.waiting.set()
        assert self.open.wait(30)
        return super().embed(texts)


def test_readers_do_not_wait_for_the_first_ingest_into_a_new_index(
    home: Paths, tmp_path: Path, postgres_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    url = _fresh_database(postgres_server, "readers")
    monkeypatch.setenv("DCA_STORE", url)
    _add(home, HashEmbedder(), _corpus(tmp_path / "seed", 0, "s"))  # the index exists, empty, with no dimension yet
    gate = _Gate()
    writer = threading.Thread(
        target=lambda: add_paths(
            home, "t", [_corpus(tmp_path / "c", 5, "c")], embedder_name=gate.name, embedder_factory=lambda: gate
        ),
        daemon=True,
    )
    writer.start()
    try:
        assert gate.waiting.wait(30)  # the first group is open, waiting for its vectors
        monkeypatch.setenv("DCA_STORE", url + "&options=-c%20statement_timeout%3D3000")  # a reader that waits fails
        assert _search(home, HashEmbedder(), "fact", mode="hybrid", k=3) == []
        index = open_store(home, "t")
        try:
            assert index.stats()["chunks"] == 0
        finally:
            index.close()
    finally:
        gate.open.set()
        writer.join(timeout=60)
    assert len(_chunk_rows(home)) > 0


def test_a_server_that_goes_away_mid_ingest_is_one_line_and_a_rerun_finishes(
    home: Paths, tmp_path: Path, postgres_server: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server drops dca's connection mid-ingest (as a crash or `pg_ctl stop -m immediate`
    does): one line that says so and what to do; nothing committed is lost."""
    import threading

    import psycopg

    monkeypatch.setenv("DCA_STORE", _fresh_database(postgres_server, "goesaway"))
    corpus = _corpus(tmp_path / "c", 6, "g")
    gate = _Gate()
    failures: list[BaseException] = []

    def ingest() -> None:
        try:
            add_paths(
                home,
                "t",
                [corpus],
                embedder_name=gate.name,
                embedder_factory=lambda: gate,
                config=IngestConfig(commit_chunks=1),
            )
        except BaseException as exc:
            failures.append(exc)

    writer = threading.Thread(target=ingest, daemon=True)
    writer.start()
    assert gate.waiting.wait(30)
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as conn:  # type: ignore[attr-defined]
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'goesaway' AND pid <> pg_backend_pid()"
        )
    gate.open.set()
    writer.join(timeout=60)
    assert len(failures) == 1 and isinstance(failures[0], KnowledgeIndexError), failures
    message = str(failures[0])
    assert "went away" in message and "rerun" in message and "\n" not in message
    _add(home, HashEmbedder(), corpus)
    index = open_store(home, "t")
    try:
        assert len(index.documents()) == 6 and verify_index(index).ok
    finally:
        index.close()


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ("UPDATE {s}.meta SET value = 'not json' WHERE key = 'chunking'", "chunking is not JSON"),
        ("DELETE FROM {s}.meta WHERE key = 'dim'", "no dim"),
        ("UPDATE {s}.meta SET value = 'many' WHERE key = 'dim'", "not a number"),
        ("UPDATE {s}.meta SET value = '65' WHERE key = 'dim'", "dim says 65, its vectors have 64"),
    ],
)
def test_damaged_index_metadata_is_named_and_the_other_indexes_still_list(
    home: Paths,
    tmp_path: Path,
    embedder: HashEmbedder,
    postgres_server: object,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
    said: str,
) -> None:
    import json

    import psycopg
    from typer.testing import CliRunner

    from dca.cli import app

    url = _fresh_database(postgres_server, "damaged")
    monkeypatch.setenv("DCA_STORE", url)
    corpus = make_corpus(tmp_path / "corpus")
    _add(home, embedder, corpus, name="good")
    _add(home, embedder, corpus, name="bad")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(damage.format(s="dca_bad"))
    with pytest.raises(KnowledgeIndexError, match=f"index 'bad' .*damaged metadata .*{said}"):
        open_store(home, "bad")
    listed = CliRunner().invoke(app, ["index", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["good"]["documents"] > 0 and said in rows["bad"]["error"]
    searched = CliRunner().invoke(app, ["index", "search", "dogs", "-i", "bad"])
    assert searched.exit_code == 1 and "damaged metadata" in searched.stderr and "Traceback" not in searched.output
