"""Metrics: SQuAD-style exact match and F1, retrieval recall."""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


def normalize_text(text: str) -> str:
    """The official SQuAD normalization: lower case, no punctuation, articles or extra spaces.

    >>> normalize_text("The  Eiffel Tower!")
    'eiffel tower'
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    return float(any(normalize_text(prediction) == normalize_text(a) for a in answers))


def f1_score(prediction: str, answers: Sequence[str]) -> float:
    """Best token-overlap F1 of ``prediction`` against any answer.

    >>> round(f1_score("in the city of Paris", ["Paris"]), 3)
    0.4
    """
    best = 0.0
    pred_tokens = normalize_text(prediction).split()
    for answer in answers:
        gold_tokens = normalize_text(answer).split()
        common = Counter(pred_tokens) & Counter(gold_tokens)
        overlap = sum(common.values())
        if not pred_tokens or not gold_tokens:
            best = max(best, float(pred_tokens == gold_tokens))
        elif overlap:
            precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
            best = max(best, 2 * precision * recall / (precision + recall))
    return best


def recall_at_k(retrieved: Sequence[int], relevant: Sequence[int], k: int) -> float:
    """Fraction of ``relevant`` items found in the first ``k`` retrieved."""
    if not relevant:
        return 0.0
    top = set(retrieved[:k])
    return sum(1 for r in relevant if r in top) / len(relevant)
