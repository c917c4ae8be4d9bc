"""The steps of the answering path, each a small function over one ``Run``.

A question goes: ``start_run`` (checks, adapter, verifier, generation settings) -> retrieve
-> gate (the similarity floor) -> prompt -> generate (the direct answer) or reason (a
thinking strategy) -> checks (dca/pipeline/checks.py) -> ``finish_answer``. A stage takes the
Run, reads and writes its fields, and yields the events it produces (most yield none).
dca.pipeline composes them; an experiment passes other stages through ``run_pipeline``'s
``stages`` instead of patching a name here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from collections.abc import Generator as Steps
from dataclasses import dataclass, field
from typing import Any

from dca.answer import (
    NO_ANSWER,
    SYSTEM_GROUNDED,
    PromptParts,
    build_prompt,
    cited_numbers,
    is_refusal,
    says_nothing,
)
from dca.askconfig import AskConfig
from dca.config import Paths
from dca.errors import ConfigError, require_utf8
from dca.knowledge.retrieval import Hit
from dca.pipeline.judge import choose_judge
from dca.pipeline.result import Answer, Source
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import AnswerText, Event, Finished, Progress, ReasoningResult, SampleFinished, Thinking
from dca.reasoning.run import reason
from dca.reasoning.think import Controls, generate
from dca.runtime.adapters import choose_adapter, choose_verifier, resolve_adapter, verifier_name
from dca.runtime.generation import Completion, GenerationConfig, Generator

Retriever = Callable[[str], list[Hit]]
# Retrieval during reasoning asks for the answer in the style the user chose, without sources up front.
SEARCH_STYLE = {
    "cited": "In the final answer, end each sentence with the number of the source it comes from, like [1].",
    "short": "The final answer is the shortest phrase that answers the question (a name, a number, a date "
    "or a few words), without explanation.",
}


@dataclass(kw_only=True)
class Run:
    """One question on its way through the stages: what each stage reads and writes."""

    generator: Generator
    question: str
    config: AskConfig
    paths: Paths
    retrieve: Retriever | None  # None: closed-book
    index_name: str | None
    history: list[dict[str, str]]
    controls: Controls | None
    gen: GenerationConfig  # the answer's generation settings (adapter chosen)
    started: float
    searching: bool = False  # the model searches during its reasoning (no sources up front)
    adapter: str | None = None
    verifier: str | None = None  # verify: the learned verifier's file
    notes: list[str] = field(default_factory=list)  # warnings found before the prompt
    judge: Any = None  # the grounding judge (dca.pipeline.judge.Judge), when one applies
    embedder: str | None = None  # the index's embedder (whose similarities the judge compares)
    refused: bool = False  # the judge found the sources do not hold the answer: none is generated
    hits: list[Hit] = field(default_factory=list)
    best_similarity: float | None = None
    irrelevant: bool = False  # no source reached min_similarity: none is shown
    retrieved_at: float = 0.0
    system: str | None = None
    parts: PromptParts | None = None
    answer: Answer | None = None  # filled in from the prompt stage on
    completion: Completion = field(default_factory=Completion)
    result: ReasoningResult | None = None  # a thinking strategy's
    text: str = ""  # the answer's text so far
    held: list[AnswerText] | None = None  # a cited answer's first pieces, held back while they are markers alone

    @property
    def grounded(self) -> bool:
        """Answered over the user's documents (not closed-book)."""
        return self.retrieve is not None

    @property
    def nothing_retrieved(self) -> bool:
        """Sources were to be given up front and none were: the answer is "not in the sources"."""
        assert self.parts is not None
        return self.retrieve is not None and not self.searching and not self.parts.sources


Stage = Callable[[Run], Iterator[Event]]


