"""What a reasoning run reports while it works: typed events, then the final result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dca.knowledge.retrieval import Hit
from dca.reasoning.sandbox import ProgramResult


@dataclass(frozen=True)
class Thinking:
    """A piece of thinking text (or of a program) as it is generated."""

    text: str
    sample: int = 0


@dataclass(frozen=True)
class AnswerText:
    """A piece of the final answer's text as it is generated."""

    text: str


@dataclass(frozen=True)
class Progress:
    """Thinking tokens used so far in one sample, against the budget."""

    sample: int
    n_samples: int
    thought_tokens: int
    budget: int
    searches: int = 0


@dataclass(frozen=True)
class SearchIssued:
    query: str
    sample: int = 0


@dataclass(frozen=True)
class SearchResults:
    query: str
    hits: list[Hit]
    numbers: list[int]  # the source numbers the hits were quoted under


@dataclass(frozen=True)
class ProgramRan:
    sample: int
    code: str
    result: ProgramResult
    repair: bool = False  # True for the repaired second attempt


@dataclass(frozen=True)
class ContextAdded:
    """A note the user added while the run was paused; the thinking goes on with it."""

    note: str


@dataclass(frozen=True)
class SampleFinished:
    """Sample ``sample`` of at most ``n_samples`` has its answer."""

    sample: int
    n_samples: int
    final: str  # the extracted answer ("" when there is none)
    kind: str  # cot | program
    tokens: int


@dataclass(frozen=True)
class VoteTally:
    counts: dict[str, int]
    drawn: int
    n_samples: int
    leader: str
    share: float  # the leader's share of the samples drawn: the confidence
    decided: bool  # True when drawing more cannot change the outcome (or the share passed the threshold)


@dataclass(kw_only=True)
class Sample:
    """One candidate: its reasoning (a thought or a program), its answer and its costs."""

    kind: str  # cot | program
    reasoning: str
    answer: str  # the text after the thinking (cot) or what the program printed (program)
    final: str  # extracted, normalized answer; "" when none
    reasoning_tokens: int = 0
    answer_tokens: int = 0
    prompt_tokens: int = 0
    forced: bool = False  # the budget ran out and the answer was forced
    extended: int = 0  # continuation cues appended (min thinking)
    searches: list[str] = field(default_factory=list)
    program_error: str = ""
    attempts: int = 1  # program: runs of the sandbox (2 after a repair)
    score: float | None = None  # verifier score
    # token-level certainty of the program that gave the answer (dca.reasoning.certainty); None
    # where the generator records no log-probabilities (batched samples, a remote server)
    certainty: dict[str, float] | None = None

    @property
    def tokens(self) -> int:
        return self.reasoning_tokens + self.answer_tokens


@dataclass(kw_only=True)
class ReasoningResult:
    """The outcome of a reasoning run."""

    strategy: str
    answer: str  # the answer text shown to the user
    final: str  # the extracted final answer
    reasoning: str  # the reasoning behind the chosen answer
    samples: list[Sample]
    votes: dict[str, int] = field(default_factory=dict)
    confidence: float = 1.0  # the vote share of the answer (1.0 for single passes)
    majority: str = ""  # verify: what a plain majority vote would have answered
    sources: list[Hit] = field(default_factory=list)  # every hit the model saw during reasoning
    searches: list[str] = field(default_factory=list)
    budget: int = 0
    fallback: bool = False  # plain RAG answered instead

    @property
    def reasoning_tokens(self) -> int:
        return sum(s.reasoning_tokens for s in self.samples)

    @property
    def answer_tokens(self) -> int:
        return sum(s.answer_tokens for s in self.samples)

    @property
    def forced(self) -> bool:
        return any(s.forced for s in self.samples)

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "final": self.final,
            "reasoning": self.reasoning,
            "confidence": round(self.confidence, 4),
            "votes": self.votes,
            "majority": self.majority,
            "budget": self.budget,
            "reasoning_tokens": self.reasoning_tokens,
            "answer_tokens": self.answer_tokens,
            "forced": self.forced,
            "extended": sum(s.extended for s in self.samples),
            "searches": self.searches,
            "fallback": self.fallback,
            "samples": [
                {
                    "kind": s.kind,
                    "final": s.final,
                    "reasoning_tokens": s.reasoning_tokens,
                    "answer_tokens": s.answer_tokens,
                    "forced": s.forced,
                    "extended": s.extended,
                    "searches": s.searches,
                    "program_error": s.program_error,
                    "attempts": s.attempts,
                    "score": s.score,
                    "certainty": s.certainty,
                }
                for s in self.samples
            ],
        }


@dataclass(frozen=True)
class Finished:
    """The last event of a run: its result (the pipeline wraps it into an Answer)."""

    result: Any


Event = (
    Thinking
    | AnswerText
    | Progress
    | SearchIssued
    | SearchResults
    | ProgramRan
    | ContextAdded
    | SampleFinished
    | VoteTally
    | Finished
)


def describe(event: object) -> str | None:
    """A one-line note for the events a reader follows between thoughts (searches, programs,
    samples, votes, notes); None for thinking, answer text, progress and the end.

    >>> describe(SearchIssued("capital of France"))
    'search: capital of France'
    """
    if isinstance(event, SearchIssued):
        return f"search: {event.query}"
    if isinstance(event, SearchResults):
        return f"{len(event.hits)} results: sources {', '.join(map(str, event.numbers)) or 'none'}"
    if isinstance(event, ProgramRan):
        outcome = f"printed {event.result.last_line!r}" if event.result.ok else f"failed: {event.result.error}"
        return f"{'repaired program' if event.repair else 'program'} {outcome}"
    if isinstance(event, SampleFinished):
        if event.n_samples == 1:
            return None
        return f"sample {event.sample + 1}/{event.n_samples}: {event.final or 'no answer'} ({event.tokens} tokens)"
    if isinstance(event, VoteTally):
        return f"votes {tally_text(event) or 'none'}" + (" (decided)" if event.decided else "")
    if isinstance(event, ContextAdded):
        return f"note added: {event.note}"
    return None


def tally_text(event: VoteTally) -> str:
    """The vote counts, most votes first: ``"42: 3, 41: 1"``."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(event.counts.items(), key=lambda kv: -kv[1]))
