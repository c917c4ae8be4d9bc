"""The grounding judge: before a word of the answer is written, do the sources hold it at all?

The judge is a linear probe on the model's hidden state at the last token of the answer's
prompt: what the model knows of the sources and the question before it answers, read in the
same evaluation the answer then reuses (``StateReader.prompt_state``: one token more). Below its
threshold the answer is "not in the sources", with the sources that were read; the model is not
asked to guess. Where the hidden state cannot be read (a model on an OpenAI-compatible server)
the best source's cosine similarity judges alone: it catches off-topic questions, not retrieval
gaps. Both thresholds were chosen on the trust benchmark's calibration split
(benchmarks/bench_trust.py, lab/prompt_probe.py) and travel in the judge's file with the probe:
a ``dca-probe-1`` file whose meta says it reads ``answerable`` at ``prompt`` and holds
``threshold``, ``min_similarity`` and the ``embedder`` the similarity was measured with
(another embedder's similarities are not compared with it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from dca.errors import ConfigError
from dca.reasoning.events import Event

if TYPE_CHECKING:
    from dca.askconfig import AskConfig
    from dca.config import Paths
    from dca.pipeline.stages import Run
    from dca.runtime.generation import StateReader

READS = "answerable"  # a judge probe's meta["reads"]


@dataclass(frozen=True)
class Verdict:
    """What the judge found: ``answerable`` False means the answer was refused before it was written."""

    answerable: bool
    score: float | None  # the probe's P(the sources hold the answer); None: not read (no hidden states)
    threshold: float
    similarity: float | None  # the best source's cosine similarity
    min_similarity: float | None  # None: not compared (the probe judged, or another embedder)
    judge: str  # the judge file's name

    def to_json(self) -> dict[str, Any]:
        return {
            "verdict": "answerable" if self.answerable else "not in the sources",
            "score": None if self.score is None else round(self.score, 4),
            "threshold": round(self.threshold, 4),
            "similarity": None if self.similarity is None else round(self.similarity, 4),
            "min_similarity": self.min_similarity,
            "judge": self.judge,
        }


@dataclass(frozen=True)
class Judge:
    """A judge file loaded: the probe and its thresholds."""

    name: str
    probe: Any  # dca.runtime.probe.Probe
    threshold: float
    min_similarity: float
    embedder: str

    @classmethod
    def load(cls, path: Path) -> Judge:
        """A judge file; a damaged one, or a probe of another kind, is a one-line ConfigError."""
        from dca.runtime.probe import Probe

        probe = Probe.load(path, what="grounding judge")
        meta = probe.meta
        if meta.get("reads") != READS or meta.get("position") != "prompt":
            raise ConfigError(f"{path} is not a grounding judge (it scores something else); give a judge's file")
        try:
            threshold, floor = float(meta["threshold"]), float(meta.get("min_similarity", 0.0))
            embedder = str(meta.get("embedder", ""))
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"grounding judge {path} is damaged (its thresholds); make it again") from None
        if not (0 <= threshold <= 1 and -1 <= floor <= 1) or math.isnan(threshold + floor):
            raise ConfigError(f"grounding judge {path} is damaged (thresholds out of range); make it again")
        return cls(path.name.removesuffix(".json"), probe, threshold, floor, embedder)

    def verdict(self, run: Run) -> Verdict:
        """Judge ``run``'s prompt (its sources given): read the state, compare both readings."""
        assert run.parts is not None
        score = None
        if run.generator.reads_hidden_states:
            prompt = run.generator.chat_prompt(run.parts.messages)
            state = cast("StateReader", run.generator).prompt_state(prompt, run.gen)
            score = self.probe.score(state, "grounding judge")
        # the similarity judges only without the probe, and only its own embedder's
        floor = self.min_similarity if score is None and run.embedder in (None, self.embedder) else None
        similar = floor is None or run.best_similarity is None or run.best_similarity >= floor
        return Verdict(
            answerable=similar and (score is None or score >= self.threshold),
            score=score,
            threshold=self.threshold,
            similarity=run.best_similarity,
            min_similarity=floor,
            judge=self.name,
        )


def choose_judge(config: AskConfig, model: str, paths: Paths) -> Judge | None:
    """The catalog's grounding judge for the generator ``model`` when ``check`` is on (None: off,
    or no judge is made for this model); a damaged judge file is a one-line ConfigError."""
    if not config.check:
        return None
    from dca.runtime.adapters import default_judge

    path = default_judge(model, paths)
    return Judge.load(path) if path is not None else None


def judge_sources(run: Run) -> Iterator[Event]:
    """The judge stage (after the prompt, before the answer): a direct answer over sources is
    judged when the run has a judge (``check`` on); a refusal sets ``run.refused``, and the
    pipeline then answers "not in the sources" without asking the model."""
    answer = run.answer
    assert answer is not None and run.parts is not None
    if run.judge is None or run.config.reasoning.thinks or not run.parts.sources:
        return
    verdict = run.judge.verdict(run)
    answer.judge = verdict.to_json()
    if not verdict.answerable:
        run.refused = True
        why = (  # without a score the similarity judged
            f"best source similarity {verdict.similarity:.2f} < {verdict.min_similarity}"
            if verdict.score is None
            else f"the judge's score {verdict.score:.2f} < {verdict.threshold:.2f}"
        )
        answer.warnings.append(f"the sources read do not seem to hold the answer ({why}): not answered")
    yield from ()
