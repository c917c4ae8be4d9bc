"""Crash-safe file writes: write a temp file beside the target, fsync, then rename."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

_BLOCK = 1 << 20


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, reporting bytes read to ``progress``."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
            if progress:
                progress(len(block))
    return digest.hexdigest()


def tree_sha256(folder: Path) -> tuple[str, int]:
    """(hash, total bytes) of a folder: sha256 over sorted "relpath<TAB>file-sha256" lines."""
    lines = []
    total = 0
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        lines.append(f"{file.relative_to(folder).as_posix()}\t{sha256_file(file)}\n")
        total += file.stat().st_size
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest(), total
