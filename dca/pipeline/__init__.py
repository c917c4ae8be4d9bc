"""The one answering pipeline: ``ask``, ``chat``, ``eval`` and the API all come through here.

A question goes: retrieval (unless closed-book, or unless the model searches during its
reasoning) -> prompt fitted to the context window -> a strategy (``direct`` single pass, or
one of dca.reasoning's) -> an ``Answer`` with sources, citations, token counts and timings.
The pipeline yields events while it works; its last item is ``Finished(answer)``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from collections.abc import Generator as Steps
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dca.answer import (
    DEFAULT_SUPPORT_QUESTION,
    NO_ANSWER,
    SUPPORT_QUESTIONS,
    SYSTEM_GROUNDED,
    WEAK_COVERAGE,
    PromptParts,
    answer_instruction,
    build_prompt,
    cited_numbers,
    content_words,
    coverage,
    is_refusal,
    repoint_citations,
    says_nothing,
    strip_citations,
    support_messages,
)
from dca.choices import FUSIONS
from dca.config import Paths
from dca.errors import ConfigError, require_utf8
from dca.knowledge.retrieval import STOPWORDS, Hit
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import AnswerText, Event, Finished, Progress, ReasoningResult, SampleFinished, Thinking
from dca.reasoning.run import reason
from dca.reasoning.think import Controls, generate
from dca.runtime.adapters import (
    NO_PROBE,
    choose_adapter,
    choose_grounded_probe,
    choose_verifier,
    resolve_adapter,
    verifier_name,
)
from dca.runtime.generation import Completion, GenerationConfig, Generator

SCHEMA_VERSION = 5
# Retrieval during reasoning asks for the answer in the style the user chose, without sources up front.
SEARCH_STYLE = {
    "cited": "In the final answer, end each sentence with the number of the source it comes from, like [1].",
    "short": "The final answer is the shortest phrase that answers the question (a name, a number, a date "
    "or a few words), without explanation.",
}


@dataclass(frozen=True, kw_only=True)
class AskConfig:
    """How a question is answered; CLI flags map one-to-one."""

    # sources retrieved per question (the most, with k_cutoff); 3 reads 37 % fewer prompt tokens
    # than 5 and answered as well on SQuAD 2.0 and HotpotQA (docs/RESULTS.md, issue 31)
    k: int = 3
    # adaptive k: drop the sources after the first whose retrieval score is below this fraction
    # of the best source's (0: always k; knowledge.retrieval.adaptive_k)
    k_cutoff: float = 0.0
    mode: str = "hybrid"  # retrieval mode: dense, bm25 or hybrid
    fusion: str = "convex"  # hybrid: how dense and keyword rankings are fused (SearchConfig.fusion)
    # move a citation whose source lacks its claim to the source that holds it (the model cites
    # the wrong source for 12-20 % of SQuAD answers: docs/RESULTS.md, "Do cited answers cite the
    # right source?")
    repoint_citations: bool = True
    retrieval: bool = True  # False: answer closed-book, without the index
    max_tokens: int = 512  # room kept for the answer
    temperature: float = 0.0
    top_p: float = 0.95  # nucleus sampling (with temperature > 0)
    stop: tuple[str, ...] = ()  # strings that end the answer (not included); thinking is not cut by them
    seed: int | None = None
    # a LoRA adapter (catalog name, models/adapters/NAME.gguf or a path); None: the catalog's
    # reasoning adapter when the strategy thinks; "none": the base model alone
    adapter: str | None = None
    adapter_scale: float = 1.0
    # "not in the sources" without asking the model when no retrieved source's cosine similarity
    # with the question reaches this (0 = off; docs/RESULTS.md, "Not in sources")
    min_similarity: float = 0.0
    style: str = "cited"  # grounded answers: "cited" sentences ending in [n], or "short" (the answer alone)
    system: str | None = None  # replaces the default system prompt (eval: the task's instructions)
    reasoning: ReasoningConfig = field(default_factory=ReasoningConfig)  # strategy, budget, samples, search
    # verify: a learned verifier that weighs each sample by its P(right): a probe file of `dca train
    # probe`, a NAME.verifier.json of `dca train dpo`, or a catalog verifier's name; "none": the
    # weighted vote on execution facts alone; None: the catalog's default verifier for the model
    verifier: str | None = None
    # Grounded or not: after a grounded single-pass answer, the model's P("Yes") that the sources
    # state it (dca/answer/support.py). None: not asked; below this value the answer becomes
    # "not in the sources" (0: asked and recorded, never refused).
    min_support: float | None = None
    support_question: str = DEFAULT_SUPPORT_QUESTION  # which wording asks it (measured in RESULTS)
    # the grounded check's probe: its P(the sources state the answer) from the model's hidden state,
    # read in the check's pass, is the support instead of P("Yes"): a probe file or a catalog
    # probe's name; "none": P("Yes"); None: the catalog's default probe for the model, if any
    grounded_probe: str | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")
        if not 0 <= self.k_cutoff < 1:
            raise ConfigError(f"k_cutoff must be in [0, 1), got {self.k_cutoff}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if not 0 <= self.min_similarity <= 1:
            raise ConfigError(f"min_similarity must be between 0 and 1, got {self.min_similarity}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if any(not s for s in self.stop):
            raise ConfigError("a stop string is empty; give non-empty strings")
        answer_instruction(self.style)  # raises for an unknown style
        if self.min_support is not None and not 0 <= self.min_support <= 1:
            raise ConfigError(f"min_support must be between 0 and 1, got {self.min_support}")
        if _missing_file(self.verifier):  # a catalog name is checked later
            raise ConfigError(
                f"verifier {self.verifier} does not exist; train one with `dca train probe` or `dca train dpo`"
            )
        if _missing_file(self.grounded_probe):
            raise ConfigError(
                f"grounded-check probe {self.grounded_probe} does not exist; give a probe file, a probe of "
                "`dca models list`, or none"
            )
        if self.grounded_probe not in (None, NO_PROBE) and self.min_support is None:
            raise ConfigError(
                "a grounded-check probe is read by the grounded check: give --min-support (min_support) too"
            )
        if self.support_question not in SUPPORT_QUESTIONS:
            raise ConfigError(
                f"unknown support question {self.support_question!r}; use one of: {', '.join(SUPPORT_QUESTIONS)}"
            )


def _missing_file(value: str | None) -> bool:
    """Whether ``value`` (a --verifier or --grounded-probe) names a file, not a catalog entry, and
    that file is not there."""
    named = value is not None and ("/" in value or value.endswith(".json"))
    return named and not Path(str(value)).expanduser().is_file()


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


Retriever = Callable[[str], list[Hit]]


def run_pipeline(
    generator: Generator,
    question: str,
    *,
    config: AskConfig,
    paths: Paths,
    retrieve: Retriever | None = None,
    index_name: str | None = None,
    history: list[dict[str, str]] | None = None,
    controls: Controls | None = None,
) -> Iterator[Event]:
    """Answer ``question``; ``retrieve`` (question -> hits) is None for closed-book answers."""
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
    searching = retrieve is not None and strategy.thinks and strategy.max_searches > 0
    adapter_name = None
    notes: list[str] = []
    adapter = choose_adapter(config.adapter, generator.name, thinking=strategy.thinks, paths=paths)
    if adapter and not getattr(generator, "supports_adapters", True):
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
    if verifier and not getattr(generator, "supports_adapters", True) and config.verifier is None:
        verifier = None  # the default verifier needs the weights here: the server's model votes on facts alone
        notes.append("the openai backend runs the server's model: weighing samples without dca's learned verifier")
    grounded = _grounded_scorer(config, generator, paths, notes) if retrieve is not None else None
    gen = GenerationConfig(
        max_tokens=config.max_tokens,
        temperature=config.temperature,
        top_p=config.top_p,
        stop=() if strategy.thinks else config.stop,  # a thinking strategy's answer is cut below
        seed=config.seed,
        adapter=adapter_name,
        adapter_scale=config.adapter_scale,
    )
    hits = retrieve(question) if retrieve is not None and not searching else []
    best = max((h.similarity for h in hits if h.similarity is not None), default=None)
    irrelevant = bool(hits) and config.min_similarity > 0 and (best is None or best < config.min_similarity)
    if irrelevant:
        hits = []  # not shown to the model: the answer is "not in the sources"
    retrieved = time.perf_counter()
    system = config.system
    if searching:
        system = (system or SYSTEM_GROUNDED) + " " + SEARCH_STYLE[config.style]
    room = _room(strategy, config.max_tokens, searching)
    parts = _prompt(generator, question, hits, history or [], config, system, room, grounded=retrieve is not None)
    warnings = notes + _warnings(parts)
    if irrelevant:
        warnings.append(
            f"no source was similar enough to the question (best similarity "
            f"{'none' if best is None else f'{best:.3f}'}, minimum {config.min_similarity})"
        )
    base = Answer(
        question=question,
        text="",
        sources=[Source.from_hit(n, hit) for n, hit in enumerate(parts.sources, start=1)],
        citations=[],
        grounded=False,
        model=generator.name,
        adapter=adapter_name,
        index=index_name if retrieve is not None else None,
        verifier=verifier_name(verifier),
        warnings=warnings,
    )
    result: ReasoningResult | None = None
    completion = Completion()
    if retrieve is not None and not searching and not parts.sources:
        text = NO_ANSWER  # nothing retrieved: do not let the model guess
        yield AnswerText(text)
    elif not strategy.thinks:
        # A cited answer is held back while it is citation markers alone ("[1]": the small model
        # does that on about a quarter of short factual questions), so such an answer never
        # reaches the user: it is asked again for the answer itself (_say_it).
        held: list[AnswerText] | None = [] if config.style == "cited" and parts.sources else None
        for item in _single_pass(generator, parts.messages, gen, completion):
            if held is not None and isinstance(item, AnswerText):
                held.append(item)
                if says_nothing("".join(e.text for e in held)):
                    continue
                yield from held
                held = None
            else:
                yield item
        text = completion.text.strip()
        if held is not None and text and says_nothing(text):
            bare = text
            text = yield from _say_it(
                generator, question, parts, history or [], config, system, gen, completion, bare, base.warnings
            )
        elif held:
            yield from held
        if config.min_support is not None and parts.sources and text and not is_refusal(text):
            base.support = _support(generator, parts.messages, text, gen, config.support_question, grounded)
            if base.support < config.min_support:
                base.unsupported_text, text = text, NO_ANSWER
                base.warnings.append(
                    f"the model did not find its answer stated in the sources (support {base.support:.2f} "
                    f"< {config.min_support}): answered that the sources do not contain it"
                )
    else:
        run = reason(
            generator,
            parts.messages,
            strategy,
            question=question,
            gen=gen,
            scorer=_verifier(verifier, generator),
            retrieve=(lambda query: retrieve(query)) if searching and retrieve is not None else None,
            controls=controls,
        )
        # One thought's answer streams live as the answer. Where the answer is settled at the end
        # (a vote over samples, a program's output, a possible fallback to plain RAG), each
        # sample's answer is part of the thinking, and the settled answer streams after it.
        live = strategy.strategy == "cot" and not (strategy.fallback and retrieve is not None)
        cut = StopCut(config.stop)
        sample, answering = 0, False
        for event in run:
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
        text = result.answer.removeprefix("Final answer:").strip() or result.answer
        if config.stop:
            text = cut.cut(text).strip()
        base.sources = [Source.from_hit(n, hit) for n, hit in enumerate(result.sources or parts.sources, start=1)]
        completion.prompt_tokens = max((s.prompt_tokens for s in result.samples), default=0)
        completion.completion_tokens = result.reasoning_tokens + result.answer_tokens
        completion.finish_reason = "length" if result.forced else "stop"
        # Plain RAG when reasoning over the user's documents gave no answer or refused (with the
        # sources up front too: on HotpotQA thinking made the model refuse far more often).
        if strategy.fallback and retrieve is not None and _unsure(result, text, strategy):
            text = yield from _fallback(generator, question, history or [], config, retrieve, gen, completion, base)
            result.fallback = True
        elif not live and text:
            yield AnswerText(text)
    ended = time.perf_counter()
    if config.repoint_citations and base.sources and text and not is_refusal(text):
        text, base.citations_moved = repoint_citations(text, [s.text for s in base.sources], STOPWORDS)
    base.text = text
    base.citations = cited_numbers(text, len(base.sources))
    base.grounded = bool(base.sources) and not is_refusal(text)
    base.prompt_tokens = completion.prompt_tokens
    base.cached_tokens = completion.cached_tokens
    base.completion_tokens = completion.completion_tokens
    base.finish_reason = completion.finish_reason or "stop"
    base.reasoning = result
    base.timings = {
        "retrieval_s": retrieved - started,
        "prompt_s": completion.prompt_seconds,
        "decode_s": completion.decode_seconds,
        "total_s": ended - started,
    }
    yield Finished(base)


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


def _prompt(
    generator: Generator,
    question: str,
    hits: list[Hit],
    history: list[dict[str, str]],
    config: AskConfig,
    system: str | None,
    room: int,
    *,
    grounded: bool,
) -> PromptParts:
    return build_prompt(
        question,
        hits,
        history=history,
        grounded=grounded,
        style=config.style,
        system=system,
        n_ctx=generator.n_ctx,
        answer_tokens=min(room, generator.n_ctx // 2),
        count_prompt_tokens=lambda messages: len(generator.tokenize(generator.chat_prompt(messages))),
        controls=getattr(generator, "control_tokens", ()),
    )


def _single_pass(
    generator: Generator, messages: list[dict[str, str]], gen: GenerationConfig, completion: Completion
) -> Iterator[Event]:
    for item in generate(generator, generator.chat_prompt(messages), gen, controls=None, event=AnswerText):
        if isinstance(item, Completion):
            for name, value in item.__dict__.items():
                setattr(completion, name, value)
        else:
            yield item


def _support(
    generator: Generator,
    messages: list[dict[str, str]],
    text: str,
    gen: GenerationConfig,
    question: str = DEFAULT_SUPPORT_QUESTION,
    grounded: Any = None,
) -> float:
    """P("Yes") that the sources state ``text`` (the prompt before it is still in the KV cache), or
    with a grounded-check probe (a GroundedScorer), its score of the hidden state read in the same pass."""
    check = replace(gen, temperature=0.0, max_tokens=1, stop=())
    prompt = generator.chat_prompt(support_messages(messages, text, question))
    if grounded is not None:
        return float(grounded.score(generator.chat_prompt(messages), text, prompt, check))
    return generator.choice_probabilities(prompt, ["Yes", "No"], check)[0]


def _grounded_scorer(config: AskConfig, generator: Generator, paths: Paths, notes: list[str]) -> Any:
    """The grounded check's probe scorer when the check is asked for and a probe is chosen (the
    one asked for, or the catalog's default for the model), else None. Read before the answer,
    so that a bad probe file is reported before anything is generated."""
    if config.min_support is None:
        return None
    path = choose_grounded_probe(config.grounded_probe, generator.name, paths)
    if path is None:
        return None
    from dca.runtime.probe import GroundedScorer, Probe

    probe = Probe.load(Path(path))
    if not hasattr(generator, "choice_state"):
        if config.grounded_probe:
            raise ConfigError("a grounded-check probe reads the model's hidden states: it needs a local model")
        notes.append("the openai backend runs the server's model: the grounded check reads its P(yes)")
        return None  # the default probe needs the weights here: the check reads the server's P("Yes")
    return GroundedScorer(generator, probe)  # type: ignore[arg-type]


def _room(strategy: ReasoningConfig, answer_tokens: int, searching: bool) -> int:
    """Tokens one sample may add after the prompt: what the prompt must leave free in the context.

    >>> _room(ReasoningConfig(strategy="program"), 512, False)  # a program and its one repair
    928
    >>> _room(ReasoningConfig(strategy="cot", budget=256), 512, False)
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