def start_run(
    generator: Generator,
    question: str,
    *,
    config: AskConfig,
    paths: Paths,
    retrieve: Retriever | None,
    index_name: str | None,
    history: list[dict[str, str]] | None,
    controls: Controls | None,
    embedder: str | None = None,
) -> Run:
    """The question checked, the adapter loaded and the verifier chosen: everything that can
    fail on bad input fails here, before anything is generated."""
    question = require_utf8(question, "question").strip()
    if not question:
        raise ConfigError("the question is empty; ask something")
    started = time.perf_counter()
    strategy = config.reasoning
    if config.max_tokens >= generator.n_ctx:
        raise ConfigError(
            f"--max-tokens {config.max_tokens} leaves no room for the question in the model's "
            f"{generator.n_ctx}-token context; use at most {generator.n_ctx // 2}, or load it with a larger --n-ctx"
        )
    if strategy.thinks and strategy.budget >= generator.n_ctx:
        raise ConfigError(
            f"--budget {strategy.budget} does not fit in the model's {generator.n_ctx}-token context; "
            f"use at most {generator.n_ctx // 2}, or a larger --n-ctx"
        )
    notes: list[str] = []
    adapter_name = None
    adapter = choose_adapter(config.adapter, generator.name, thinking=strategy.thinks, paths=paths)
    if adapter and not generator.supports_adapters:
        if config.adapter:
            raise ConfigError(
                f"adapter {adapter} cannot run on the openai backend: the server holds the weights; serve the "
                "adapter there (llama-server --lora FILE), answer with --adapter none, or use --backend local"
            )
        adapter = None  # the default adapter, on a server that holds the weights: the base model thinks
        notes.append("the openai backend runs the server's model: thinking without dca's reasoning adapter")
    if adapter:
        adapter_name, adapter_path = resolve_adapter(adapter, paths)
        generator.load_adapter(adapter_name, adapter_path)
    verifier = choose_verifier(config.verifier, generator.name, paths) if strategy.strategy == "verify" else None
    if verifier and not generator.supports_adapters and config.verifier is None:
        verifier = None  # the default verifier needs the weights here: the server's model votes on facts alone
        notes.append("the openai backend runs the server's model: weighing samples without dca's learned verifier")
    gen = GenerationConfig(
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        stop=() if strategy.thinks else config.stop,  # a thinking strategy's answer is cut below
        seed=config.seed,
        adapter=adapter_name,
        adapter_scale=config.adapter_scale,
    )
    return Run(
        generator=generator,
        question=question,
        config=config,
        paths=paths,
        retrieve=retrieve,
        index_name=index_name,
        history=history or [],
        controls=controls,
        gen=gen,
        started=started,
        searching=retrieve is not None and strategy.thinks and strategy.max_searches > 0,
        adapter=adapter_name,
        verifier=verifier,
        notes=notes,
        judge=choose_judge(config, generator.name, paths) if retrieve is not None else None,
        embedder=embedder,
    )


def retrieve_sources(run: Run) -> Iterator[Event]:
    """The sources given up front (none closed-book, or when the model searches as it thinks)."""
    run.hits = run.retrieve(run.question) if run.retrieve is not None and not run.searching else []
    yield from ()


def similarity_gate(run: Run) -> Iterator[Event]:
    """No source is shown when none reaches ``min_similarity`` (the answer is then "not in the sources")."""
    floor = run.config.min_similarity
    run.best_similarity = max((h.similarity for h in run.hits if h.similarity is not None), default=None)
    best = run.best_similarity
    run.irrelevant = bool(run.hits) and floor > 0 and (best is None or best < floor)
    if run.irrelevant:
        run.hits = []  # not shown to the model
    run.retrieved_at = time.perf_counter()
    yield from ()


def fit_prompt(run: Run) -> Iterator[Event]:
    """The messages, fitted to the context window with room for what the strategy generates."""
    config = run.config
    run.system = config.system
    if run.searching:
        run.system = (run.system or SYSTEM_GROUNDED) + " " + SEARCH_STYLE[config.style]
    room = room_for(config.reasoning, config.max_tokens, run.searching)
    run.parts = prompt_parts(run, run.question, run.hits, config, run.system, room)
    warnings = run.notes + _warnings(run.parts)
    if run.irrelevant:
        best = "none" if run.best_similarity is None else f"{run.best_similarity:.3f}"
        warnings.append(
            f"no source was similar enough to the question (best similarity {best}, minimum {config.min_similarity})"
        )
    run.answer = Answer(
        question=run.question,
        text="",
        sources=[Source.from_hit(n, hit) for n, hit in enumerate(run.parts.sources, start=1)],
        citations=[],
        grounded=False,
        model=run.generator.name,
        adapter=run.adapter,
        index=run.index_name if run.grounded else None,
        verifier=verifier_name(run.verifier),
        warnings=warnings,
    )
    yield from ()


def not_in_sources(run: Run) -> Iterator[Event]:
    """Nothing was retrieved, or the judge found the sources do not hold the answer: the answer
    says so, and the model is not asked to guess."""
    run.text = NO_ANSWER
    yield AnswerText(run.text)


def generate_answer(run: Run) -> Iterator[Event]:
    """The direct answer: one pass of the model. A cited answer is held back while it is
    citation markers alone ("[1]": the small model does that on about a quarter of short
    factual questions); the bare-citation check then asks again or lets it go."""
    assert run.parts is not None
    held: list[AnswerText] | None = [] if run.config.style == "cited" and run.parts.sources else None
    for item in single_pass(run.generator, run.parts.messages, run.gen, run.completion):
        if held is not None and isinstance(item, AnswerText):
            held.append(item)
            if says_nothing_yet(held):
                continue
            yield from held
            held = None
        else:
            yield item
    run.text = run.completion.text.strip()
    run.held = held


