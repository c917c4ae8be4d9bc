"""``dca index verify``: is the index consistent with itself and with the files on disk?

The store checks itself (``check``: its tables, its vectors against its source of truth) and
repairs what it can rebuild (``repair``); whether each indexed file is still what was indexed
is the same question for every store, asked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dca.files import sha256_file


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
    vectors_checked: int = 0  # stored vectors compared with the source of truth (a sample; all with --deep)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "ok": self.ok}


def verify_index(index: Any, *, repair: bool = False, deep: bool = False) -> VerifyReport:
    """The store's own check (repaired on request), then document hashes against the files."""
    report = VerifyReport(index=index.name)
    check = index.check(deep=deep)
    report.documents, report.chunks, report.vectors = check.documents, check.chunks, check.vectors
    report.vectors_checked, report.problems, report.sqlite_damaged = (
        check.vectors_checked,
        check.problems,
        check.damaged,
    )
    if check.damaged:
        return report
    if report.problems and repair:
        index.repair()
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
