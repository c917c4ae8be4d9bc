"""Sections: a piece of a document's text with where it sits (offset, heading path, page),
and the one way lines become sections (split at headings, long runs cut into blocks)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

BLOCK_CHARS = 1 << 20  # sections longer than this are cut at a line break into blocks
PIECE_BYTES = 64 * 1024  # a line longer than this is read (and sectioned) in pieces of this size
Heading = tuple[int, str]  # (level, title)


@dataclass(frozen=True, kw_only=True)
class Section:
    """A piece of a document's text and where it sits."""

    text: str
    start: int  # character offset of text[0] in the document's extracted text
    heading: str = ""  # "Title > Subtitle" for structured text, "" otherwise
    page: int | None = None  # 1-based PDF page


def heading_sections(lines: Iterator[tuple[str, Heading | None]], root: str = "") -> Iterator[Section]:
    """Group lines into sections at headings; cut very long sections into blocks. ``root``
    (a page or document title) heads every section's heading path."""
    stack: list[tuple[int, str]] = [(0, root)] if root else []
    buffer: list[str] = []
    size = 0
    start = 0
    offset = 0

    def flush() -> Iterator[Section]:
        nonlocal buffer, size, start
        text = "".join(buffer)
        if text.strip():
            yield Section(text=text, start=start, heading=" > ".join(t for _, t in stack))
        buffer, size, start = [], 0, offset

    for whole, found in lines:
        if found is not None:
            yield from flush()
            level, title = found
            stack = [(lvl, t) for lvl, t in stack if lvl < level] + [(level, title)]
        # a line read whole (HTML, reStructuredText) may be megabytes long: take it in pieces
        for i in range(0, max(len(whole), 1), PIECE_BYTES):
            line = whole[i : i + PIECE_BYTES]
            buffer.append(line)
            size += len(line)
            offset += len(line)
            if size >= BLOCK_CHARS:
                yield from flush()
    yield from flush()