def says_nothing_yet(held: list[AnswerText]) -> bool:
    """Are the answer's pieces so far citation markers alone?"""
    return says_nothing("".join(e.text for e in held))


def reason_answer(run: Run) -> Iterator[Event]:
    """A thinking strategy (dca.reasoning): its thinking streams as Thinking events, its answer
    as the answer; over the user's documents, plain RAG answers when it gives none."""
    from dca.pipeline.checks import load_verifier

    config, strategy, answer = run.config, run.config.reasoning, run.answer
    assert run.parts is not None and answer is not None
    retrieve = run.retrieve
    events = reason(
        run.generator,
        run.parts.messages,
        strategy,
        question=run.question,
        gen=run.gen,
        scorer=load_verifier(run.verifier, run.generator),
        retrieve=(lambda query: retrieve(query)) if run.searching and retrieve is not None else None,
        controls=run.controls,
    )
    # One thought's answer streams live as the answer. Where the answer is settled at the end
    # (a vote over samples, a program's output, a possible fallback to plain RAG), each
    # sample's answer is part of the thinking, and the settled answer streams after it.
    live = strategy.strategy == "cot" and not (strategy.fallback and retrieve is not None)
    cut = StopCut(config.stop)
    sample, answering = 0, False
    result: ReasoningResult | None = None
    for event in events:
        if isinstance(event, Finished):
            result = event.result
        elif isinstance(event, AnswerText) and not live:
            yield Thinking(event.text if answering else "\n[answer] " + event.text, sample)
            answering = True
        elif isinstance(event, AnswerText) and config.stop:
            if piece := cut.feed(event.text):
                yield AnswerText(piece)
        else:
            if isinstance(event, Thinking | Progress):
                sample = event.sample
            elif isinstance(event, SampleFinished):
                answering = False
            yield event
    if rest := cut.flush():
        yield AnswerText(rest)
    assert isinstance(result, ReasoningResult)
    run.result = result
    text = result.answer.removeprefix("Final answer:").strip() or result.answer
    if config.stop:
        text = cut.cut(text).strip()
    answer.sources = [Source.from_hit(n, hit) for n, hit in enumerate(result.sources or run.parts.sources, start=1)]
    completion = run.completion
    completion.prompt_tokens = max((s.prompt_tokens for s in result.samples), default=0)
    completion.completion_tokens = result.reasoning_tokens + result.answer_tokens
    completion.finish_reason = "length" if result.forced else "stop"
    # Plain RAG when reasoning over the user's documents gave no answer or refused (with the
    # sources up front too: on HotpotQA thinking made the model refuse far more often).
    if strategy.fallback and retrieve is not None and _unsure(result, text, strategy):
        text = yield from _fallback(run, retrieve)
        result.fallback = True
    elif not live and text:
        yield AnswerText(text)
    run.text = text


def finish_answer(run: Run) -> Answer:
    """The Answer: its text, citations, token counts and timings."""
    answer, completion = run.answer, run.completion
    assert answer is not None
    answer.text = run.text
    answer.citations = cited_numbers(run.text, len(answer.sources))
    answer.grounded = bool(answer.sources) and not is_refusal(run.text)
    answer.prompt_tokens = completion.prompt_tokens
    answer.cached_tokens = completion.cached_tokens
    answer.completion_tokens = completion.completion_tokens
    answer.finish_reason = completion.finish_reason or "stop"
    answer.reasoning = run.result
    answer.timings = {
        "retrieval_s": run.retrieved_at - run.started,
        "prompt_s": completion.prompt_seconds,
        "decode_s": completion.decode_seconds,
        "total_s": time.perf_counter() - run.started,
    }
    return answer


