"""One knowledge index in PostgreSQL: documents, chunks, pgvector embeddings and full-text search.

The same methods as the embedded store (dca/knowledge/store.py), so ingest, retrieval and
verify run unchanged on either. An index is one schema (``dca_<name>``) of a database named by
a ``postgresql://`` URL; the password comes from libpq's usual places (``PGPASSWORD``,
``~/.pgpass``), never from dca's own output.

- Dense search: a pgvector HNSW index on the chunk embeddings (cosine); keyword search:
  PostgreSQL full-text search (an ``english`` tsvector of heading and text, GIN-indexed,
  ranked as BM25 ranks: each word's ``ts_rank`` weighted by its inverse document frequency);
  fused by dca's retrieval exactly as the embedded store's.
- Documents are committed in groups of whole documents (ingest's ``commit_chunks``, 2,048
  chunks), each group one transaction: a killed ingest leaves nothing half done and loses at
  most the group in flight. Writers of one index take a transaction-scoped advisory lock per
  document path, so several dca processes may ingest into one index at once. Readers never
  wait for a writer: the schema (and the vector column's dimension) is made in transactions
  of its own, before any group, so a group holds only row locks, which readers do not take.
- Making the vector extension, an index's schema and its dimension is safe under concurrency:
  each takes an advisory lock and looks again before changing anything.
- The embedder, its dimension and the chunking are recorded in the schema's ``meta`` table and
  checked as the embedded store checks its manifest; a ``meta`` that cannot be read, or whose
  dimension differs from the vector column's, is a one-line error naming the index.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np

from dca.errors import IndexNotFoundError, KnowledgeIndexError
from dca.knowledge.store import Manifest, StoreCheck, StoredChunk, chunk_rows, validate_index_name
from dca.knowledge.stores import error_line

_SCHEMA_PREFIX = "dca_"
_MAX_WORDS = 64  # keyword search reads the first 64 distinct words of a longer query
_SETUP_LOCK = "dca:setup:"  # + what is being set up: the advisory lock its makers take in turn


def _setup_lock(conn: Any, what: str) -> None:
    """Wait for any other dca process setting up ``what``; released when the transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (_SETUP_LOCK + what,))


F = TypeVar("F", bound=Callable[..., Any])


def _store_errors(doing: str) -> Callable[[F], F]:
    """A method whose database errors reach the user as one line (``pg_error``), not a traceback."""

    def wrap(method: F) -> F:
        @functools.wraps(method)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            import psycopg

            try:
                return method(*args, **kwargs)
            except psycopg.Error as exc:
                raise pg_error(exc, doing) from None

        return guarded  # type: ignore[return-value]

    return wrap


def pg_error(exc: BaseException, doing: str) -> KnowledgeIndexError:
    """A database error while ``doing`` something, as one line for the user (a server that went
    away mid-run is said so: nothing committed is lost, a rerun resumes)."""
    import psycopg

    if isinstance(exc, psycopg.OperationalError):
        return KnowledgeIndexError(
            f"the PostgreSQL store went away while {doing} ({error_line(exc)}); what was committed is kept: "
            "start the server again and rerun the command to finish"
        )
    return KnowledgeIndexError(f"the PostgreSQL store failed while {doing} ({error_line(exc)})")


def _schema(name: str) -> str:
    validate_index_name(name)
    return _SCHEMA_PREFIX + re.sub(r"[^a-z0-9_]", "_", name.lower())


def connect(url: str) -> Any:
    """A connection to the database at ``url`` with pgvector registered; one line on failure."""
    import psycopg
    from pgvector.psycopg import register_vector

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.ProgrammingError as exc:  # libpq could not parse the URL (a bad option, a bad %-escape)
        raise KnowledgeIndexError(
            f"the store URL cannot be used ({error_line(exc)}); check its spelling and options"
        ) from None
    except psycopg.OperationalError as exc:
        detail = error_line(exc)
        if "password" in detail.lower() or "authentication" in detail.lower():
            raise KnowledgeIndexError(
                f"the PostgreSQL store refused the login ({detail}); set the password in PGPASSWORD "
                "or ~/.pgpass (never in the URL), or check the user name"
            ) from None
        raise KnowledgeIndexError(
            f"cannot reach the PostgreSQL store ({detail}); check the URL and the server"
        ) from None
    try:
        _ensure_vector(conn)
        register_vector(conn)
    except psycopg.Error as exc:
        conn.close()
        raise pg_error(exc, "opening the store") from None
    except KnowledgeIndexError:
        conn.close()
        raise
    return conn


