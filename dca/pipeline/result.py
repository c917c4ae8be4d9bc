"""What the pipeline answers: an ``Answer`` with its numbered ``Source``s (schema: docs/api.md)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dca.knowledge.retrieval import Hit
from dca.reasoning.events import ReasoningResult

SCHEMA_VERSION = 6


@dataclass(frozen=True, kw_only=True)
class Source:
    """A source given to the model, numbered as the answer cites it."""

    number: int
    path: str
    heading: str
    page: int | None
    char_start: int
    char_end: int
    score: float
    text: str

    @classmethod
    def from_hit(cls, number: int, hit: Hit) -> Source:
        c = hit.chunk
        return cls(
            number=number,
            path=c.path,
            heading=c.heading,
            page=c.page,
            char_start=c.char_start,
            char_end=c.char_end,
            score=hit.score,
            text=c.text,
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(kw_only=True)
class Answer:
    """An answer with its sources, reasoning, token counts and timings (schema: docs/api.md)."""

    question: str
    text: str
    sources: list[Source]  # everything the model was shown
    citations: list[int]  # numbers of the sources the answer cites, in order of mention
    # (from, to): citations the model pointed at a source lacking their claim, moved to the one
    # that holds it (AskConfig.repoint_citations); a streamed answer showed them unmoved
    citations_moved: list[tuple[int, int]] = field(default_factory=list)
    grounded: bool  # False when the answer says the sources do not contain it
    # the model's P(the sources state the answer), when asked (AskConfig.min_support); None: not asked
    support: float | None = None
    # the grounding judge's verdict before the answer was written (dca/pipeline/judge.py); None: not judged
    judge: dict[str, Any] | None = None
    unsupported_text: str = ""  # the answer the support check turned into "not in the sources"
    model: str
    adapter: str | None
    index: str | None
    verifier: str | None = None  # verify: the learned verifier that weighed the samples (its file's name)
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0  # every generated token: reasoning and answer
    finish_reason: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # retrieval_s, prompt_s, decode_s, total_s
    warnings: list[str] = field(default_factory=list)
    reasoning: ReasoningResult | None = None  # None for the direct strategy

    @property
    def cited_sources(self) -> list[Source]:
        return [s for s in self.sources if s.number in self.citations]

    @property
    def reasoning_text(self) -> str:
        return self.reasoning.reasoning if self.reasoning else ""

    def to_json(self) -> dict[str, Any]:
        r = self.reasoning
        return {
            "schema_version": SCHEMA_VERSION,
            "question": self.question,
            "answer": self.text,
            "reasoning": r.reasoning if r else None,
            "grounded": self.grounded,
            "support": None if self.support is None else round(self.support, 4),
            "judge": self.judge,
            "unsupported_answer": self.unsupported_text or None,
            "citations": [s.to_json() for s in self.cited_sources],
            "citations_moved": [list(move) for move in self.citations_moved],
            "sources": [s.to_json() for s in self.sources],
            "model": self.model,
            "adapter": self.adapter,
            "verifier": self.verifier,
            "index": self.index,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "cached_tokens": self.cached_tokens,
                "completion_tokens": self.completion_tokens,
                "reasoning_tokens": r.reasoning_tokens if r else 0,
                "answer_tokens": r.answer_tokens if r else self.completion_tokens,
            },
            "thinking": r.to_json() if r else None,
            "finish_reason": self.finish_reason,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "warnings": self.warnings,
        }
