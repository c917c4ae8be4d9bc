"""Split sections into chunks sized in the embedder's tokens, with overlap.

Chunks never cross a section (heading or PDF page) boundary, prefer to end at a
paragraph or sentence end, and keep exact character offsets into the document so a
citation can point at the place it came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Protocol

from dca.errors import ConfigError
from dca.knowledge.sections import Section


class Tokenizer(Protocol):
    """Character spans of the tokens of a text (no special tokens)."""

    def spans(self, text: str) -> list[tuple[int, int]]: ...


@dataclass(frozen=True, kw_only=True)
class ChunkConfig:
    """How documents are cut into chunks; recorded in the index manifest."""

    chunk_tokens: int = 200  # most embedder tokens per chunk (all-MiniLM-L6-v2 reads 256)
    overlap_tokens: int = 32  # tokens repeated between neighbouring chunks of a section

    def __post_init__(self) -> None:
        if self.chunk_tokens < 16:
            raise ConfigError(f"chunk_tokens must be at least 16, got {self.chunk_tokens}")
        if not 0 <= self.overlap_tokens < self.chunk_tokens // 2:
            raise ConfigError(
                f"overlap_tokens must be between 0 and chunk_tokens/2 ({self.chunk_tokens // 2}), "
                f"got {self.overlap_tokens}"
            )

    def to_json(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class Chunk:
    """A piece of a document to embed and cite."""

    text: str
    start: int  # character offset in the document's extracted text
    end: int
    heading: str = ""
    page: int | None = None
    n_tokens: int = 0

    @property
    def embed_text(self) -> str:
        """The heading path gives a short chunk its context when it is embedded."""
        return f"{self.heading}\n{self.text}" if self.heading else self.text


def _is_break(text: str, end: int) -> bool:
    """A good place to end a chunk: after a sentence end or before a line break."""
    following = text[end : end + 1]
    return text[end - 1 : end] in ".!?:;" or following == "\n"


def split_sections(sections: Iterable[Section], tokenizer: Tokenizer, config: ChunkConfig) -> Iterator[Chunk]:
    """Chunks of each section, in document order."""
    for section in sections:
        spans = tokenizer.spans(section.text)
        n = len(spans)
        i = 0
        while i < n:
            j = min(i + config.chunk_tokens, n)
            if j < n:
                floor = i + (config.chunk_tokens * 3) // 5
                for k in range(j, floor, -1):
                    if _is_break(section.text, spans[k - 1][1]):
                        j = k
                        break
            lo, hi = spans[i][0], spans[j - 1][1]
            text = section.text[lo:hi]
            if text.strip():
                yield Chunk(
                    text=text,
                    start=section.start + lo,
                    end=section.start + hi,
                    heading=section.heading,
                    page=section.page,
                    n_tokens=j - i,
                )
            if j >= n:
                break
            i = max(j - config.overlap_tokens, i + 1)
