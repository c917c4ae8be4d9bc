"""The vector index behind a knowledge store: FAISS, exact while small, IVF above a threshold.

``VectorIndex`` is the small interface the store uses; a distributed vector database
(Milvus, Qdrant, pgvector) could implement it later without touching ingestion or
retrieval. IVF rather than HNSW because IVF can delete ids in place, which incremental
updates (changed and removed documents) need; see docs/knowledge.md for the measurements.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from dca.errors import ConfigError
from dca.files import atomic_write_with

log = logging.getLogger(__name__)
_ALL_THREADS = os.cpu_count() or 1


class VectorIndex(Protocol):
    """Inner-product search over unit vectors keyed by int64 chunk ids."""

    @property
    def ntotal(self) -> int: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, ids) arrays of shape (n_queries, k); missing results have id -1."""
        ...

    def ids(self) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class AnnConfig:
    """When and how the exact index becomes an approximate one."""

    ann_threshold: int = 100_000  # above this many vectors, use IVF instead of exact search
    target_recall: float = 0.95  # nprobe is raised until recall@10 against exact reaches this
    n_recall_queries: int = 200  # queries used to measure that recall

    def __post_init__(self) -> None:
        if self.ann_threshold < 1000:
            raise ConfigError(f"ann_threshold must be at least 1000, got {self.ann_threshold}")
        if not 0 < self.target_recall <= 1:
            raise ConfigError(f"target_recall must be in (0, 1], got {self.target_recall}")


class FaissIndex:
    """A FAISS index (IndexIDMap2 over flat, or IndexIVFFlat) with the VectorIndex interface."""

    def __init__(self, index: object) -> None:
        self._index = index

    @classmethod
    def exact(cls, dim: int) -> FaissIndex:
        import faiss

        return cls(faiss.IndexIDMap2(faiss.IndexFlatIP(dim)))

    @classmethod
    def load(cls, path: Path) -> FaissIndex:
        import faiss

        return cls(faiss.read_index(str(path)))

    @property
    def kind(self) -> str:
        import faiss

        return "ivf" if isinstance(self._index, faiss.IndexIVF) else "exact"

    @property
    def nprobe(self) -> int:
        return int(getattr(self._index, "nprobe", 0))

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)  # type: ignore[attr-defined]

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        if len(ids):
            self._index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))  # type: ignore[attr-defined]

    def remove(self, ids: np.ndarray) -> None:
        if len(ids):
            import faiss

            self._index.remove_ids(faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))  # type: ignore[attr-defined]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        # One or a few queries run on one thread: FAISS's idle OpenMP workers would keep spinning
        # on the cores the language model decodes on next (see bench_ask_overhead.py).
        faiss.omp_set_num_threads(1 if len(queries) <= 4 else _ALL_THREADS)
        scores, ids = self._index.search(np.ascontiguousarray(queries, dtype=np.float32), k)  # type: ignore[attr-defined]
        return scores, ids

    def ids(self) -> np.ndarray:
        import faiss

        if isinstance(self._index, faiss.IndexIVF):
            invlists = self._index.invlists
            assert invlists is not None  # an IVF index always has its lists
            parts = [
                faiss.rev_swig_ptr(invlists.get_ids(i), invlists.list_size(i)).copy()
                for i in range(invlists.nlist)
                if invlists.list_size(i)
            ]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)  # type: ignore[attr-defined]

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``ids`` (rows in order), to compare them with SQLite's."""
        import faiss

        if isinstance(self._index, faiss.IndexIVF):
            self._index.set_direct_map_type(faiss.DirectMap.Hashtable)  # type: ignore[attr-defined]  # by chunk id
        return np.stack([self._index.reconstruct(int(i)) for i in ids]) if len(ids) else np.zeros((0, 0))  # type: ignore[attr-defined]

    def save(self, path: Path) -> None:
        """Write atomically: a reader opens either the old file or the new one."""
        import faiss

        atomic_write_with(path, lambda tmp: faiss.write_index(self._index, str(tmp)))  # type: ignore[call-overload]


def build_ivf(ids: np.ndarray, vectors: np.ndarray, config: AnnConfig, seed: int = 0) -> tuple[FaissIndex, float]:
    """Train an IVF index on ``vectors`` and pick the smallest nprobe reaching the target recall.

    Returns the index and its measured recall@10 against exact search.
    """
    import faiss

    n, dim = vectors.shape
    faiss.omp_set_num_threads(_ALL_THREADS)
    nlist = int(min(65536, max(16, 4 * math.sqrt(n))))
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(seed)
    sample = vectors[rng.choice(n, size=min(n, 40 * nlist), replace=False)]
    index.train(np.ascontiguousarray(sample, dtype=np.float32))
    index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids.astype(np.int64))
    wrapped = FaissIndex(index)
    recall = tune_nprobe(wrapped, ids, vectors, config, rng)
    return wrapped, recall


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row of ``truth`` ids that appear in the same row of ``found``."""
    hits = [len(set(f.tolist()) & set(t.tolist())) / max(1, len(t)) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def tune_nprobe(
    index: FaissIndex, ids: np.ndarray, vectors: np.ndarray, config: AnnConfig, rng: np.random.Generator
) -> float:
    """Raise nprobe (powers of two) until recall@10 against exact search reaches the target."""
    import faiss

    n, dim = vectors.shape
    picks = rng.choice(n, size=min(n, config.n_recall_queries), replace=False)
    # Queries near (not at) stored vectors, like real questions near their passages.
    queries = vectors[picks] + rng.normal(scale=0.05, size=(len(picks), dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    exact = faiss.IndexFlatIP(dim)
    exact.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, truth_rows = exact.search(queries, 10)
    truth = ids[truth_rows]
    ivf = index._index
    nlist = ivf.nlist  # type: ignore[attr-defined]

    def measure(nprobe: int) -> float:
        ivf.nprobe = nprobe  # type: ignore[attr-defined]
        return recall_at_k(index.search(queries, 10)[1], truth)

    nprobe = 1
    while nprobe < nlist and measure(nprobe) < config.target_recall:
        nprobe *= 2
    # One more doubling as a margin: tuning queries sit near stored vectors, real ones may not.
    nprobe = min(nlist, nprobe * 2)
    recall = measure(nprobe)
    log.info("IVF nlist=%d nprobe=%d recall@10=%.3f", nlist, ivf.nprobe, recall)  # type: ignore[attr-defined]
    return recall
