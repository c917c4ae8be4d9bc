"""Which store holds the indexes: the embedded one (FAISS + SQLite under DCA_HOME/indexes, the
default) or PostgreSQL + pgvector, chosen with a ``postgresql://`` URL in ``DCA_STORE``.

Both stores have the same methods (dca/knowledge/store.py and dca/knowledge/pgstore.py), so
everything above this module opens an index through ``open_store`` and never asks which.
"""

from __future__ import annotations

import os
from typing import Any

from dca.config import Paths
from dca.errors import ConfigError


def store_url() -> str | None:
    """The PostgreSQL URL of the store, or None for the embedded store."""
    url = os.environ.get("DCA_STORE", "").strip()
    if not url:
        return None
    if not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(f"DCA_STORE must be a postgresql:// URL, got {url.split('@')[-1]!r}")
    return url


def open_store(paths: Paths, name: str) -> Any:
    url = store_url()
    if url:
        from dca.knowledge.pgstore import PgIndex

        return PgIndex.open(url, name)
    from dca.knowledge.store import KnowledgeIndex

    return KnowledgeIndex.open(paths, name)


def create_store(paths: Paths, name: str, *, embedder: str, dim: int, chunking: dict[str, int]) -> Any:
    url = store_url()
    if url:
        from dca.knowledge.pgstore import PgIndex

        return PgIndex.create(url, name, embedder=embedder, dim=dim, chunking=chunking)
    from dca.knowledge.store import KnowledgeIndex

    return KnowledgeIndex.create(paths, name, embedder=embedder, dim=dim, chunking=chunking)


def index_names(paths: Paths) -> list[str]:
    url = store_url()
    if url:
        from dca.knowledge.pgstore import list_pg_indexes

        return list_pg_indexes(url)
    from dca.knowledge.store import list_indexes

    return list_indexes(paths)