def _ensure_vector(conn: Any) -> None:
    """Create the pgvector extension unless it is there. Several dca processes may start on a new
    database at once: they take turns (advisory lock) and look again, so none of them trips over
    another's CREATE EXTENSION; only a database that cannot have it is reported as lacking it."""
    import psycopg

    def installed() -> bool:
        return conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is not None

    if installed():
        return
    if conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone() is None:
        raise KnowledgeIndexError(
            "the PostgreSQL server has no pgvector extension; install pgvector on the server "
            "(https://github.com/pgvector/pgvector)"
        )
    try:
        with conn.transaction():
            _setup_lock(conn, "extension")
            if not installed():
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.errors.InsufficientPrivilege as exc:
        raise KnowledgeIndexError(
            f"the PostgreSQL database has no pgvector extension and this user may not create it ({error_line(exc)}); "
            "ask the database's owner or a superuser to run CREATE EXTENSION vector in it"
        ) from None


def _manifest(name: str, raw: dict[str, str], column_dim: int) -> Manifest:
    """The index's ``meta`` as a Manifest, or one line naming what in it is damaged."""

    def damaged(what: str) -> KnowledgeIndexError:
        return KnowledgeIndexError(
            f"index {name!r} in the PostgreSQL store has damaged metadata ({what}); "
            f"delete it with `dca index delete {name}` and add its files again"
        )

    missing = [key for key in ("embedder", "dim", "chunking") if key not in raw]
    if missing:
        raise damaged(f"no {', '.join(missing)}")
    try:
        dim = int(raw["dim"])
    except ValueError:
        raise damaged(f"dim is {raw['dim']!r}, not a number") from None
    try:
        chunking = json.loads(raw["chunking"])
    except ValueError:
        raise damaged("chunking is not JSON") from None
    if not isinstance(chunking, dict) or not all(isinstance(v, int) for v in chunking.values()):
        raise damaged(f"chunking is {raw['chunking'][:80]!r}, not a table of numbers")
    if dim == 0 and column_dim:  # another writer set the dimension between the two reads
        dim = column_dim
    if dim < 0 or (column_dim and dim != column_dim):
        raise damaged(f"dim says {dim}, its vectors have {column_dim or 'no fixed number of'} dimensions")
    return Manifest(embedder=raw["embedder"], dim=dim, chunking=chunking, vectors_kind="hnsw")


def _column_dim(conn: Any, schema: str) -> int:
    """The dimension the chunks' vector column was made with (0: none fixed yet)."""
    row = conn.execute(
        "SELECT a.atttypmod FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relname = 'chunks' AND a.attname = 'embedding'",
        (schema,),
    ).fetchone()
    return max(0, int(row[0])) if row else 0


def list_pg_indexes(url: str, *, hide_eval: bool = False) -> list[str]:
    """Names of the indexes in the database (``hide_eval``: without those `dca eval` built)."""
    import psycopg

    conn = connect(url)
    try:
        rows = conn.execute(
            "SELECT n.nspname FROM pg_namespace n JOIN pg_class c ON c.relnamespace = n.oid "
            "WHERE c.relname = 'meta' AND n.nspname LIKE %s",
            (_SCHEMA_PREFIX + "%",),
        ).fetchall()
        names = []
        for (schema,) in rows:
            meta = dict(conn.execute(f'SELECT key, value FROM "{schema}".meta').fetchall())
            if "name" in meta and not (hide_eval and meta.get("made_by_eval")):
                names.append(str(meta["name"]))
        return sorted(names)
    except psycopg.Error as exc:
        raise pg_error(exc, "listing the indexes") from None
    finally:
        conn.close()


