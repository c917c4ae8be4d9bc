"""Crash-safe file writes: write a temp file beside the target, fsync, then rename."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_BLOCK = 1 << 20


def atomic_write_with(path: Path, write: Callable[[Path], object]) -> None:
    """Replace ``path`` with what ``write(temp_path)`` writes, so a reader sees either the old
    or the new file: a temp file beside it, flushed to disk, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a reader sees either the old or the new file."""
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


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


def config_changes(
    path: Path, new: dict[str, Any], *, ignore: tuple[str, ...] = (), defaults: dict[str, Any] | None = None
) -> list[str]:
    """``"field: old -> new"`` for each field of ``new`` that differs from the config recorded in
    ``path`` (none when nothing is recorded yet). ``defaults`` fill keys an older file lacks."""
    if not path.is_file():
        return []
    old = {**(defaults or {}), **json.loads(path.read_text(encoding="utf-8"))}
    new = json.loads(json.dumps(new))  # tuples as lists, as they are stored
    return [f"{k}: {old.get(k)!r} -> {v!r}" for k, v in new.items() if k not in ignore and old.get(k) != v]


def complete_jsonl_lines(path: Path) -> list[str]:
    """The lines of an append-only JSONL file up to the first one that does not parse (a line
    cut short by a kill, and anything after it); [] when the file does not exist."""
    lines: list[str] = []
    if path.is_file():
        # split on "\n" only: str.splitlines also breaks at U+2028 and friends, which
        # json.dumps(ensure_ascii=False) leaves inside strings (GSM8K questions hold some)
        for line in path.read_text(encoding="utf-8").split("\n"):
            if not line:
                continue
            try:
                json.loads(line)
            except json.JSONDecodeError:
                break
            lines.append(line)
    return lines


def jsonl_objects(
    path: Path, text: str, error: type[Exception], hint: str = ""
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-empty line of the JSONL ``text`` read from ``path``; a
    line that is not a JSON object raises ``error`` naming it, with ``hint`` after (what makes
    the file). The one JSONL reader: datasets, traces, samples and pairs all come through here.

    >>> list(jsonl_objects(Path("f.jsonl"), '{"a": 1}\\n\\n{"b": 2}\\n', ValueError))
    [(1, {'a': 1}), (3, {'b': 2})]
    """
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path} line {number} is not JSON ({exc.msg}){hint}") from None
        if not isinstance(row, dict):
            raise error(f"{path} line {number} is not a JSON object (got {type(row).__name__}){hint}")
        yield number, row
