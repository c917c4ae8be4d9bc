"""Answer extraction: the tricky cases eval, voting and rewards all depend on."""

from __future__ import annotations

import pytest

from dca.reasoning import answers_match, extract_answer, normalize_answer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
        ("#### 1,234", "1234"),
        ("So she pays $18.00 in total.", "18"),
        ("The answer is 42.", "42"),
        ("Final answer: 3.50 dollars", "3.5"),
        ("The answer is: 15 apples", "15"),
        ("Therefore the answer is -7", "-7"),
        ("We get \\boxed{\\frac{1}{2}}.", "1/2"),
        ("\\boxed{\\dfrac{14}{3}}", "14/3"),
        ("so $\\boxed{10\\%}$", "10"),
        ("\\boxed{x = 5}", "5"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "(3,(\\pi)/(2))"),
        ("It takes 90 minutes.", "90"),
        ("There are 2,500,000 people.", "2500000"),
        ("no numbers here", ""),
        ("", ""),
        ("The temperature is 30 degrees.", "30"),
        ("1. First 3 apples\n2. Then 5 more\nThe answer is 8", "8"),
    ],
)
def test_extract_answer(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize(
    ("prediction", "reference", "same"),
    [
        ("The answer is 1,000.", "1000", True),
        ("\\boxed{0.5}", "\\frac{1}{2}", True),
        ("\\boxed{6/8}", "\\frac34", True),
        ("#### 18", "18.0", True),
        ("The answer is 17.", "18", False),
        ("", "0", False),
        ("\\boxed{\\sqrt{2}}", "\\sqrt2", True),
    ],
)
def test_answers_match(prediction: str, reference: str, same: bool) -> None:
    assert answers_match(prediction, reference) is same


def test_normalize_is_idempotent() -> None:
    for raw in ["$1,000", "\\dfrac{6}{8}", "x = 5.", "12 km", "(1, 2)"]:
        once = normalize_answer(raw)
        assert normalize_answer(once) == once
