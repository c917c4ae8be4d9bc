"""Self-consistency: sample several solutions and vote on their final answers.

Adaptive voting stops as soon as drawing more samples cannot change the winner, or once
the leader's share passes a threshold: on a CPU, where N samples cost nearly N times one,
that is what makes voting affordable.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def tally(finals: Iterable[str]) -> Counter[str]:
    """Votes per answer; samples without an answer do not vote.

    >>> dict(tally(["4", "4", "", "5"]))
    {'4': 2, '5': 1}
    """
    return Counter(f for f in finals if f)


def leader(counts: Counter[str], order: list[str]) -> tuple[str, int]:
    """The answer with the most votes; a tie goes to the answer that appeared first."""
    if not counts:
        return "", 0
    best = max(counts.values())
    first = next(f for f in order if counts.get(f) == best)
    return first, best


def is_decided(
    counts: Counter[str], order: list[str], drawn: int, n_max: int, *, threshold: float, min_samples: int
) -> bool:
    """Can the vote stop? True when the leader cannot be overtaken by the samples left, or when
    at least ``min_samples`` are drawn and the leader's share of them reaches ``threshold``.

    >>> is_decided(Counter({"4": 3}), ["4"], 3, 5, threshold=1.0, min_samples=9)
    True
    >>> is_decided(Counter({"4": 2, "5": 1}), ["4", "5"], 3, 5, threshold=0.9, min_samples=2)
    False
    """
    if drawn >= n_max:
        return True
    answer, votes = leader(counts, order)
    if not answer:
        return False
    second = max((v for f, v in counts.items() if f != answer), default=0)
    if votes > second + (n_max - drawn):
        return True
    return drawn >= min_samples and votes / drawn >= threshold
