"""The one answering pipeline: ``ask``, ``chat``, ``eval``, ``serve`` and the API all come through here.

A question goes through named stages (dca/pipeline/stages.py, dca/pipeline/checks.py):
retrieve -> gate -> prompt -> judge -> generate (direct) or reason (a thinking strategy) -> checks
(bare-citation retry, support check, claim check, citation repointing) -> an ``Answer`` with sources,
citations, token counts and timings. The pipeline yields events while it works; its last item
is ``Finished(answer)``. An experiment that must change a step passes its own ``Stages``
(``dataclasses.replace(STAGES, checks=...)``) rather than patching a function.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dca.askconfig import AskConfig
from dca.config import Paths
from dca.pipeline.checks import bare_citation_retry, claim_check, repoint_cited, support_check
from dca.pipeline.judge import Judge, Verdict, judge_sources
from dca.pipeline.result import SCHEMA_VERSION, Answer, Source
from dca.pipeline.stages import (
    Retriever,
    Run,
    Stage,
    StopCut,
    finish_answer,
    fit_prompt,
    generate_answer,
    not_in_sources,
    reason_answer,
    retrieve_sources,
    similarity_gate,
    start_run,
)
from dca.reasoning.events import Event, Finished
from dca.reasoning.think import Controls
from dca.runtime.generation import Generator

__all__ = [
    "SCHEMA_VERSION",
    "STAGES",
    "Answer",
    "AskConfig",
    "Judge",
    "Retriever",
    "Run",
    "Source",
    "Stage",
    "Stages",
    "StopCut",
    "Verdict",
    "bare_citation_retry",
    "claim_check",
    "fit_prompt",
    "generate_answer",
    "judge_sources",
    "reason_answer",
    "repoint_cited",
    "retrieve_sources",
    "run_pipeline",
    "similarity_gate",
    "support_check",
]


@dataclass(frozen=True, kw_only=True)
class Stages:
    """The answering path as named steps, each a ``Stage`` (a function of the ``Run`` that
    yields its events); swap one with ``dataclasses.replace(STAGES, name=...)``."""

    retrieve: Stage = retrieve_sources  # the sources given up front
    gate: Stage = similarity_gate  # none shown when none is similar enough (min_similarity)
    prompt: Stage = fit_prompt  # the messages, fitted to the context window
    judge: Stage = judge_sources  # "not in the sources" before answering, when the judge finds so (check)
    generate: Stage = generate_answer  # the direct answer (one pass)
    reason: Stage = reason_answer  # a thinking strategy's answer
    checks: tuple[Stage, ...] = (bare_citation_retry, support_check, claim_check, repoint_cited)  # in order


STAGES = Stages()


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
    stages: Stages = STAGES,
    embedder: str | None = None,
) -> Iterator[Event]:
    """Answer ``question``; ``retrieve`` (question -> hits) is None for closed-book answers;
    ``embedder`` names the index's embedder (the judge compares similarities only from its own)."""
    run = start_run(
        generator,
        question,
        config=config,
        paths=paths,
        retrieve=retrieve,
        index_name=index_name,
        history=history,
        controls=controls,
        embedder=embedder,
    )
    yield from stages.retrieve(run)
    yield from stages.gate(run)
    yield from stages.prompt(run)
    yield from stages.judge(run)
    if run.refused or run.nothing_retrieved:
        yield from not_in_sources(run)
    elif config.reasoning.thinks:
        yield from stages.reason(run)
    else:
        yield from stages.generate(run)
    for check in stages.checks:
        yield from check(run)
    yield Finished(finish_answer(run))