def _fallback(
    generator: Generator,
    question: str,
    history: list[dict[str, str]],
    config: AskConfig,
    retrieve: Retriever,
    gen: GenerationConfig,
    completion: Completion,
    base: Answer,
) -> Steps[Event, None, str]:
    """Plain RAG after retrieval during reasoning gave no answer; every source seen stays listed."""
    hits = retrieve(question)
    parts = _prompt(generator, question, hits, history, config, config.system, config.max_tokens, grounded=True)
    fresh = Completion()
    yield from _single_pass(generator, parts.messages, gen, fresh)
    numbered = [Source.from_hit(n, hit) for n, hit in enumerate(parts.sources, start=1)]
    kept = {(s.path, s.char_start) for s in numbered}
    extra = [s for s in base.sources if (s.path, s.char_start) not in kept]
    base.sources = numbered + [
        Source(**{**s.to_json(), "number": len(numbered) + i}) for i, s in enumerate(extra, start=1)
    ]
    completion.completion_tokens += fresh.completion_tokens
    completion.prompt_seconds += fresh.prompt_seconds
    completion.decode_seconds += fresh.decode_seconds
    return fresh.text.strip()


_YES_NO = frozenset({"yes", "no"})


def _say_it(
    generator: Generator,
    question: str,
    parts: PromptParts,
    history: list[dict[str, str]],
    config: AskConfig,
    system: str | None,
    gen: GenerationConfig,
    completion: Completion,
    bare: str,
    warnings: list[str],
) -> Steps[Event, None, str]:
    """The answer to a question the model answered with citation markers alone (``bare``): the
    same sources asked with the short style's instruction (the prompt up to the instruction is
    the one just read, so its KV cache is reused), and the phrase given with ``bare``'s markers.
    A refusal stays a refusal; nothing at all becomes NO_ANSWER, and so does a phrase that no
    source holds (at most WEAK_COVERAGE of its content words in any: asked for a phrase from the
    sources, the model answered from elsewhere, e.g. from its own memory of the world); a plain
    "Yes" or "No" has no such words and is given as it is."""
    short = _prompt(
        generator,
        question,
        parts.sources,
        history,
        replace(config, style="short"),
        system,
        gen.max_tokens,
        grounded=True,
    )
    fresh = Completion()
    for item in _single_pass(generator, short.messages, gen, fresh):
        if not isinstance(item, AnswerText):
            yield item  # the phrase itself streams below, with its markers
    completion.completion_tokens += fresh.completion_tokens
    completion.prompt_seconds += fresh.prompt_seconds
    completion.decode_seconds += fresh.decode_seconds
    phrase = strip_citations(fresh.text).strip().rstrip(".").strip()
    asked = f"the model answered with a citation alone ({bare}); asked it again for the answer"
    if says_nothing(phrase):
        text = NO_ANSWER
        warnings.append(asked + ": it gave none")
    elif is_refusal(phrase):
        text = phrase + "."
        warnings.append(asked + ": it said the sources do not contain it")
    # "yes" and "no" are answers, not claims a source's words can hold: such a phrase is not checked
    elif content_words(phrase, STOPWORDS | _YES_NO) and (
        max((coverage(phrase, hit.chunk.text, STOPWORDS) for hit in parts.sources), default=0.0) <= WEAK_COVERAGE
    ):
        text = NO_ANSWER
        warnings.append(f"{asked}: {phrase!r} is not in the sources, so it is not given")
    else:
        warnings.append(asked)
        numbers = list(dict.fromkeys(re.findall(r"\d+", bare)))  # "[1] [3]" and "[1, 3]" alike: one marker
        text = f"{phrase} [{', '.join(numbers)}]."
    yield AnswerText(text)
    return text