class StopCut:
    """Cuts streamed text at the first stop string, holding back what could be the start of one.

    >>> cut = StopCut(("END",))
    >>> cut.feed("one E"), cut.feed("N"), cut.feed("D two"), cut.feed(" more")
    ('one ', '', '', '')
    >>> StopCut(("\\n",)).cut("a\\nb")
    'a'
    """

    def __init__(self, stop: tuple[str, ...]) -> None:
        self.stop = stop
        self._held = ""
        self.stopped = False

    def cut(self, text: str) -> str:
        ends = [text.index(s) for s in self.stop if s in text]
        return text[: min(ends)] if ends else text

    def flush(self) -> str:
        """What was held back, at the end of the text."""
        rest, self._held = ("" if self.stopped else self._held), ""
        return rest

    def feed(self, piece: str) -> str:
        """The part of ``piece`` (with what was held back) that can be shown now."""
        if self.stopped:
            return ""
        text = self._held + piece
        cut = self.cut(text)
        if cut != text:
            self.stopped, self._held = True, ""
            return cut
        keep = max((len(s) - 1 for s in self.stop), default=0)
        # hold back the longest tail that is a prefix of a stop string
        tail = next(
            (n for n in range(min(keep, len(text)), 0, -1) if any(s.startswith(text[-n:]) for s in self.stop)), 0
        )
        self._held = text[len(text) - tail :]
        return text[: len(text) - tail]


def prompt_parts(
    run: Run, question: str, hits: list[Hit], config: AskConfig, system: str | None, room: int
) -> PromptParts:
    """``build_prompt`` with the run's model, history and grounding."""
    generator = run.generator
    return build_prompt(
        question,
        hits,
        history=run.history,
        grounded=run.grounded,
        style=config.style,
        system=system,
        n_ctx=generator.n_ctx,
        answer_tokens=min(room, generator.n_ctx // 2),
        count_prompt_tokens=lambda messages: len(generator.tokenize(generator.chat_prompt(messages))),
        controls=generator.control_tokens,
    )


def single_pass(
    generator: Generator, messages: list[dict[str, str]], gen: GenerationConfig, completion: Completion
) -> Iterator[Event]:
    """One pass of the model over ``messages``, its text as AnswerText events; ``completion`` gets the counts."""
    for item in generate(generator, generator.chat_prompt(messages), gen, controls=None, event=AnswerText):
        if isinstance(item, Completion):
            for name, value in item.__dict__.items():
                setattr(completion, name, value)
        else:
            yield item


def add_pass(completion: Completion, fresh: Completion) -> None:
    """A further pass's tokens and time counted into the answer's."""
    completion.completion_tokens += fresh.completion_tokens
    completion.prompt_seconds += fresh.prompt_seconds
    completion.decode_seconds += fresh.decode_seconds


def room_for(strategy: ReasoningConfig, answer_tokens: int, searching: bool) -> int:
    """Tokens one sample may add after the prompt: what the prompt must leave free in the context.

    >>> room_for(ReasoningConfig(strategy="program"), 512, False)  # a program and its one repair
    928
    >>> room_for(ReasoningConfig(strategy="cot", budget=256), 512, False)
    768
    """
    thought = strategy.budget + answer_tokens
    program = 2 * strategy.program_tokens + 128  # the first program, its error, the repair
    rooms = {"direct": answer_tokens, "program": program, "program-vote": program, "mix": max(thought, program)}
    room = rooms.get(strategy.strategy, thought)
    if searching:  # inserted results: quoted snippets, about 4 characters a token
        room += strategy.max_searches * strategy.search_k * (strategy.snippet_chars // 4 + 16)
    return room


def _unsure(result: ReasoningResult, text: str, strategy: ReasoningConfig) -> bool:
    """Should plain RAG answer instead? No answer, a refusal, or a vote share below the minimum."""
    return not result.final or is_refusal(text) or result.confidence < strategy.min_confidence


def _fallback(run: Run, retrieve: Retriever) -> Steps[Event, None, str]:
    """Plain RAG after retrieval during reasoning gave no answer; every source seen stays listed."""
    answer = run.answer
    assert answer is not None
    config = run.config
    hits = retrieve(run.question)
    parts = prompt_parts(run, run.question, hits, config, config.system, config.max_tokens)
    fresh = Completion()
    yield from single_pass(run.generator, parts.messages, run.gen, fresh)
    numbered = [Source.from_hit(n, hit) for n, hit in enumerate(parts.sources, start=1)]
    kept = {(s.path, s.char_start) for s in numbered}
    extra = [s for s in answer.sources if (s.path, s.char_start) not in kept]
    answer.sources = numbered + [
        Source(**{**s.to_json(), "number": len(numbered) + i}) for i, s in enumerate(extra, start=1)
    ]
    add_pass(run.completion, fresh)
    return fresh.text.strip()


def _warnings(parts: PromptParts) -> list[str]:
    warnings = []
    if parts.dropped_sources:
        warnings.append(f"{parts.dropped_sources} retrieved sources did not fit the context window")
    if parts.dropped_turns:
        warnings.append(f"the {parts.dropped_turns} oldest conversation turns were dropped to fit")
    if parts.question_trimmed:
        warnings.append("the question was trimmed to fit the context window")
    return warnings