class PgIndex:
    """An open index in PostgreSQL (the embedded ``KnowledgeIndex``'s methods)."""

    def __init__(self, url: str, name: str, conn: Any, manifest: Manifest) -> None:
        self.url = url
        self.name = name
        self.schema = _schema(name)
        self.db = conn
        self.manifest = manifest
        self._in_transaction = False

    # ---- opening ---------------------------------------------------------------------
    @classmethod
    @_store_errors("opening the index")
    def open(cls, url: str, name: str) -> PgIndex:
        conn = connect(url)
        schema = _schema(name)
        exists = conn.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = 'meta'",
            (schema,),
        ).fetchone()
        if not exists:
            conn.close()
            raise IndexNotFoundError(
                f"no index named {name!r} in the PostgreSQL store; create it with `dca index add PATH --index {name}`"
            )
        raw = dict(conn.execute(f'SELECT key, value FROM "{schema}".meta').fetchall())
        try:
            manifest = _manifest(name, raw, _column_dim(conn, schema))
        except KnowledgeIndexError:
            conn.close()
            raise
        return cls(url, name, conn, manifest)

    @classmethod
    @_store_errors("creating the index")
    def create(cls, url: str, name: str, *, embedder: str, dim: int, chunking: dict[str, int]) -> PgIndex:
        conn = connect(url)
        schema = _schema(name)
        with conn.transaction():
            _setup_lock(conn, schema)  # CREATE ... IF NOT EXISTS is not safe against a concurrent maker
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            conn.execute(
                f"""
                CREATE TABLE IF NOT EXISTS "{schema}".documents (
                    id BIGSERIAL PRIMARY KEY, path TEXT NOT NULL UNIQUE, sha256 TEXT NOT NULL,
                    size BIGINT NOT NULL, mtime_ns BIGINT NOT NULL, n_chunks INTEGER NOT NULL, gen BIGINT NOT NULL);
                CREATE TABLE IF NOT EXISTS "{schema}".chunks (
                    id BIGSERIAL PRIMARY KEY,
                    doc_id BIGINT NOT NULL REFERENCES "{schema}".documents(id) ON DELETE CASCADE,
                    ord INTEGER NOT NULL, text TEXT NOT NULL, heading TEXT NOT NULL, page INTEGER,
                    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, n_tokens INTEGER NOT NULL,
                    embedding vector, gen BIGINT NOT NULL,
                    tsv tsvector GENERATED ALWAYS AS (to_tsvector('english', heading || ' ' || text)) STORED);
                CREATE INDEX IF NOT EXISTS chunks_doc ON "{schema}".chunks(doc_id);
                CREATE INDEX IF NOT EXISTS chunks_tsv ON "{schema}".chunks USING gin(tsv);
                CREATE SEQUENCE IF NOT EXISTS "{schema}".generation;
                CREATE TABLE IF NOT EXISTS "{schema}".meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                """
            )
            for key, value in (
                ("name", name),
                ("embedder", embedder),
                ("dim", str(dim)),
                ("chunking", json.dumps(chunking)),
                ("created", str(time.time())),
            ):
                conn.execute(
                    f'INSERT INTO "{schema}".meta(key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING',
                    (key, value),
                )
        conn.close()
        index = cls.open(url, name)
        if dim:
            index.set_dim(dim)
        return index

    def close(self) -> None:
        self.db.close()

    @_store_errors("writing to the index")
    def mark_eval(self) -> None:
        """Built by `dca eval` from a task's corpus (kept out of `dca index list`)."""
        self.db.execute(
            f'INSERT INTO "{self.schema}".meta(key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING',
            ("made_by_eval", "1"),
        )

    @_store_errors("writing to the index")
    def drop(self) -> None:
        """Delete the index: its schema and everything in it, in one transaction."""
        self.db.execute(f'DROP SCHEMA "{self.schema}" CASCADE')

    @contextmanager
    def writer(self) -> Iterator[PgIndex]:
        """Writers need no lock of their own here: each change locks what it touches."""
        yield self

    # ---- generations -------------------------------------------------------------------
    @property
    @_store_errors("reading the index")
    def generation(self) -> int:
        row = self.db.execute(f'SELECT last_value, is_called FROM "{self.schema}".generation').fetchone()
        return int(row[0]) if row and row[1] else 0

    @contextmanager
    def transaction(self) -> Iterator[int]:
        import psycopg

        try:
            with self.db.transaction():
                gen = int(self.db.execute(f"SELECT nextval('\"{self.schema}\".generation')").fetchone()[0])
                yield gen
        except psycopg.Error as exc:  # also the rollback on a connection the server dropped
            raise pg_error(exc, "writing to the index") from None

    # ---- vectors: they live in the chunks table --------------------------------------------
    def vectors(self) -> _PgVectors:
        return _PgVectors(self)

    def note_applied(self, gen: int) -> None:
        """Nothing to catch up: the vectors were committed with their chunks."""

    def save_vectors(self, *, ann: Any = None) -> None:
        """Nothing to save: PostgreSQL persisted every committed vector."""

    @_store_errors("writing to the index")
    def rebuild_vectors(self) -> None:
        self.db.execute(f'REINDEX INDEX "{self.schema}".chunks_embedding')

    # ---- documents and chunks ----------------------------------------------------------
    @_store_errors("reading the index")
    def documents(self) -> dict[str, tuple[str, int, int]]:
        rows = self.db.execute(f'SELECT path, sha256, size, mtime_ns FROM "{self.schema}".documents')
        return {r[0]: (r[1], int(r[2]), int(r[3])) for r in rows}

    def _lock(self, path: str) -> None:
        self.db.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"{self.schema}:{path}",))

    @_store_errors("writing to the index")
    def delete_document(self, path: str) -> list[int]:
        self._lock(path)
        ids = [
            int(r[0])
            for r in self.db.execute(
                f'SELECT c.id FROM "{self.schema}".chunks c JOIN "{self.schema}".documents d ON d.id = c.doc_id '
                "WHERE d.path = %s",
                (path,),
            )
        ]
        self.db.execute(f'DELETE FROM "{self.schema}".documents WHERE path = %s', (path,))
        return ids

    @_store_errors("writing to the index")
    def insert_document(self, *, path: str, sha256: str, size: int, mtime_ns: int, gen: int) -> int:
        self._lock(path)
        self.db.execute(f'DELETE FROM "{self.schema}".documents WHERE path = %s', (path,))  # a concurrent writer's copy
        row = self.db.execute(
            f'INSERT INTO "{self.schema}".documents(path, sha256, size, mtime_ns, n_chunks, gen) '
            "VALUES (%s, %s, %s, %s, 0, %s) RETURNING id",
            (path, sha256, size, mtime_ns, gen),
        ).fetchone()
        return int(row[0])

    @_store_errors("writing to the index")
    def insert_chunks(self, doc_id: int, first_ord: int, chunks: list[Any], vectors: np.ndarray, gen: int) -> list[int]:
        rows = chunk_rows(doc_id, first_ord, chunks, vectors, gen, lambda v: v)
        ids: list[int] = []
        if rows:
            with self.db.cursor() as cursor:  # one pipelined batch, not a round trip per chunk
                cursor.executemany(
                    f'INSERT INTO "{self.schema}".chunks'
                    "(doc_id, ord, text, heading, page, char_start, char_end, n_tokens, embedding, gen) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    rows,
                    returning=True,
                )
                while True:
                    ids.append(int(cursor.fetchone()[0]))
                    if not cursor.nextset():
                        break
        self.db.execute(
            f'UPDATE "{self.schema}".documents SET n_chunks = n_chunks + %s WHERE id = %s', (len(ids), doc_id)
        )
        return ids

    @_store_errors("reading the index")
    def document_chunks(self, path: str) -> tuple[list[Any], np.ndarray]:
        """A document's chunks in order (as ``Chunk``s) and their vectors: what a copy needs."""
        from dca.knowledge.chunking import Chunk

        rows = self.db.execute(
            f'SELECT c.text, c.char_start, c.char_end, c.heading, c.page, c.n_tokens, c.embedding FROM "{self.schema}".chunks c '
            f'JOIN "{self.schema}".documents d ON d.id = c.doc_id WHERE d.path = %s ORDER BY c.ord',
            (path,),
        ).fetchall()
        chunks = [Chunk(text=r[0], start=r[1], end=r[2], heading=r[3], page=r[4], n_tokens=r[5]) for r in rows]
        vectors = np.array([_as_array(r[6]) for r in rows], dtype=np.float32).reshape(len(rows), self.manifest.dim)
        return chunks, vectors

    @_store_errors("writing to the index")
    def drop_document(self, doc_id: int) -> None:
        self.db.execute(f'DELETE FROM "{self.schema}".documents WHERE id = %s', (doc_id,))

    @_store_errors("writing to the index")
    def set_dim(self, dim: int) -> None:
        """Record the dimension and build the HNSW index for it (pgvector indexes need a fixed one).

        Its own transaction, never inside a group of documents: the ALTER TABLE locks the chunks
        against readers, so it must commit at once. Another process may have set it meanwhile."""
        with self.db.transaction():
            _setup_lock(self.db, self.schema)
            current = _column_dim(self.db, self.schema)
            if current and current != dim:
                raise KnowledgeIndexError(
                    f"index {self.name!r} holds {current}-dimensional vectors, the embedder makes {dim}; "
                    "use the index's own embedder or another --index"
                )
            if not current:
                self.db.execute(f'UPDATE "{self.schema}".meta SET value = %s WHERE key = %s', (str(dim), "dim"))
                self.db.execute(f'ALTER TABLE "{self.schema}".chunks ALTER COLUMN embedding TYPE vector({int(dim)})')
                self.db.execute(
                    f'CREATE INDEX IF NOT EXISTS chunks_embedding ON "{self.schema}".chunks '
                    "USING hnsw (embedding vector_cosine_ops)"
                )
        self.manifest.dim = dim

    @_store_errors("reading the index")
    def keyword_ranking(self, terms: list[str], n: int) -> list[tuple[int, float]]:
        """(chunk id, score) of the ``n`` best full-text matches of any of ``terms``, best first.

        Scored as BM25 scores: each word's match (``ts_rank`` of the word alone, which grows
        with its count and falls with the chunk's length) weighted by its inverse document
        frequency among the index's chunks, so a rare word counts for more than a common one.
        PostgreSQL's own ``ts_rank_cd`` has no such weight: over OR-ed words it ranked chunks
        that repeat common words first (SQuAD 2.0 recall@5 of keyword search 0.79 against
        FTS5's BM25 0.95, lab/NOTEBOOK.md)."""
        # at most _MAX_WORDS words: each is a column of the query and a rank per matching chunk
        words = [t for t in dict.fromkeys(terms) if re.fullmatch(r"\w+", t)][:_MAX_WORDS]
        if not words:
            return []
        table = f'"{self.schema}".chunks'
        query = "to_tsquery('english', %s)"
        # one pass over the matching chunks: each word's rank (0 where it is absent), from which
        # both its document frequency and the score follow
        ranks = ", ".join(f"ts_rank(tsv, {query}, 1) AS r{i}" for i in range(len(words)))
        frequencies = ", ".join(f"count(*) FILTER (WHERE r{i} > 1e-9) AS d{i}" for i in range(len(words)))
        score = " + ".join(f"ln(1 + (t.n - d.d{i} + 0.5) / (d.d{i} + 0.5)) * m.r{i}" for i in range(len(words)))
        rows = self.db.execute(
            f"WITH m AS MATERIALIZED (SELECT id, {ranks} FROM {table} WHERE tsv @@ {query}), "
            f"d AS (SELECT {frequencies} FROM m), t AS (SELECT count(*)::float8 AS n FROM {table}) "
            f"SELECT m.id, {score} AS s FROM m, d, t ORDER BY s DESC, m.id LIMIT %s",
            (*words, " | ".join(words), n),
        )
        return [(int(r[0]), float(r[1])) for r in rows]

    @_store_errors("reading the index")
    def get_chunks(self, ids: list[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        rows = self.db.execute(
            f'SELECT c.id, d.path, c.text, c.heading, c.page, c.char_start, c.char_end FROM "{self.schema}".chunks c '
            f'JOIN "{self.schema}".documents d ON d.id = c.doc_id WHERE c.id = ANY(%s)',
            ([int(i) for i in ids],),
        )
        return {
            int(r[0]): StoredChunk(
                id=int(r[0]), path=r[1], text=r[2], heading=r[3], page=r[4], char_start=r[5], char_end=r[6]
            )
            for r in rows
        }

    # ---- self-check --------------------------------------------------------------------
    @_store_errors("reading the index")
    def check(self, *, deep: bool = False) -> StoreCheck:
        result = StoreCheck()
        result.documents = int(self.db.execute(f'SELECT COUNT(*) FROM "{self.schema}".documents').fetchone()[0])
        result.chunks = int(self.db.execute(f'SELECT COUNT(*) FROM "{self.schema}".chunks').fetchone()[0])
        result.vectors = int(self.db.execute(f'SELECT COUNT(embedding) FROM "{self.schema}".chunks').fetchone()[0])
        if self.manifest.dim and result.vectors != result.chunks:
            result.problems.append(f"{result.chunks - result.vectors} chunks have no vector")
        orphans = self.db.execute(
            f'SELECT COUNT(*) FROM "{self.schema}".documents d WHERE n_chunks <> '
            f'(SELECT COUNT(*) FROM "{self.schema}".chunks c WHERE c.doc_id = d.id)'
        ).fetchone()[0]
        if orphans:
            result.problems.append(f"{orphans} documents record another number of chunks than they have")
        return result

    def repair(self) -> None:
        self.rebuild_vectors()

    @_store_errors("reading the index")
    def stats(self) -> dict[str, Any]:
        # two counts, not a full check: stats is asked for on every `ask` (the k bound) and `serve`
        documents, chunks = self.db.execute(
            f'SELECT (SELECT COUNT(*) FROM "{self.schema}".documents), (SELECT COUNT(*) FROM "{self.schema}".chunks)'
        ).fetchone()
        size = self.db.execute(
            "SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (self.schema,),
        ).fetchone()[0]
        return {
            "name": self.name,
            "documents": int(documents),
            "chunks": int(chunks),
            "embedder": self.manifest.embedder,
            "dim": self.manifest.dim,
            "chunking": self.manifest.chunking,
            "vectors": "hnsw",
            "ann": {},
            "generation": self.generation,
            "bytes_on_disk": int(size),
        }


def _as_array(value: Any) -> np.ndarray:
    """A pgvector value as float32 (the adapter gives a ``Vector`` or an array, by version)."""
    value = value.to_numpy() if hasattr(value, "to_numpy") else value
    return np.asarray(value, dtype=np.float32)


class _PgVectors:
    """The vector interface ingest and retrieval use, over the chunks table."""

    def __init__(self, index: PgIndex) -> None:
        self.index = index
        self.kind = "hnsw"

    @property
    @_store_errors("reading the index")
    def ntotal(self) -> int:
        return int(self.index.db.execute(f'SELECT COUNT(embedding) FROM "{self.index.schema}".chunks').fetchone()[0])

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Nothing to do: the vectors were inserted with their chunks."""

    def remove(self, ids: np.ndarray) -> None:
        """Nothing to do: the vectors went with their chunks."""

    @_store_errors("reading the index")
    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        self.index.db.execute(f"SET hnsw.ef_search = {max(40, int(k))}")  # the HNSW search returns at most this many
        for row, query in enumerate(np.asarray(queries, dtype=np.float32)):
            found = self.index.db.execute(
                f'SELECT id, 1 - (embedding <=> %s) FROM "{self.index.schema}".chunks '
                "ORDER BY embedding <=> %s LIMIT %s",
                (query, query, k),
            ).fetchall()
            for i, (chunk_id, score) in enumerate(found):
                ids[row, i], scores[row, i] = int(chunk_id), float(score)
        return scores, ids

    @_store_errors("reading the index")
    def ids(self) -> np.ndarray:
        rows = self.index.db.execute(f'SELECT id FROM "{self.index.schema}".chunks ORDER BY id').fetchall()
        return np.array([r[0] for r in rows], dtype=np.int64)
