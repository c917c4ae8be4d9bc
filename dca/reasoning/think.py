"""Think before answering: a delimited thinking span, a budget that caps it and a minimum that
extends it, retrieval in the middle of it, and notes the user adds while it is paused.

The model writes inside ``<think>`` ... ``</think>`` and then answers. dca opens the span
itself (the prompt ends with ``<think>``), so every sample thinks. Each continuation is a
new ``stream`` call whose prompt extends the previous one, and the runtime reuses the KV
cache of that prefix: a forced answer, an extension cue, inserted search results or a
user's note cost only their own new tokens.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from dca.answer import source_block
from dca.knowledge.retrieval import Hit
from dca.reasoning.answers import extract_answer
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import (
    AnswerText,
    ContextAdded,
    Event,
    Progress,
    Sample,
    SearchIssued,
    SearchResults,
    Thinking,
)
from dca.runtime.generation import Completion, GenerationConfig, Generator

OPEN, CLOSE = "<think>\n", "</think>"
SEARCH_OPEN, SEARCH_CLOSE = "<search>", "</search>"
CUE = "\nWait, let me check that again.\n"  # s1-style continuation when thinking stops too early
FORCED = "\n" + CLOSE + "\n\nFinal answer:"
CLOSED = "\n" + CLOSE + "\n\n"
MAX_EXTENSIONS = 8  # continuation cues per sample, so a model that keeps stopping cannot loop

THINK_INSTRUCTION = (
    "Think step by step inside <think> </think> before you answer, briefly. After </think>, give the final answer."
)
SEARCH_INSTRUCTION = (
    "While thinking you can search the user's documents: write <search>a few keywords</search> "
    "and the results appear in <results> tags. Search for each fact you need, at most {n} times."
)

Retrieve = Callable[[str], list[Hit]]


class Controls:
    """What the consumer of a run can do between two events: add notes, cancel."""

    def __init__(self) -> None:
        self._notes: list[str] = []
        self._lock = threading.Lock()
        self.cancelled = False

    def add_note(self, note: str) -> None:
        with self._lock:
            self._notes.append(note)

    def pending(self) -> bool:
        return bool(self._notes)

    def take(self) -> list[str]:
        with self._lock:
            notes, self._notes = self._notes, []
        return notes


@dataclass
class SourceBook:
    """Every hit shown during reasoning, numbered in order of first appearance (for citations)."""

    hits: list[Hit] = field(default_factory=list)
    _numbers: dict[int, int] = field(default_factory=dict)

    def add(self, hits: list[Hit]) -> list[int]:
        numbers = []
        for hit in hits:
            if hit.chunk.id not in self._numbers:
                self.hits.append(hit)
                self._numbers[hit.chunk.id] = len(self.hits)
            numbers.append(self._numbers[hit.chunk.id])
        return numbers


def generate(
    generator: Generator,
    prompt: str,
    config: GenerationConfig,
    *,
    controls: Controls | None,
    event: Callable[[str], Event],
) -> Iterator[Event | Completion]:
    """Stream one generation as events; stops early (finish "interrupted") when a note arrives.

    The last item is the Completion.
    """
    completion = Completion()
    stream = generator.stream(prompt, config, completion)
    try:
        for piece in stream:
            yield event(piece)
            if controls is not None and controls.pending():
                break
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # records what was generated, also when the consumer closes this run
    if completion.finish_reason == "":
        completion.finish_reason = "stop"
    yield completion


def _open_search(thought: str) -> str | None:
    """The query of a ``<search>`` the thought has opened but not closed, else None."""
    start = thought.rfind(SEARCH_OPEN)
    if start < 0 or thought.rfind(SEARCH_CLOSE) > start:
        return None
    return thought[start + len(SEARCH_OPEN) :].strip()


def results_block(hits: list[Hit], numbers: list[int], max_chars: int, controls: Sequence[str] = ()) -> str:
    if not hits:
        return "<results>\nNo results.\n</results>\n"
    return (
        "<results>\n"
        + "".join(source_block(n, h, max_chars, controls=controls) for n, h in zip(numbers, hits, strict=True))
        + "</results>\n"
    )


def think(
    generator: Generator,
    prompt: str,
    config: ReasoningConfig,
    *,
    gen: GenerationConfig,
    sample: int = 0,
    n_samples: int = 1,
    retrieve: Retrieve | None = None,
    book: SourceBook | None = None,
    controls: Controls | None = None,
    draft: Completion | None = None,
) -> Iterator[Event | Sample]:
    """Think about ``prompt`` (a chat prompt ready for the assistant's turn), then answer.

    Yields events and, last, the ``Sample``. ``gen`` carries temperature, seed and adapter.
    ``draft`` is a thinking span already sampled (batched voting): it is continued, not redone.
    """
    book = book if book is not None else SourceBook()
    searching = retrieve is not None and config.max_searches > 0
    stops: tuple[str, ...] = (CLOSE, SEARCH_CLOSE) if searching else (CLOSE,)
    head = prompt + OPEN
    thought, used, extended, forced = "", 0, 0, False
    searches: list[str] = []
    prompt_tokens = 0
    while True:
        left = config.budget - used
        if left <= 0:
            forced = True
            break
        if draft is not None:
            completion, draft = draft, None
            if completion.text:
                yield Thinking(completion.text, sample)
        else:
            completion = Completion()
            for item in generate(
                generator,
                head + thought,
                _with(gen, max_tokens=left, stop=stops),
                controls=controls,
                event=lambda piece: Thinking(piece, sample),
            ):
                if isinstance(item, Completion):
                    completion = item
                else:
                    yield item
        prompt_tokens = prompt_tokens or completion.prompt_tokens
        thought += completion.text
        used += completion.completion_tokens
        yield Progress(sample, n_samples, used, config.budget, len(searches))
        if completion.finish_reason == "interrupted" and controls is not None:
            for note in controls.take():
                thought += f"\n(Note from the user: {note.strip()})\n"
                yield ContextAdded(note)
            continue
        if completion.finish_reason == "length":  # the budget (or the context window) ran out
            forced = True
            break
        query = _open_search(thought) if searching else None
        if query is not None:
            if len(searches) < config.max_searches and query:
                searches.append(query)
                yield SearchIssued(query, sample)
                hits = retrieve(query)[: config.search_k] if retrieve else []
                numbers = book.add(hits)
                yield SearchResults(query, hits, numbers)
                thought += (
                    SEARCH_CLOSE + "\n" + results_block(hits, numbers, config.snippet_chars, generator.control_tokens)
                )
            else:
                thought += SEARCH_CLOSE + "\n<results>\nNo more searches: answer with what you have.\n</results>\n"
                stops = (CLOSE,)
            continue
        if used < config.min_thinking and extended < MAX_EXTENSIONS and completion.completion_tokens > 0:
            thought += CUE
            extended += 1
            continue
        break
    tail = FORCED if forced else CLOSED
    answer = Completion()
    for item in generate(
        generator,
        head + thought + tail,
        _with(gen, max_tokens=min(config.answer_tokens, gen.max_tokens), stop=(OPEN.strip(),)),
        controls=None,
        event=AnswerText,
    ):
        if isinstance(item, Completion):
            answer = item
        else:
            yield item
    text = ("Final answer:" if forced else "") + answer.text
    final = extract_answer(text) or extract_answer(thought)
    yield Sample(
        kind="cot",
        reasoning=thought.strip(),
        answer=text.strip(),
        final=final,
        reasoning_tokens=used,
        answer_tokens=answer.completion_tokens,
        prompt_tokens=prompt_tokens,
        forced=forced,
        extended=extended,
        searches=searches,
    )


def _with(gen: GenerationConfig, **changes: object) -> GenerationConfig:
    return replace(gen, **changes)  # type: ignore[arg-type]
