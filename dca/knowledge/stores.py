"""Which store holds the indexes: the embedded one (FAISS + SQLite under DCA_HOME/indexes, the
default) or PostgreSQL + pgvector, chosen with a ``postgresql://`` URL: ``--store URL``, the
``DCA_STORE`` environment variable or ``store = "..."`` in settings.toml. The URL carries no
password (libpq's ``PGPASSWORD`` or ``~/.pgpass`` do): one in its user part or in a query
keyword (``?password=``, ``?sslpassword=``) is refused, and ``redact_url`` leaves secrets out
of every URL dca shows all the same.

Both stores have the same methods (dca/knowledge/store.py and dca/knowledge/pgstore.py), so
everything above this module opens an index through ``open_store`` and never asks which.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

from dca.config import Paths
from dca.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np

    from dca.knowledge.store import Manifest, StoreCheck, StoredChunk


class Store(Protocol):
    """An open index, in either store: what ``open_store`` and ``create_store`` return."""

    name: str
    manifest: Manifest

    def close(self) -> None: ...
    def writer(self) -> AbstractContextManager[Any]: ...  # held by a writer: one at a time
    @property
    def generation(self) -> int: ...
    def transaction(self) -> AbstractContextManager[int]: ...  # yields the generation it writes
    @property
    def vectors(self) -> Any: ...  # the vector search (FAISS, or pgvector's)
    def note_applied(self, gen: int) -> None: ...
    def save_vectors(self, *, ann: Any = None) -> None: ...
    def rebuild_vectors(self) -> None: ...
    def documents(self) -> dict[str, tuple[str, int, int]]: ...
    def delete_document(self, path: str) -> list[int]: ...
    def insert_document(self, *, path: str, sha256: str, size: int, mtime_ns: int, gen: int) -> int: ...
    def insert_chunks(
        self, doc_id: int, first_ord: int, chunks: list[Any], vectors: np.ndarray, gen: int
    ) -> list[int]: ...
    def document_chunks(self, path: str) -> tuple[list[Any], np.ndarray]: ...
    def drop_document(self, doc_id: int) -> None: ...
    def set_dim(self, dim: int) -> None: ...
    def keyword_ranking(self, terms: list[str], n: int) -> list[tuple[int, float]]: ...
    def get_chunks(self, ids: list[int]) -> dict[int, StoredChunk]: ...
    def check(self, *, deep: bool = False) -> StoreCheck: ...
    def repair(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...


_CONFIGURED = object()  # a store argument not given: the configured store
SECRET_KEYWORDS = ("password", "sslpassword")  # libpq connection keywords whose values are secrets
_SECRET_IN_TEXT = re.compile(r"(?i)\b(" + "|".join(SECRET_KEYWORDS) + r")(\s*=\s*)('[^']*'|[^\s&'\"]*)")


def redact_url(text: str) -> str:
    """``text`` (a URL, or a message quoting one) with every secret replaced by ``***``: the
    password of a URL's user part and the value of any libpq keyword that carries one.

    >>> redact_url("postgresql://me:hunter2@db/x?host=%2Ftmp&password=S3cret")
    'postgresql://me:***@db/x?host=%2Ftmp&password=***'
    >>> redact_url("postgresql://me@/x?sslpassword='a b'")
    'postgresql://me@/x?sslpassword=***'
    """
    text = re.sub(r"(://[^/@:\s]*):[^@/\s]*@", r"\1:***@", text)
    return _SECRET_IN_TEXT.sub(lambda m: m.group(1) + m.group(2) + "***", text)


def error_line(exc: BaseException) -> str:
    """The first line of a database or libpq error, secrets redacted (its type where it says nothing)."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return redact_url(lines[0][:200] if lines else type(exc).__name__)


def check_store_url(url: str, where: str) -> str:
    """``url`` if it names a PostgreSQL store that libpq can read, without a password in it, else
    one ConfigError line that shows no secret and says where the URL came from."""
    from urllib.parse import parse_qsl, urlsplit

    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"the store ({where}) must be a postgresql:// URL, got {redact_url(url.split('@')[-1])!r}")
    try:
        parts = urlsplit(url)
        password = parts.password
        keywords = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    except ValueError:
        raise ConfigError(f"the store URL ({where}) cannot be parsed; check it") from None
    secret = sorted(keywords & set(SECRET_KEYWORDS))
    if password or secret:
        part = f"its {secret[0]}= option" if secret else "its user part"
        raise ConfigError(
            f"the store URL ({where}) holds a password in {part}; remove it and put it in PGPASSWORD or ~/.pgpass"
        )
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # opening the store says what to install
        return url
    import psycopg

    try:
        conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise ConfigError(
            f"the store URL ({where}) cannot be used ({error_line(exc)}); check its spelling and options"
        ) from None
    return url


def store_url(paths: Paths | None = None) -> str | None:
    """The PostgreSQL URL of the configured store, or None for the embedded store."""
    from dca.settings import load_settings

    chosen = load_settings(paths)
    url = str(chosen["store"] or "").strip()
    return check_store_url(url, chosen.sources["store"]) if url else None


