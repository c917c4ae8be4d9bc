"""The checks after an answer is written: the bare-citation retry, the support check, the
claim check and citation repointing (``Stages.checks``, in that order), and the verify strategy's learned
verifier that the reason stage loads."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from collections.abc import Generator as Steps
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from dca.answer import (
    NO_ANSWER,
    WEAK_COVERAGE,
    PromptParts,
    content_words,
    coverage,
    found_share,
    is_refusal,
    repoint_citations,
    says_nothing,
    sentences,
    strip_citations,
    support_messages,
)
from dca.knowledge.retrieval import STOPWORDS
from dca.pipeline.stages import Run, add_pass, prompt_parts, single_pass
from dca.reasoning.events import AnswerText, Event
from dca.runtime.generation import Completion, GenerationConfig, Generator

if TYPE_CHECKING:
    from dca.reasoning.verify import Scorer
    from dca.runtime.probe import GroundedScorer

_YES_NO = frozenset({"yes", "no"})
# (generator, the answer's messages, the answer, its generation settings) -> P(the sources state it)
SupportScore = Callable[[Generator, list[dict[str, str]], str, GenerationConfig], float]


def bare_citation_retry(run: Run) -> Iterator[Event]:
    """A cited answer that is citation markers alone is asked again for the phrase (``say_it``);
    any other held-back answer is let go."""
    held, run.held = run.held, None
    if held is not None and run.text and says_nothing(run.text):
        assert run.parts is not None and run.answer is not None
        run.text = yield from say_it(run, run.parts, run.text, run.answer.warnings)
    elif held:
        yield from held


def support_check(run: Run, score: SupportScore | None = None) -> Iterator[Event]:
    """The grounded check of a direct answer (asked for with ``min_support``): the model's
    P(the sources state it) (``score``: another measure of it, for experiments:
    ``functools.partial(support_check, score=...)``); below the minimum the answer becomes
    "not in the sources"."""
    config, answer = run.config, run.answer
    assert answer is not None and run.parts is not None
    text = run.text
    if config.reasoning.thinks or config.min_support is None or not run.parts.sources or not text or is_refusal(text):
        return
    answer.support = (score or support_score)(run.generator, run.parts.messages, text, run.gen)
    if answer.support < config.min_support:
        answer.unsupported_text, run.text = text, NO_ANSWER
        answer.warnings.append(
            f"the model did not find its answer stated in the sources (support {answer.support:.2f} "
            f"< {config.min_support}): answered that the sources do not contain it"
        )
    yield from ()


# A sentence is dropped when the sources hold less than this share of its new content words:
# on the trust benchmark's evaluation split (lab/claim_check_table.py) a whole answer below it
# was wrong every time (3 of 40 retrieval gaps, 9 of 29 off-topic answers) and no right one was.
CLAIM_FOUND = 0.5


def claim_check(run: Run) -> Iterator[Event]:
    """The claim check of a direct answer over sources (``check``): a sentence whose new content
    (words the question does not have) the sources do not hold is dropped; an answer with no
    sentence left becomes "not in the sources" (the model's answer kept in ``unsupported_text``).
    Words, not a model's judgement: it catches names and numbers from the model's own memory."""
    config, answer = run.config, run.answer
    assert answer is not None and run.parts is not None
    text = run.text
    if not config.check or config.reasoning.thinks or not run.parts.sources or not text or is_refusal(text):
        return
    given = [hit.chunk.text for hit in run.parts.sources]
    kept: list[str] = []
    dropped: list[str] = []
    for sentence in sentences(text):
        found = found_share(sentence, run.question, given, STOPWORDS | _YES_NO)  # "yes" is an answer, not a claim
        (kept if found >= CLAIM_FOUND else dropped).append(sentence)
    if not dropped:
        return
    if kept:
        run.text = " ".join(kept)
        answer.warnings.append(
            f"dropped {len(dropped)} sentence(s) whose words the sources do not hold: " + " ".join(dropped)
        )
    else:
        answer.unsupported_text, run.text = text, NO_ANSWER
        answer.warnings.append("the sources do not hold the answer's words: answered that they do not contain it")
    yield from ()


def repoint_cited(run: Run) -> Iterator[Event]:
    """A citation whose source lacks its claim moves to the source that holds it (``repoint_citations``)."""
    answer = run.answer
    assert answer is not None
    if run.config.repoint_citations and answer.sources and run.text and not is_refusal(run.text):
        run.text, answer.citations_moved = repoint_citations(run.text, [s.text for s in answer.sources], STOPWORDS)
    yield from ()


def say_it(run: Run, parts: PromptParts, bare: str, warnings: list[str]) -> Steps[Event, None, str]:
    """The answer to a question the model answered with citation markers alone (``bare``): the
    same sources asked with the short style's instruction (the prompt up to the instruction is
    the one just read, so its KV cache is reused), and the phrase given with ``bare``'s markers.
    A refusal stays a refusal; nothing at all becomes NO_ANSWER, and so does a phrase that no
    source holds (at most WEAK_COVERAGE of its content words in any: asked for a phrase from the
    sources, the model answered from elsewhere, e.g. from its own memory of the world); a plain
    "Yes" or "No" has no such words and is given as it is."""
    short = prompt_parts(
        run, run.question, parts.sources, replace(run.config, style="short"), run.system, run.gen.max_tokens
    )
    fresh = Completion()
    for item in single_pass(run.generator, short.messages, run.gen, fresh):
        if not isinstance(item, AnswerText):
            yield item  # the phrase itself streams below, with its markers
    add_pass(run.completion, fresh)
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


def support_score(generator: Generator, messages: list[dict[str, str]], text: str, gen: GenerationConfig) -> float:
    """P("Yes") that the sources state ``text`` (the prompt before it is still in the KV cache)."""
    check = replace(gen, temperature=0.0, max_tokens=1, stop=())
    return generator.choice_probabilities(
        generator.chat_prompt(support_messages(messages, text)), ["Yes", "No"], check
    )[0]


def probe_support(grounded: GroundedScorer) -> SupportScore:
    """The support as a grounded-check probe scores the hidden state read in the check's own pass,
    instead of P("Yes"): an experiment's ``score`` for ``support_check`` (the probe did not beat
    P("Yes"): lab/NOTEBOOK.md, "Grounded or not", step two)."""

    def score(generator: Generator, messages: list[dict[str, str]], text: str, gen: GenerationConfig) -> float:
        check = replace(gen, temperature=0.0, max_tokens=1, stop=())
        prompt = generator.chat_prompt(support_messages(messages, text))
        return float(grounded.score(generator.chat_prompt(messages), text, prompt, check))

    return score


def load_verifier(path: str | None, generator: Generator) -> Scorer | None:
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
