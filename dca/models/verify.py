"""Is a model present and does it match its pinned hash?

Hashing a 1 GB file takes seconds, so a successful check leaves a stamp
(``models/.verified/NAME.json``: hash, size, mtime) and later checks trust the stamp
while size and mtime are unchanged. ``deep=True`` always rehashes.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dca.config import Paths
from dca.files import atomic_write_json, sha256_file, tree_sha256
from dca.models.catalog import ModelEntry


@dataclass(frozen=True, kw_only=True)
class ModelStatus:
    """The state of one catalog model on this machine."""

    name: str
    role: str
    path: Path
    present: bool  # the file or folder exists
    verified: bool  # its size and sha256 match the catalog
    size: int  # bytes on disk (0 when absent)
    detail: str  # what is wrong, or "" when verified

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "role": self.role,
            "path": str(self.path),
            "present": self.present,
            "verified": self.verified,
            "size": self.size,
            "detail": self.detail,
        }


def _fingerprint(path: Path) -> tuple[int, int]:
    """(total bytes, newest mtime_ns) of a file or folder: cheap change detection."""
    if path.is_file():
        stat = path.stat()
        return stat.st_size, stat.st_mtime_ns
    files = [p.stat() for p in path.rglob("*") if p.is_file()]
    return sum(s.st_size for s in files), max((s.st_mtime_ns for s in files), default=0)


def _stamp_path(entry: ModelEntry, paths: Paths) -> Path:
    return paths.models / ".verified" / f"{entry.name}.json"


def write_stamp(entry: ModelEntry, paths: Paths, sha256: str) -> None:
    """Record that the model on disk hashed to ``sha256`` as it is now."""
    size, mtime_ns = _fingerprint(entry.path(paths))
    atomic_write_json(_stamp_path(entry, paths), {"sha256": sha256, "size": size, "mtime_ns": mtime_ns})


def _replace_hint(entry: ModelEntry) -> str:
    if entry.source.kind == "local":
        return (
            f"the file changed since it was added: `dca models rm {entry.name}`, then "
            f"`dca models add PATH --name {entry.name}` if the change is yours"
        )
    if entry.source.kind == "bundled":
        return f"it ships with dca: restore models/{entry.file} from git, or reinstall dca"
    return f"run `dca pull {entry.name}` to replace it"


def _clear_stamp(entry: ModelEntry, paths: Paths) -> None:
    with contextlib.suppress(OSError):  # a read-only models folder: the check still reports the mismatch
        _stamp_path(entry, paths).unlink(missing_ok=True)


def _read_stamp(entry: ModelEntry, paths: Paths) -> dict[str, object]:
    try:
        return dict(json.loads(_stamp_path(entry, paths).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return {}


def hash_model(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """sha256 of a model file, or the tree hash of a model folder."""
    return sha256_file(path, progress) if path.is_file() else tree_sha256(path)[0]


def check_model(
    entry: ModelEntry, paths: Paths, *, deep: bool = False, progress: Callable[[int], None] | None = None
) -> ModelStatus:
    """Check presence, size and hash of ``entry`` on disk (see module docstring for the stamp)."""
    path = entry.path(paths)

    def status(*, present: bool, verified: bool, size: int = 0, detail: str = "") -> ModelStatus:
        return ModelStatus(
            name=entry.name, role=entry.role, path=path, present=present, verified=verified, size=size, detail=detail
        )

    if not path.exists():
        how = {
            "local": f"`dca models rm {entry.name}`, then `dca models add PATH --name {entry.name}`",
            "bundled": f"it ships with dca: restore models/{entry.file} from git, or reinstall dca",
        }.get(entry.source.kind, f"run `dca pull {entry.name}`")
        return status(present=False, verified=False, detail=f"not on disk; {how}")
    size, mtime_ns = _fingerprint(path)
    if entry.size and size != entry.size:
        _clear_stamp(entry, paths)
        return status(
            present=True,
            verified=False,
            size=size,
            detail=f"size is {size:,} bytes, expected {entry.size:,}; {_replace_hint(entry)}",
        )
    stamp = _read_stamp(entry, paths)
    expected = entry.sha256 or str(stamp.get("sha256", ""))
    if not deep and stamp.get("size") == size and stamp.get("mtime_ns") == mtime_ns and stamp.get("sha256") == expected:
        return status(present=True, verified=True, size=size)
    actual = hash_model(path, progress)
    if expected and actual != expected:
        _clear_stamp(entry, paths)  # a mismatch, once found, is not forgotten by the next cheap check
        return status(
            present=True,
            verified=False,
            size=size,
            detail=f"sha256 is {actual[:12]}…, expected {expected[:12]}…; {_replace_hint(entry)}",
        )
    write_stamp(entry, paths, actual)
    return status(present=True, verified=True, size=size)
