"""``dca index verify``: is the index consistent with itself and with the files on disk?"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dca.errors import KnowledgeIndexError
from dca.files import sha256_file
from dca.knowledge.store import KnowledgeIndex


@dataclass(kw_only=True)
class VerifyReport:
    """Problems found; an empty list means the index is sound and up to date."""

    index: str
    documents: int = 0
    chunks: int = 0
    vectors: int = 0
    problems: list[str] = field(default_factory=list)  # the index itself is damaged
    stale: list[str] = field(default_factory=list)  # files changed or gone since they were indexed
    repaired: bool = False

    sqlite_damaged: bool = False  # then only deleting the index and adding the files again helps
    vectors_checked: int = 0  # FAISS vectors compared with SQLite's (a sample; all with --deep)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "ok": self.ok}


SAMPLE = 64  # vectors compared with SQLite's on a plain verify; --deep compares all of them


def verify_index(index: KnowledgeIndex, *, repair: bool = False, deep: bool = False) -> VerifyReport:
    """Check SQLite integrity, FAISS count and ids against SQLite, and document hashes against files."""
    report = VerifyReport(index=index.name)
    try:
        return _verify(index, report, repair, deep)
    except sqlite3.DatabaseError as exc:  # pages too damaged for SQLite to even check them
        return _sqlite_damaged(report, str(exc))


def _sqlite_damaged(report: VerifyReport, detail: str) -> VerifyReport:
    report.problems.append(
        f"the SQLite database is damaged ({detail}); delete the index (`dca index delete -i {report.index}`) "
        "and add the files again"
    )
    report.sqlite_damaged = True
    return report


def _verify(index: KnowledgeIndex, report: VerifyReport, repair: bool, deep: bool) -> VerifyReport:
    integrity = index.db.execute("PRAGMA integrity_check").fetchone()[0]
    if integrity != "ok":
        return _sqlite_damaged(report, integrity)
    chunk_ids = np.array([r[0] for r in index.db.execute("SELECT id FROM chunks")], dtype=np.int64)
    report.chunks = len(chunk_ids)
    report.documents = index.db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
    fts = index.db.execute("SELECT COUNT(*) FROM chunks_fts").fetchone()[0]
    if fts != report.chunks:
        report.problems.append(f"the BM25 table has {fts} rows for {report.chunks} chunks")
    if index.manifest.dim:
        try:
            vectors = index.vectors()
            faiss_ids = vectors.ids()
            report.vectors = vectors.ntotal
            if vectors.ntotal != report.chunks:
                report.problems.append(f"FAISS holds {vectors.ntotal} vectors for {report.chunks} chunks")
            elif not np.array_equal(np.sort(faiss_ids), np.sort(chunk_ids)):
                report.problems.append("FAISS ids differ from the chunk ids in SQLite")
            else:
                _compare_vectors(index, vectors, chunk_ids, report, deep)
        except KnowledgeIndexError as exc:
            report.problems.append(str(exc))
    if report.problems and repair:
        index.rebuild_vectors()
        report.problems = []
        report.vectors = report.chunks
        report.repaired = True
    for path, (sha256, size, mtime_ns) in index.documents().items():
        file = Path(path)
        try:
            stat = file.stat()
        except OSError:
            report.stale.append(f"{path}: gone from disk")
            continue
        if (stat.st_size, stat.st_mtime_ns) != (size, mtime_ns) and sha256_file(file) != sha256:
            report.stale.append(f"{path}: changed since it was indexed")
    return report


def _compare_vectors(
    index: KnowledgeIndex, vectors: object, chunk_ids: np.ndarray, report: VerifyReport, deep: bool
) -> None:
    """FAISS's stored vectors against SQLite's (the truth): all of them, or an even sample."""
    ids = np.sort(chunk_ids)
    if not deep and len(ids) > SAMPLE:
        ids = ids[np.linspace(0, len(ids) - 1, SAMPLE).astype(np.int64)]
    placeholders = ",".join("?" * len(ids))
    rows = dict(index.db.execute(f"SELECT id, vector FROM chunks WHERE id IN ({placeholders})", [int(i) for i in ids]))
    truth = np.stack([np.frombuffer(rows[int(i)], dtype=np.float32) for i in ids]) if len(ids) else None
    if truth is None:
        return
    stored = vectors.reconstruct(ids)  # type: ignore[attr-defined]
    bad = int(np.sum(np.abs(stored - truth).max(axis=1) > 1e-4))
    report.vectors_checked = len(ids)
    if bad:
        report.problems.append(
            f"{bad} of {len(ids)} vectors checked in FAISS differ from SQLite's (the vector file is damaged)"
        )
