"""Find the [n] citation markers in an answer."""

from __future__ import annotations

import re
from collections.abc import Iterator

_MARKER = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def strip_citations(text: str) -> str:
    """``text`` without its citation markers (and the space before each).

    >>> strip_citations("Paris [2]. It is big [1, 2][7].")
    'Paris. It is big.'
    """
    return _STRIP.sub("", text)


_STRIP = re.compile(r"\s*" + _MARKER.pattern)


_OPEN_MARKER = re.compile(r"\[[\d,;\s]*$")  # a marker still being written: "[1", "[1, "


def says_nothing(text: str) -> bool:
    """Is ``text`` citation markers alone (with spaces and punctuation, the last one perhaps
    still open as a stream writes it), no word of an answer?

    >>> says_nothing("[1]"), says_nothing(" [1] [3]."), says_nothing("[1"), says_nothing("1060s [1]")
    (True, True, True, False)
    """
    return not any(ch.isalnum() for ch in _OPEN_MARKER.sub("", strip_citations(text)))


def cited_numbers(text: str, n_sources: int) -> list[int]:
    """Source numbers cited as [1], [2, 3] or [1][4], in order of first mention, within 1..n_sources;
    indexing in code (``a[1]``) is no citation, as in :func:`claims`.

    >>> cited_numbers("Paris [2]. It is big [1, 2][7]. Use rows[3].", 3)
    [2, 1]
    """
    seen: list[int] = []
    for _, _, numbers in claims(text):
        for number in numbers:
            if 1 <= number <= n_sources and number not in seen:
                seen.append(number)
    return seen


_WORD = re.compile(r"\w+")
# A citation moves only when its source holds at most this share of the claim's content words
# and another source holds at least MARGIN more (lab/NOTEBOOK.md, "Do cited answers cite the
# right source?": every wrong citation seen had 0.5 or less; the margin is the middle of three
# that did equally well on calibration rows).
WEAK_COVERAGE = 0.5
MARGIN = 0.25


def content_words(text: str, stopwords: frozenset[str]) -> set[str]:
    """The lower-cased words of ``text`` that are not in ``stopwords``."""
    return {w for w in _WORD.findall(text.lower()) if w not in stopwords}


def coverage(claim: str, source: str, stopwords: frozenset[str]) -> float:
    """The share of the claim's content words (``stopwords`` left out) that ``source`` has."""
    words = content_words(claim, stopwords)
    return len(words & set(_WORD.findall(source.lower()))) / len(words) if words else 0.0


def claims(text: str) -> Iterator[tuple[re.Match[str], str, list[int]]]:
    """Each citation marker of ``text`` with its claim (the text since the previous marker; a
    marker right after another cites the same claim) and the numbers it cites. Indexing in code
    (``a[1]``, ``f(x)[0]``, ``rows[1][2]``) is no citation and is skipped."""
    last, claim, indexing = 0, "", False
    for match in _MARKER.finditer(text):
        before = text[match.start() - 1] if match.start() else " "
        indexing = before.isalnum() or before in "_)" or (before == "]" and indexing)
        if indexing:
            continue
        claim = text[last : match.start()].strip() or claim
        last = match.end()
        yield match, claim, [int(part) for part in re.split(r"[,;]", match.group(1))]


def repoint_citations(
    text: str, sources: list[str], stopwords: frozenset[str] = frozenset()
) -> tuple[str, list[tuple[int, int]]]:
    """``text`` with each citation that points at a source lacking its claim moved to the source
    that holds it, and the (from, to) moves made (claims as :func:`claims` finds them). A
    citation moves only when its source covers at most WEAK_COVERAGE of the claim's content
    words and another covers at least MARGIN more; numbers outside 1..len(sources), claims
    without content words and indexing in code (``a[1]``, ``f(x)[0]``) stay.

    >>> repoint_citations("Tancred [2].", ["Bohemond's nephew Tancred led", "Robert ruled Apulia"])
    ('Tancred [1].', [(2, 1)])
    """
    moves: list[tuple[int, int]] = []
    pieces: list[str] = []
    last = 0
    for match, claim, cited in claims(text):
        cover = [coverage(claim, s, stopwords) for s in sources]  # once per marker
        best = max(range(len(sources)), key=cover.__getitem__) + 1 if sources else 0
        numbers: list[int] = []
        for number in cited:
            in_range = 1 <= number <= len(sources)
            if in_range and cover[number - 1] <= WEAK_COVERAGE and cover[best - 1] >= cover[number - 1] + MARGIN:
                moves.append((number, best))
                number = best
            if number not in numbers:
                numbers.append(number)
        pieces.append(text[last : match.start()] + "[" + ", ".join(map(str, numbers)) + "]")
        last = match.end()
    if not moves:
        return text, []
    return "".join(pieces) + text[last:], moves


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")


def sentences(text: str) -> list[str]:
    """``text`` cut after each sentence's end (a citation marker stays with its sentence).

    >>> sentences("Paris [1]. It lies on the Seine [2]. 3.5 km wide.")
    ['Paris [1].', 'It lies on the Seine [2].', '3.5 km wide.']
    """
    return [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def found_share(claim: str, question: str, sources: list[str], stopwords: frozenset[str]) -> float:
    """The share of ``claim``'s new content (its content words that ``question`` does not have,
    citation markers and ``stopwords`` left out) that the ``sources`` hold; 1.0 when it adds none.

    >>> found_share("Rollo led the Normans [1].", "Who led the Normans?", ["Rollo was their leader"], frozenset({"the"}))
    1.0
    >>> found_share("Emerson [2].", "Who wrote it?", ["The Normans lived in Normandy"], frozenset())
    0.0
    """
    new = content_words(strip_citations(claim), stopwords) - content_words(question, stopwords)
    if not new:
        return 1.0
    have: set[str] = set()
    for source in sources:
        have |= content_words(source, frozenset())
    return len(new & have) / len(new)
