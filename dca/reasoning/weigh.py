"""Weighted voting: one score per answer from the vote, a verifier's P(right) and execution facts.

A sample's weight is its verifier score (1.0 without a verifier) times a penalty for each
execution fact that marks a likely wrong answer: the program raised or printed nothing (no
answer to weigh at all), a non-integer where the question counts things, a negative amount.
An answer's score is the sum of its samples' weights: with every weight 1 it is the plain
majority vote, so the verifier and the facts can only re-rank answers the vote ties or nearly
ties, or lift a minority answer the verifier is sure of over a majority it doubts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dca.reasoning.events import Sample

_COUNTS = re.compile(r"\bhow many\b", re.IGNORECASE)
_AMOUNTS = re.compile(r"\b(how (?:much|many|long|far|old)|cost|pay|paid|spend|spent|earn|left|total)\b", re.IGNORECASE)
_NEGATIVE_ASKED = re.compile(r"\b(differen|change in|loss|lost|decrease|below|negative|temperature)\w*", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class Weights:
    """How much each execution fact lowers a sample's weight (a factor in [0, 1])."""

    non_integer_count: float = 0.3  # "how many ..." answered with a fraction
    negative_amount: float = 0.3  # a negative number where an amount is asked


def execution_facts(question: str, sample: Sample) -> list[str]:
    """The facts about ``sample`` that mark it as likely wrong.

    >>> s = Sample(kind="program", reasoning="print(2.5)", answer="2.5", final="2.5")
    >>> execution_facts("How many apples are left?", s)
    ['non_integer_count']
    >>> execution_facts("How much money is left?", Sample(kind="program", reasoning="", answer="-4", final="-4"))
    ['negative_amount']
    >>> execution_facts("What is the temperature change?", Sample(kind="cot", reasoning="", answer="", final="-4"))
    []
    """
    facts: list[str] = []
    if not sample.final:
        return ["no_answer" if not sample.program_error else "program_failed"]
    try:
        value = float(sample.final.replace(",", ""))
    except ValueError:
        return facts  # a fraction or an expression: nothing to check
    if _COUNTS.search(question) and value != int(value):
        facts.append("non_integer_count")
    if value < 0 and _AMOUNTS.search(question) and not _NEGATIVE_ASKED.search(question):
        facts.append("negative_amount")
    return facts


def sample_weight(facts: Sequence[str], score: float | None, weights: Weights) -> float:
    """A sample's vote: its verifier score (1.0 without one) times a factor per fact."""
    if "no_answer" in facts or "program_failed" in facts:
        return 0.0
    weight = 1.0 if score is None else score
    for fact in facts:
        weight *= getattr(weights, fact, 1.0)
    return weight


def weighted_tally(samples: Sequence[Sample], question: str, weights: Weights) -> dict[str, float]:
    """Each answer's summed weight (answers in the order they first appeared).

    >>> a = Sample(kind="program", reasoning="", answer="3", final="3", score=0.9)
    >>> b = Sample(kind="program", reasoning="", answer="4", final="4", score=0.2)
    >>> weighted_tally([b, b, a], "How many?", Weights())
    {'4': 0.4, '3': 0.9}
    """
    scores: dict[str, float] = {}
    for sample in samples:
        weight = sample_weight(execution_facts(question, sample), sample.score, weights)
        if sample.final:
            scores[sample.final] = round(scores.get(sample.final, 0.0) + weight, 6)
    return scores


def weighted_decided(scores: dict[str, float], drawn: int, n_max: int, *, threshold: float, min_samples: int) -> bool:
    """Can the weighted vote stop? When the samples left (each weighing at most 1) cannot
    overtake the leader, or when at least ``min_samples`` are drawn and the leader holds
    ``threshold`` of the weight drawn so far.

    >>> weighted_decided({"4": 1.8}, 2, 5, threshold=0.9, min_samples=2)
    True
    >>> weighted_decided({"4": 0.9, "5": 0.8}, 2, 5, threshold=0.9, min_samples=2)
    False
    """
    if drawn >= n_max:
        return True
    if not scores:
        return False
    ranked = sorted(scores.values(), reverse=True)
    best, second = ranked[0], (ranked[1] if len(ranked) > 1 else 0.0)
    if best > second + (n_max - drawn):
        return True
    total = sum(ranked)
    return drawn >= min_samples and total > 0 and best / total >= threshold
