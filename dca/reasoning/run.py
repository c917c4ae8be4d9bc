"""A reasoning run: strategies over the generation interface, as an iterator of events.

``reason(...)`` returns a ``ReasoningRun``. Iterating it drives the model; not iterating it
pauses the run between two tokens (nothing is computed meanwhile and the KV cache is kept).
``add_context(note)`` puts a note into the current thought at the next step, and
``cancel()`` ends the run. The last event is ``Finished`` with the ``ReasoningResult``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

from dca.choices import VOTING
from dca.errors import ReasoningError
from dca.reasoning.answers import extract_answer
from dca.reasoning.certainty import is_sure
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import Event, Finished, ReasoningResult, Sample, SampleFinished, VoteTally
from dca.reasoning.program import FENCE, program_messages, solve_with_program
from dca.reasoning.sandbox import SandboxConfig
from dca.reasoning.think import (
    CLOSE,
    OPEN,
    SEARCH_INSTRUCTION,
    THINK_INSTRUCTION,
    Controls,
    Retrieve,
    SourceBook,
    think,
)
from dca.reasoning.verify import Scorer, solution_text
from dca.reasoning.vote import is_decided, leader, tally
from dca.reasoning.weigh import Weights, weighted_decided, weighted_tally
from dca.runtime.generation import Completion, GenerationConfig, Generator


class ReasoningRun:
    """An iterator of typed events that can be paused, given context, resumed and cancelled."""

    def __init__(self, events: Iterator[Event], controls: Controls) -> None:
        self._events = events
        self.controls = controls
        self.result: object = None

    def __iter__(self) -> ReasoningRun:
        return self

    def __next__(self) -> Event:
        if self.controls.cancelled:
            raise StopIteration
        event = next(self._events)
        if isinstance(event, Finished):
            self.result = event.result
        return event

    def add_context(self, note: str) -> None:
        """Add ``note`` to the thinking at the next step (the run resumes when iterated)."""
        if not note.strip():
            raise ReasoningError("the note is empty; type some context to add")
        self.controls.add_note(note)

    def cancel(self) -> None:
        """Stop the run; generation in progress is closed and nothing more is computed."""
        self.controls.cancelled = True
        close = getattr(self._events, "close", None)
        if close is not None:
            close()


def with_instructions(messages: list[dict[str, str]], config: ReasoningConfig, searching: bool) -> list[dict[str, str]]:
    """The messages with the thinking (and search) instructions added to the system prompt."""
    extra = THINK_INSTRUCTION
    if searching:
        extra += " " + SEARCH_INSTRUCTION.format(n=config.max_searches)
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"] + "\n" + extra}, *messages[1:]]
    return [{"role": "system", "content": extra}, *messages]


def reason(
    generator: Generator,
    messages: list[dict[str, str]],
    config: ReasoningConfig,
    *,
    question: str,
    gen: GenerationConfig | None = None,
    retrieve: Retrieve | None = None,
    scorer: Scorer | None = None,
    sandbox: SandboxConfig | None = None,
    controls: Controls | None = None,
) -> ReasoningRun:
    """Start reasoning about the conversation ``messages`` (the last user turn holds ``question``)."""
    if not config.thinks:
        raise ReasoningError("the direct strategy does not reason; answer it with the pipeline's single pass")
    controls = controls or Controls()
    gen = gen or GenerationConfig()
    events = _strategy(generator, messages, config, question, gen, retrieve, scorer, sandbox, controls)
    return ReasoningRun(events, controls)


def _strategy(
    generator: Generator,
    messages: list[dict[str, str]],
    config: ReasoningConfig,
    question: str,
    gen: GenerationConfig,
    retrieve: Retrieve | None,
    scorer: Scorer | None,
    sandbox: SandboxConfig | None,
    controls: Controls,
) -> Iterator[Event]:
    book = SourceBook()
    searching = retrieve is not None and config.max_searches > 0
    prompt = generator.chat_prompt(with_instructions(messages, config, searching))
    greedy = replace(gen, temperature=0.0, seed=config.seed)
    n = config.n_samples if config.strategy in VOTING else 1
    kinds = _kinds(config.verify_on if config.strategy == "verify" else config.strategy, n)
    # The first sample of each kind is decoded greedily: the vote starts from the single pass's
    # answer (the strongest one sample) and the samples drawn after it add diversity.
    greedy_ks = {kinds.index(kind) for kind in set(kinds)} if config.greedy_first or n == 1 else set()
    samples: list[Sample] = []
    order: list[str] = []

    def draw(k: int, draft: Completion | None) -> Iterator[Event | Sample]:
        sampled = greedy if k in greedy_ks else replace(gen, temperature=config.temperature, seed=config.seed + k)
        if kinds[k] == "program":
            return solve_with_program(
                generator, messages, config, gen=sampled, sample=k, controls=controls, sandbox=sandbox, draft=draft
            )
        return think(
            generator,
            prompt,
            config,
            gen=sampled,
            sample=k,
            n_samples=n,
            retrieve=retrieve,
            book=book,
            controls=controls,
            draft=draft,
        )

    drafts = (
        first_passes(generator, prompt, messages, config, gen, kinds, greedy_ks)
        if not config.adaptive and n > 1
        else {}
    )

    def decided(counts: Counter[str]) -> bool:
        sure = config.sure_above
        if len(samples) == 1 and 0 in greedy_ks and sure is not None and is_sure(samples[0], question, sure):
            return True  # the greedy single pass is trusted alone
        if config.strategy == "verify":  # the weighted vote (execution facts; the verifier scores at the end)
            scores = weighted_tally(samples, question, Weights())
            return weighted_decided(scores, len(samples), n, threshold=config.threshold, min_samples=config.min_samples)
        return is_decided(counts, order, len(samples), n, threshold=config.threshold, min_samples=config.min_samples)

    for k in range(n):
        counts = tally(s.final for s in samples)
        if config.adaptive and samples and decided(counts):
            break
        sample = None
        for item in draw(k, drafts.get(k)):
            if isinstance(item, Sample):
                sample = item
            else:
                yield item
        assert sample is not None
        samples.append(sample)
        if sample.final and sample.final not in order:
            order.append(sample.final)
        yield SampleFinished(k, n, sample.final, sample.kind, sample.tokens)
        if n > 1:
            counts = tally(s.final for s in samples)
            top, votes = leader(counts, order)
            yield VoteTally(dict(counts), len(samples), n, top, votes / len(samples), decided(counts))
    yield Finished(_decide(config, samples, order, question, scorer, book))


def _kinds(strategy: str, n: int) -> list[str]:
    """The kind of each of ``n`` samples (verify passes what it draws: cot, program or mix)."""
    if strategy in ("program", "program-vote"):
        return ["program"] * n
    if strategy == "mix":  # programs first: they are the cheapest strong signal on a CPU
        return ["program" if k % 2 == 0 else "cot" for k in range(n)]
    return ["cot"] * n


def first_passes(
    generator: Generator,
    prompt: str,
    messages: list[dict[str, str]],
    config: ReasoningConfig,
    gen: GenerationConfig,
    kinds: list[str],
    greedy_ks: set[int] = frozenset(),  # type: ignore[assignment]
) -> dict[int, Completion]:
    """The first pass (thought or program) of every sampled (not greedy) sample ``k``, from one
    batched ``sample`` call per kind: fixed-N votes and trace collection. ``prompt`` is the
    thinking prompt, ``messages`` the conversation (programs get their own prompt)."""
    drafts: dict[int, Completion] = {}
    sampled = replace(gen, temperature=config.temperature, seed=config.seed)
    for kind in ("cot", "program"):
        ks = [k for k, kk in enumerate(kinds) if kk == kind and k not in greedy_ks]
        if not ks:
            continue
        if kind == "cot":
            head, limits = prompt + OPEN, replace(sampled, max_tokens=config.budget, stop=(CLOSE,))
        else:
            head = generator.chat_prompt(program_messages(messages)) + FENCE
            limits = replace(sampled, max_tokens=config.program_tokens, stop=("```",))
        for k, completion in zip(ks, generator.sample(head, len(ks), limits), strict=True):
            drafts[k] = completion
    return drafts


def _decide(
    config: ReasoningConfig,
    samples: list[Sample],
    order: list[str],
    question: str,
    scorer: Scorer | None,
    book: SourceBook,
) -> ReasoningResult:
    counts = tally(s.final for s in samples)
    majority, _ = leader(counts, order)
    chosen_final = majority
    if config.strategy == "verify" and len(counts) > 1:  # a unanimous vote needs no verifier
        if scorer is not None:
            for s in samples:
                if s.final:
                    s.score = scorer.score(question, solution_text(s))
        scores = weighted_tally(samples, question, Weights())
        best = max(scores.values())
        chosen_final = next(a for a in order if scores.get(a) == best)  # a tie: the answer seen first
    chosen = next((s for s in samples if s.final == chosen_final and chosen_final), samples[0])
    answer = chosen.answer if chosen.kind == "cot" else _program_answer(chosen)
    return ReasoningResult(
        strategy=config.strategy,
        answer=answer,
        final=chosen.final,
        reasoning=chosen.reasoning,
        samples=samples,
        votes=dict(counts),
        confidence=(counts.get(chosen_final, 0) / len(samples)) if chosen_final else 0.0,
        majority=majority,
        sources=list(book.hits),
        searches=[q for s in samples for q in s.searches],
        budget=config.budget,
    )


def _program_answer(sample: Sample) -> str:
    if not sample.answer:
        return f"The program did not give an answer ({sample.program_error})."
    final = extract_answer(sample.answer)
    return f"The answer is {final or sample.answer}."
