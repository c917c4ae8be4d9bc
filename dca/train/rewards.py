"""Rewards as plain functions over completions: correctness, format and length.

Correctness goes through ``dca.reasoning.answers`` (the one answer-extraction module), so a
trace is rewarded exactly as eval scores it.
"""

from __future__ import annotations

from dca.reasoning.answers import answers_match
from dca.reasoning.think import CLOSE


def correctness_reward(finals: list[str], answer: list[str], **_: object) -> list[float]:
    """1.0 where the final answer equals the reference, else 0.0.

    >>> correctness_reward(["18", "17", ""], ["18", "18", "18"])
    [1.0, 0.0, 0.0]
    """
    return [float(bool(f) and answers_match(f, a)) for f, a in zip(finals, answer, strict=True)]


def format_reward(completions: list[str], kinds: list[str], **_: object) -> list[float]:
    """1.0 where a completion has its format's shape: a closed thinking span followed by an
    answer (cot), or a fenced program (program); else 0.0.

    >>> format_reward(["a b\\n</think>\\n\\nThe answer is 4.", "no span"], ["cot", "cot"])
    [1.0, 0.0]
    """
    out = []
    for text, kind in zip(completions, kinds, strict=True):
        if kind == "program":
            ok = text.startswith("```python") and text.rstrip().endswith("```")
        else:
            ok = CLOSE in text and bool(text.split(CLOSE, 1)[1].strip())
        out.append(float(ok))
    return out


def length_penalty(tokens: list[int], *, budget: int, weight: float = 0.2, **_: object) -> list[float]:
    """A penalty in [-weight, 0] growing with length: short traces are fast traces on a CPU.

    >>> length_penalty([0, 256, 512, 900], budget=512)
    [0.0, -0.1, -0.2, -0.2]
    """
    return [-weight * min(1.0, t / budget) if t > 0 else 0.0 for t in tokens]


def total_reward(
    finals: list[str], answer: list[str], completions: list[str], kinds: list[str], tokens: list[int], *, budget: int
) -> list[float]:
    """Correctness + 0.1 x format + length penalty (the RL reward; collect keeps correct traces)."""
    parts = zip(
        correctness_reward(finals, answer),
        format_reward(completions, kinds),
        length_penalty(tokens, budget=budget),
        strict=True,
    )
    return [round(c + 0.1 * f + p, 4) for c, f, p in parts]
