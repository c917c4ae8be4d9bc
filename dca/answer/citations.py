"""Find the [n] citation markers in an answer."""

from __future__ import annotations

import re

_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def strip_citations(text: str) -> str:
    """``text`` without its citation markers (and the space before each).

    >>> strip_citations("Paris [2]. It is big [1, 2][7].")
    'Paris. It is big.'
    """
    return _STRIP.sub("", text)


_STRIP = re.compile(r"\s*" + _MARKER.pattern)


def cited_numbers(text: str, n_sources: int) -> list[int]:
    """Source numbers cited as [1], [2, 3] or [1][4], in order of first mention, within 1..n_sources.

    >>> cited_numbers("Paris [2]. It is big [1, 2][7].", 3)
    [2, 1]
    """
    seen: list[int] = []
    for match in _MARKER.finditer(text):
        for part in re.split(r"[,;]", match.group(1)):
            number = int(part)
            if 1 <= number <= n_sources and number not in seen:
                seen.append(number)
    return seen
