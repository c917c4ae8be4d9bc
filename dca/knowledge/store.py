"""One knowledge index on disk: SQLite (documents, chunks, vectors, FTS5) + a FAISS file + manifest.

Layout of ``indexes/NAME/``::

    manifest.json        embedder, dimension, chunking, which vectors file is current
    store.sqlite         documents, chunks (text, location, vector), tombstones, chunks_fts
    vectors-<gen>.faiss  the FAISS index as of generation <gen>
    write.lock           held by the one writer

SQLite is the source of truth and every change is one transaction that bumps a
generation number. The FAISS file may lag behind: opening the index replays the chunks
added and the ids deleted after the file's generation (``chunks.gen``, ``tombstones``).
So a kill -9 at any moment leaves an index that opens in its last committed state, and
readers (SQLite WAL) are never blocked by the writer.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dca.config import Paths
from dca.errors import IndexNotFoundError, KnowledgeIndexError
from dca.files import atomic_write_json

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    n_chunks INTEGER NOT NULL,
    gen INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: FAISS ids are chunk ids
    doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    text TEXT NOT NULL,
    heading TEXT NOT NULL,
    page INTEGER,
    char_start INTEGER NOT NULL,
    char_end INTEGER NOT NULL,
    n_tokens INTEGER NOT NULL,
    vector BLOB NOT NULL,
    gen INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_gen ON chunks(gen);
CREATE TABLE IF NOT EXISTS tombstones (chunk_id INTEGER PRIMARY KEY, gen INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_gen ON tombstones(gen);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER IF NOT EXISTS chunks_ai AFTER INSERT ON chunks BEGIN
    INSERT INTO chunks_fts(rowid, text, heading) VALUES (new.id, new.text, new.heading);
END;
CREATE TRIGGER IF NOT EXISTS chunks_ad AFTER DELETE ON chunks BEGIN
    INSERT INTO chunks_fts(chunks_fts, rowid, text, heading) VALUES ('delete', old.id, old.text, old.heading);
    INSERT OR REPLACE INTO tombstones(chunk_id, gen)
        VALUES (old.id, (SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'gen'));
END;
"""


def validate_index_name(name: str) -> str:
    if not _NAME_RE.fullmatch(name) or ".." in name:  # fullmatch: "$" would let a trailing newline in
        raise KnowledgeIndexError(
            f"index name {name!r} is invalid: use letters, digits, '.', '_' or '-' (no '/' or '..')"
        )
    return name


def require_index(paths: Paths, name: str) -> None:
    """IndexNotFoundError, naming the existing indexes, unless an index ``name`` exists."""
    validate_index_name(name)
    if name not in list_indexes(paths):
        raise IndexNotFoundError(f"no index named {name!r} (existing: {', '.join(list_indexes(paths)) or 'none'})")


def delete_index(paths: Paths, name: str) -> None:
    """Delete an index and all its files; refused while a writer holds its lock (the writer
    would crash half-way, and a delete must not pull files from under it)."""
    import shutil

    from filelock import FileLock, Timeout

    require_index(paths, name)
    folder = paths.indexes / name
    lock = FileLock(str(folder / "write.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise KnowledgeIndexError(
            f"index {name!r} is being changed by another dca process; wait for it to finish, then delete it"
        ) from None
    try:
        shutil.rmtree(folder)
    finally:
        lock.release()


EVAL_MARK = ".made-by-eval"  # in an index folder: built by `dca eval` from a task's corpus


def list_indexes(paths: Paths, *, hide_eval: bool = False) -> list[str]:
    """Names of the indexes under DCA_HOME; ``hide_eval``: without those `dca eval` built."""
    if not paths.indexes.is_dir():
        return []
    return sorted(
        p.name
        for p in paths.indexes.iterdir()
        if (p / "manifest.json").is_file() and not (hide_eval and (p / EVAL_MARK).is_file())
    )


def mark_eval_index(paths: Paths, name: str) -> None:
    """Mark an index as built by `dca eval` (kept out of `dca index list`)."""
    (paths.indexes / validate_index_name(name) / EVAL_MARK).touch()


def chunk_rows(
    doc_id: int, first_ord: int, chunks: list[Any], vectors: np.ndarray, gen: int, encode: Any
) -> list[tuple[Any, ...]]:
    """A document's chunks as the column values both stores insert (doc_id, ord, text, heading,
    page, char_start, char_end, n_tokens, vector, gen); ``encode`` turns a float32 vector into
    the store's own column type."""
    return [
        (
            doc_id,
            first_ord + offset,
            chunk.text,
            chunk.heading,
            chunk.page,
            chunk.start,
            chunk.end,
            chunk.n_tokens,
            encode(np.asarray(vector, dtype=np.float32)),
            gen,
        )
        for offset, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True))
    ]