def _url(paths: Paths, store: Any) -> str | None:
    return store_url(paths) if store is _CONFIGURED else store


def open_store(paths: Paths, name: str, *, store: Any = _CONFIGURED) -> Store:
    """Open index ``name`` of the configured store, or of ``store`` (a URL, or None: the embedded one)."""
    url = _url(paths, store)
    if url:
        from dca.knowledge.pgstore import PgIndex

        return PgIndex.open(url, name)
    from dca.knowledge.store import KnowledgeIndex

    return KnowledgeIndex.open(paths, name)


def create_store(
    paths: Paths, name: str, *, embedder: str, dim: int, chunking: dict[str, int], store: Any = _CONFIGURED
) -> Store:
    url = _url(paths, store)
    if url:
        from dca.knowledge.pgstore import PgIndex

        return PgIndex.create(url, name, embedder=embedder, dim=dim, chunking=chunking)
    from dca.knowledge.store import KnowledgeIndex

    return KnowledgeIndex.create(paths, name, embedder=embedder, dim=dim, chunking=chunking)


def index_names(paths: Paths, *, hide_eval: bool = False, store: Any = _CONFIGURED) -> list[str]:
    """The indexes of the store (``hide_eval``: without those `dca eval` built)."""
    url = _url(paths, store)
    if url:
        from dca.knowledge.pgstore import list_pg_indexes

        return list_pg_indexes(url, hide_eval=hide_eval)
    from dca.knowledge.store import list_indexes

    return list_indexes(paths, hide_eval=hide_eval)


def where(paths: Paths) -> str:
    """Where the indexes are, for messages (never the password)."""
    url = store_url(paths)
    if url:
        rest = url.split("://", 1)[1]
        return "the PostgreSQL store at " + redact_url(rest.rsplit("@", 1)[-1])
    return str(paths.indexes)


def require_index(paths: Paths, name: str) -> None:
    """IndexNotFoundError, naming the existing indexes, unless an index ``name`` exists."""
    from dca.errors import IndexNotFoundError
    from dca.knowledge.store import validate_index_name

    validate_index_name(name)
    names = index_names(paths)
    if name not in names:
        raise IndexNotFoundError(f"no index named {name!r} (existing: {', '.join(names) or 'none'})")


def delete_index(paths: Paths, name: str) -> None:
    url = store_url(paths)
    if url:
        from dca.knowledge.pgstore import PgIndex

        index = PgIndex.open(url, name)
        try:
            index.drop()
        finally:
            index.close()
        return
    from dca.knowledge.store import delete_index as delete_embedded

    delete_embedded(paths, name)


def mark_eval_index(paths: Paths, name: str) -> None:
    """Mark an index as built by `dca eval` (kept out of `dca index list`)."""
    url = store_url(paths)
    if url:
        from dca.knowledge.pgstore import PgIndex

        index = PgIndex.open(url, name)
        try:
            index.mark_eval()
        finally:
            index.close()
        return
    from dca.knowledge.store import mark_eval_index as mark_embedded

    mark_embedded(paths, name)


def copy_index(
    paths: Paths, name: str, *, source: str | None, target: str | None, as_name: str | None = None
) -> dict[str, int]:
    """Copy index ``name`` from one store to another (None: the embedded one) without embedding
    anything again: documents, chunks and vectors as they are. One transaction per document;
    documents already in the target with the same content are skipped, so a killed copy resumes."""
    if source == target and (as_name or name) == name:
        raise ConfigError("the copy's source and target are the same index; give another --to or --as")
    src = open_store(paths, name, store=source)
    dest_name = as_name or name
    try:
        if dest_name in index_names(paths, store=target):
            dest = open_store(paths, dest_name, store=target)
            if (dest.manifest.embedder, dest.manifest.dim) != (src.manifest.embedder, src.manifest.dim):
                dest.close()
                raise ConfigError(
                    f"index {dest_name!r} in the target was made with {dest.manifest.embedder} "
                    f"({dest.manifest.dim} dimensions), the source with {src.manifest.embedder}; give another --as"
                )
        else:
            dest = create_store(
                paths,
                dest_name,
                embedder=src.manifest.embedder,
                dim=src.manifest.dim,
                chunking=src.manifest.chunking,
                store=target,
            )
        counts = {"documents": 0, "copied": 0, "skipped": 0, "chunks": 0}
        try:
            with dest.writer():
                there = dest.documents()
                for path, (sha256, size, mtime_ns) in sorted(src.documents().items()):
                    counts["documents"] += 1
                    if there.get(path, ("",))[0] == sha256:
                        counts["skipped"] += 1
                        continue
                    chunks, vectors = src.document_chunks(path)
                    with dest.transaction() as gen:
                        dest.delete_document(path)
                        doc_id = dest.insert_document(path=path, sha256=sha256, size=size, mtime_ns=mtime_ns, gen=gen)
                        dest.insert_chunks(doc_id, 0, chunks, vectors, gen)
                    counts["copied"] += 1
                    counts["chunks"] += len(chunks)
                dest.save_vectors()
        finally:
            dest.close()
        return counts
    finally:
        src.close()