def _warnings(parts: PromptParts) -> list[str]:
    warnings = []
    if parts.dropped_sources:
        warnings.append(f"{parts.dropped_sources} retrieved sources did not fit the context window")
    if parts.dropped_turns:
        warnings.append(f"the {parts.dropped_turns} oldest conversation turns were dropped to fit")
    if parts.question_trimmed:
        warnings.append("the question was trimmed to fit the context window")
    return warnings


def _verifier(path: str | None, generator: Generator) -> Any:
    """The verify strategy's learned verifier, if asked for: a probe over the generator's hidden
    states, or a preference-trained adapter scoring program candidates by its implicit reward."""
    if not path:
        return None
    from dca.reasoning.program import FENCE, program_messages
    from dca.reasoning.verify import program_response
    from dca.runtime.preference import PreferenceScorer, PreferenceVerifier, read_verifier
    from dca.runtime.probe import ProbeScorer

    verifier = read_verifier(Path(path))
    if isinstance(verifier, PreferenceVerifier):
        # as `dca train dpo` scored a program: the opening fence is part of the prompt, the rest
        # of the program (and the end of turn) is the response; no worked examples (it never saw them)

        def prompt_for(question: str) -> str:
            return generator.chat_prompt(program_messages([{"role": "user", "content": question}])) + FENCE

        def response_of(solution: str) -> str | None:
            response = program_response(solution)
            return response[len(FENCE) :] if response else None

        return PreferenceScorer(generator, verifier, prompt_for=prompt_for, response_of=response_of)  # type: ignore[arg-type]
    return ProbeScorer(generator, verifier)  # type: ignore[arg-type]