@dataclass(frozen=True, kw_only=True)
class StoredChunk:
    """A chunk as read back from the store, with where it came from."""

    id: int
    path: str
    text: str
    heading: str
    page: int | None
    char_start: int
    char_end: int


@dataclass(kw_only=True)
class StoreCheck:
    """What a store finds when it checks itself (``dca index verify``)."""

    documents: int = 0
    chunks: int = 0
    vectors: int = 0
    vectors_checked: int = 0  # stored vectors compared with the source of truth
    problems: list[str] = field(default_factory=list)
    damaged: bool = False  # beyond repair: only deleting the index and adding the files again helps


VECTOR_SAMPLE = 64  # vectors compared on a plain verify; deep compares all of them


@dataclass(kw_only=True)
class Manifest:
    """manifest.json: what an index was made with and which vectors file is current."""

    embedder: str
    dim: int
    chunking: dict[str, int]
    created: float = field(default_factory=time.time)
    schema_version: int = SCHEMA_VERSION
    vectors_file: str = ""  # "" until the first save
    vectors_gen: int = 0
    vectors_kind: str = "exact"
    ann: dict[str, Any] = field(default_factory=dict)  # nprobe, measured recall, trained size

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class KnowledgeIndex:
    """An open index. Writers must hold :meth:`writer`; readers just open it."""

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder = folder
        self.name = folder.name
        self.manifest = manifest
        self.db = _connect(folder / "store.sqlite")
        self._vectors: Any = None  # FaissIndex, loaded lazily and caught up to the database
        self._vectors_gen = -1

    # ---- opening -----------------------------------------------------------------
    @classmethod
    def open(cls, paths: Paths, name: str) -> KnowledgeIndex:
        folder = paths.indexes / validate_index_name(name)
        try:
            raw = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            known = ", ".join(list_indexes(paths)) or "none yet"
            raise IndexNotFoundError(
                f"no index named {name!r} (existing: {known}); create it with `dca index add PATH --index {name}`"
            ) from None
        except ValueError as exc:
            raise KnowledgeIndexError(
                f"{folder / 'manifest.json'} is corrupt ({exc}); delete the index and add the files again"
            ) from None
        try:
            manifest = Manifest(**raw)
        except TypeError as exc:
            raise KnowledgeIndexError(f"{folder / 'manifest.json'} has unexpected fields ({exc})") from None
        if manifest.schema_version != SCHEMA_VERSION:
            raise KnowledgeIndexError(
                f"index {name!r} uses schema {manifest.schema_version}; this dca reads {SCHEMA_VERSION}"
            )
        return cls(folder, manifest)

    @classmethod
    def create(cls, paths: Paths, name: str, *, embedder: str, dim: int, chunking: dict[str, int]) -> KnowledgeIndex:
        folder = paths.indexes / validate_index_name(name)
        paths.ensure_writable(folder)
        manifest = Manifest(embedder=embedder, dim=dim, chunking=chunking)
        index = cls(folder, manifest)
        atomic_write_json(folder / "manifest.json", manifest.to_json())  # last: the index exists from here
        return index

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def writer(self) -> Iterator[KnowledgeIndex]:
        """Hold the index's write lock (one writer at a time)."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.folder / "write.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise KnowledgeIndexError(
                f"index {self.name!r} is being changed by another dca process; wait for it to finish"
            ) from None
        try:
            yield self
        finally:
            lock.release()

    # ---- generations ----------------------------------------------------------------
    @property
    def generation(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'gen'").fetchone()
        return int(row[0]) if row else 0

    @contextmanager
    def transaction(self) -> Iterator[int]:
        """One atomic change; yields the new generation number that its rows carry."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            gen = self.generation + 1
            self.db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('gen', ?)", (str(gen),))
            yield gen
            self.db.execute("COMMIT")
        except BaseException as exc:
            if self.db.in_transaction:  # SQLite has already rolled back after some errors (a full disk)
                self.db.execute("ROLLBACK")
            self._vectors = None  # in-memory vectors may hold the rolled-back rows
            if isinstance(exc, sqlite3.OperationalError) and "full" in str(exc):
                raise KnowledgeIndexError(
                    f"the disk holding index {self.name!r} is full ({exc}); nothing was lost: the index is as "
                    "it was before this change. Free some space and rerun the command"
                ) from None
            raise

    # ---- vectors ---------------------------------------------------------------------
    def vectors(self) -> Any:
        """The FAISS index, caught up to the committed database state."""
        from dca.knowledge.vectors import FaissIndex

        if self._vectors is None:
            if self.manifest.vectors_file:
                path = self.folder / self.manifest.vectors_file
                try:
                    self._vectors = FaissIndex.load(path)
                except RuntimeError as exc:
                    raise KnowledgeIndexError(
                        f"{path} is unreadable ({str(exc).splitlines()[0][:80]}); "
                        f"rebuild it with `dca index verify -i {self.name} --repair`"
                    ) from None
                self._vectors_gen = self.manifest.vectors_gen
            else:
                self._vectors = FaissIndex.exact(self.manifest.dim)
                self._vectors_gen = 0
        self._catch_up()
        return self._vectors

    def _catch_up(self) -> None:
        gen = self.generation
        if gen == self._vectors_gen:
            return
        since = self._vectors_gen
        removed = np.array(
            [
                r[0]
                for r in self.db.execute(
                    "SELECT chunk_id FROM tombstones WHERE gen > ? OR chunk_id IN "
                    "(SELECT id FROM chunks WHERE gen > ?)",
                    (since, since),
                )
            ],
            dtype=np.int64,
        )
        self._vectors.remove(removed)
        self._vectors.add(*self._vectors_since(since))
        self._vectors_gen = gen

    def note_applied(self, gen: int) -> None:
        """The writer applied generation ``gen`` to the in-memory vectors itself."""
        self._vectors_gen = gen

    def save_vectors(self, *, ann: Any = None) -> None:
        """Persist the vectors at the current generation (writers only); switch to IVF past the threshold."""
        from dca.knowledge.vectors import build_ivf

        if self.manifest.dim == 0:  # nothing was ever embedded
            return
        vectors = self.vectors()
        gen = self._vectors_gen
        if ann is not None and vectors.ntotal > ann.ann_threshold:
            trained = int(self.manifest.ann.get("trained_size", 0))
            if vectors.kind != "ivf" or vectors.ntotal > 4 * trained:
                ids, vecs = self.all_vectors()
                vectors, recall = build_ivf(ids, vecs, ann)
                self._vectors = vectors
                self.manifest.ann = {"nprobe": vectors.nprobe, "recall_at_10": recall, "trained_size": len(ids)}
        elif vectors.kind == "ivf" and ann is not None and vectors.ntotal < ann.ann_threshold // 2:
            vectors = self._exact_from_sqlite()
            self.manifest.ann = {}
        if (
            self.manifest.vectors_file
            and self.manifest.vectors_gen == gen
            and self.manifest.vectors_kind == vectors.kind
        ):
            return
        old = self.manifest.vectors_file
        name = f"vectors-{gen}.faiss"
        vectors.save(self.folder / name)
        self.manifest.vectors_file, self.manifest.vectors_gen, self.manifest.vectors_kind = name, gen, vectors.kind
        atomic_write_json(self.folder / "manifest.json", self.manifest.to_json())
        for stale in self.folder.glob("vectors-*.faiss"):
            if stale.name not in (name, old):  # keep the previous file for readers opening it right now
                stale.unlink(missing_ok=True)

    def _vectors_since(self, gen: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the chunks added after generation ``gen``, by id."""
        rows = self.db.execute("SELECT id, vector FROM chunks WHERE gen > ? ORDER BY id", (gen,)).fetchall()
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), self.manifest.dim)
        return ids, vecs

    def all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        return self._vectors_since(0)

    def _exact_from_sqlite(self) -> Any:
        """Make the in-memory vectors an exact index rebuilt from SQLite, current to the database."""
        from dca.knowledge.vectors import FaissIndex

        fresh = FaissIndex.exact(self.manifest.dim)
        fresh.add(*self.all_vectors())
        self._vectors, self._vectors_gen = fresh, self.generation
        return fresh

    def rebuild_vectors(self) -> None:
        """Replace a damaged FAISS file with one rebuilt from the vectors kept in SQLite (writers only)."""
        self._exact_from_sqlite()
        self.manifest.vectors_file = ""  # force a new file even at the same generation
        self.save_vectors()

    # ---- documents and chunks ------------------------------------------------------
    def documents(self) -> dict[str, tuple[str, int, int]]:
        """path -> (sha256, size, mtime_ns) of every indexed document."""
        rows = self.db.execute("SELECT path, sha256, size, mtime_ns FROM documents")
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def delete_document(self, path: str) -> list[int]:
        """Delete a document and its chunks (inside a transaction); return the removed chunk ids."""
        ids = [
            r[0]
            for r in self.db.execute(
                "SELECT c.id FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE d.path = ?", (path,)
            )
        ]
        self.db.execute("DELETE FROM chunks WHERE doc_id IN (SELECT id FROM documents WHERE path = ?)", (path,))
        self.db.execute("DELETE FROM documents WHERE path = ?", (path,))
        return ids

    def insert_document(self, *, path: str, sha256: str, size: int, mtime_ns: int, gen: int) -> int:
        cursor = self.db.execute(
            "INSERT INTO documents(path, sha256, size, mtime_ns, n_chunks, gen) VALUES (?, ?, ?, ?, 0, ?)",
            (path, sha256, size, mtime_ns, gen),
        )
        return int(cursor.lastrowid or 0)

    def insert_chunks(self, doc_id: int, first_ord: int, chunks: list[Any], vectors: np.ndarray, gen: int) -> list[int]:
        ids = []
        for row in chunk_rows(doc_id, first_ord, chunks, vectors, gen, lambda v: v.tobytes()):
            cursor = self.db.execute(
                "INSERT INTO chunks(doc_id, ord, text, heading, page, char_start, char_end, n_tokens, vector, gen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            ids.append(int(cursor.lastrowid or 0))
        self.db.execute("UPDATE documents SET n_chunks = n_chunks + ? WHERE id = ?", (len(ids), doc_id))
        return ids

    def document_chunks(self, path: str) -> tuple[list[Any], np.ndarray]:
        """A document's chunks in order (as ``Chunk``s) and their vectors: what a copy needs."""
        from dca.knowledge.chunking import Chunk

        rows = self.db.execute(
            "SELECT c.text, c.char_start, c.char_end, c.heading, c.page, c.n_tokens, c.vector FROM chunks c "
            "JOIN documents d ON d.id = c.doc_id WHERE d.path = ? ORDER BY c.ord",
            (path,),
        ).fetchall()
        chunks = [Chunk(text=r[0], start=r[1], end=r[2], heading=r[3], page=r[4], n_tokens=r[5]) for r in rows]
        vectors = np.frombuffer(b"".join(r[6] for r in rows), dtype=np.float32).reshape(len(rows), self.manifest.dim)
        return chunks, vectors

    def drop_document(self, doc_id: int) -> None:
        """Delete a document row that got no chunks (inside the transaction that inserted it)."""
        self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,))

    def set_dim(self, dim: int) -> None:
        """Record the embedder's dimension (the first time anything is embedded)."""
        self.manifest.dim = dim
        atomic_write_json(self.folder / "manifest.json", self.manifest.to_json())

    def keyword_ranking(self, terms: list[str], n: int) -> list[tuple[int, float]]:
        """(chunk id, score) of the ``n`` best BM25 matches of any of ``terms`` (SQLite FTS5), best first."""
        match = " OR ".join(f'"{t}"' for t in dict.fromkeys(terms))
        rows = self.db.execute(
            "SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY s LIMIT ?",
            (match, n),
        )
        return [(int(r[0]), -float(r[1])) for r in rows]

    def get_chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            "SELECT c.id, d.path, c.text, c.heading, c.page, c.char_start, c.char_end FROM chunks c "
            f"JOIN documents d ON d.id = c.doc_id WHERE c.id IN ({marks})",
            ids,
        )
        return {
            r[0]: StoredChunk(id=r[0], path=r[1], text=r[2], heading=r[3], page=r[4], char_start=r[5], char_end=r[6])
            for r in rows
        }

    # ---- self-check ---------------------------------------------------------------------
    def check(self, *, deep: bool = False) -> StoreCheck:
        """SQLite's integrity, the BM25 table's row count, FAISS's count, ids and vectors against
        SQLite's (a sample, or all with ``deep``)."""
        result = StoreCheck()
        try:
            integrity = self.db.execute("PRAGMA integrity_check").fetchone()[0]
            if integrity != "ok":
                return _damaged(result, self.name, integrity)
            chunk_ids = np.array([r[0] for r in self.db.execute("SELECT id FROM chunks")], dtype=np.int64)
            result.chunks = len(chunk_ids)
            result.documents = self.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            fts = self.db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
            if fts != result.chunks:
                result.problems.append(f"the BM25 table has {fts} rows for {result.chunks} chunks")
            if self.manifest.dim:
                try:
                    vectors = self.vectors()
                    result.vectors = vectors.ntotal
                    if vectors.ntotal != result.chunks:
                        result.problems.append(f"FAISS holds {vectors.ntotal} vectors for {result.chunks} chunks")
                    elif not np.array_equal(np.sort(vectors.ids()), np.sort(chunk_ids)):
                        result.problems.append("FAISS ids differ from the chunk ids in SQLite")
                    else:
                        self._compare_vectors(vectors, chunk_ids, result, deep)
                except KnowledgeIndexError as exc:
                    result.problems.append(str(exc))
        except sqlite3.DatabaseError as exc:  # pages too damaged for SQLite to even check them
            return _damaged(result, self.name, str(exc))
        return result

    def _compare_vectors(self, vectors: Any, chunk_ids: np.ndarray, result: StoreCheck, deep: bool) -> None:
        """FAISS's stored vectors against SQLite's (the truth): all of them, or an even sample."""
        ids = np.sort(chunk_ids)
        if not deep and len(ids) > VECTOR_SAMPLE:
            ids = ids[np.linspace(0, len(ids) - 1, VECTOR_SAMPLE).astype(np.int64)]
        if not len(ids):
            return
        marks = ",".join("?" * len(ids))
        rows = dict(self.db.execute(f"SELECT id, vector FROM chunks WHERE id IN ({marks})", [int(i) for i in ids]))
        truth = np.stack([np.frombuffer(rows[int(i)], dtype=np.float32) for i in ids])
        bad = int(np.sum(np.abs(vectors.reconstruct(ids) - truth).max(axis=1) > 1e-4))
        result.vectors_checked = len(ids)
        if bad:
            result.problems.append(
                f"{bad} of {len(ids)} vectors checked in FAISS differ from SQLite's (the vector file is damaged)"
            )

    def repair(self) -> None:
        """Rebuild what can be rebuilt from the source of truth (writers only): the FAISS file."""
        self.rebuild_vectors()

    def stats(self) -> dict[str, Any]:
        n_docs, n_chunks = self.db.execute(
            "SELECT (SELECT COUNT(*) FROM documents), (SELECT COUNT(*) FROM chunks)"
        ).fetchone()
        size = sum(p.stat().st_size for p in self.folder.iterdir() if p.is_file())
        return {
            "name": self.name,
            "documents": n_docs,
            "chunks": n_chunks,
            "embedder": self.manifest.embedder,
            "dim": self.manifest.dim,
            "chunking": self.manifest.chunking,
            "vectors": self.manifest.vectors_kind,
            "ann": self.manifest.ann,
            "generation": self.generation,
            "bytes_on_disk": size,
        }


def _damaged(result: StoreCheck, name: str, detail: str) -> StoreCheck:
    result.problems.append(
        f"the SQLite database is damaged ({detail}); delete the index (`dca index delete -i {name}`) "
        "and add the files again"
    )
    result.damaged = True
    return result


def _connect(path: Path) -> sqlite3.Connection:
    try:
        db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
    except sqlite3.DatabaseError as exc:
        raise KnowledgeIndexError(
            f"{path} is not a readable index database ({exc}); delete the index and add the files again"
        ) from None
    return db
