"""Final-answer extraction and comparison: the one place eval, voting, verification and rewards use.

``extract_answer`` finds the final answer in a model's text (``\\boxed{}``, ``####``, "the
answer is", "Final answer:", else the last number) and ``normalize_answer`` puts it in a
canonical form (thousands separators, currency, units, trailing punctuation, LaTeX
fractions and spacing), so ``answers_match`` can compare a prediction with a reference.
"""

from __future__ import annotations

import re
from fractions import Fraction

_NUMBER = r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+"
_NUMBER_RE = re.compile(_NUMBER)
_MARKERS = re.compile(
    r"(?:final answer|the answer is|answer is|answer:|result is|therefore,? the answer is)\s*[:=]?\s*",
    re.IGNORECASE,
)
_UNITS = re.compile(
    r"\s*(?:dollars?|cents?|usd|euros?|percent|%|degrees?|°|units?|meters?|metres?|m|km|cm|kg|g|"
    r"hours?|hrs?|minutes?|mins?|seconds?|secs?|days?|weeks?|months?|years?|miles?|feet|ft|inches?|"
    r"pounds?|lbs?|ounces?|oz|liters?|litres?|gallons?|people|students?|apples?|items?|points?)\.?$",
    re.IGNORECASE,
)


def _boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), with nested braces."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        rest = text[start:].split(maxsplit=1)
        return rest[1].split("$")[0] if len(rest) > 1 else None
    depth = 0
    for i in range(brace, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : i]
    return None


def extract_answer(text: str) -> str:
    """The final answer in ``text``, normalized; "" when there is none.

    >>> extract_answer("She has 3 + 4 = 7 apples.\\n#### 7")
    '7'
    >>> extract_answer("So the total is $1,250.00.")
    '1250'
    >>> extract_answer("Thus \\\\boxed{\\\\frac{3}{4}}.")
    '3/4'
    >>> extract_answer("The answer is 12 dollars.")
    '12'
    """
    if not text:
        return ""
    boxed = _boxed(text)
    if boxed is not None:
        return normalize_answer(boxed)
    if "####" in text:
        tail = text.rsplit("####", 1)[1].strip()
        return normalize_answer(tail.splitlines()[0]) if tail else ""
    bare = text.strip()
    if len(bare) <= 30 and "\n" not in bare and not re.search(r"[A-Za-z]{2,}\s", bare):
        return normalize_answer(bare)  # already just an answer ("3/4", "\\frac{1}{2}", "1,000")
    markers = list(_MARKERS.finditer(text))
    if markers:
        tail = text[markers[-1].end() :].strip()
        line = tail.splitlines()[0] if tail else ""
        number = _NUMBER_RE.search(line.replace("$", ""))
        if number and len(line) > len(number.group(0)) + 12:
            return normalize_answer(number.group(0))  # a number inside a sentence: keep just the number
        if line:
            return normalize_answer(line)
    numbers = _NUMBER_RE.findall(text.replace("$", ""))
    return normalize_answer(numbers[-1]) if numbers else ""


def _strip_latex(text: str) -> str:
    text = text.replace("\\left", "").replace("\\right", "").replace("\\!", "").replace("\\,", "")
    text = text.replace("\\;", "").replace("\\ ", "").replace("\\%", "").replace("\\$", "")
    text = re.sub(r"\\(?:d|t)frac", r"\\frac", text)
    text = re.sub(r"\\text\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\mathrm\{([^{}]*)\}", r"\1", text)
    text = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", r"(\1)/(\2)", text)
    text = re.sub(r"\\frac(\d)(\d)", r"\1/\2", text)
    text = re.sub(r"\\sqrt(\d+)", r"\\sqrt{\1}", text)
    text = text.replace("^{\\circ}", "").replace("^\\circ", "")
    return text


def normalize_answer(answer: str) -> str:
    """Canonical form of an answer: plain numbers without separators, units or currency;
    fractions as ``a/b`` in lowest terms; LaTeX wrappers and spacing removed.

    >>> normalize_answer(" $1,000 ")
    '1000'
    >>> normalize_answer("\\\\dfrac{6}{8}")
    '3/4'
    >>> normalize_answer("0.50")
    '0.5'
    >>> normalize_answer("x = 5.")
    '5'
    """
    text = answer.strip().strip("$").strip()
    text = _strip_latex(text)
    text = re.sub(r"^[a-zA-Z]\s*=\s*", "", text)  # "x = 5" -> "5"
    text = text.strip().rstrip(".,;:!").strip()
    text = _UNITS.sub("", text).strip()
    text = text.replace("$", "").replace("€", "").replace("£", "").strip()
    compact = text.replace(" ", "")
    plain = compact.replace(",", "") if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", compact) else compact
    fraction = re.fullmatch(r"\(?(-?\d+)\)?/\(?(-?\d+)\)?", plain)
    if fraction and int(fraction.group(2)) != 0:
        value = Fraction(int(fraction.group(1)), int(fraction.group(2)))
        return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    if re.fullmatch(r"-?\d+(\.\d+)?|-?\.\d+", plain):
        number = Fraction(plain)
        if number.denominator == 1:
            return str(number.numerator)
        return format(float(number), "g") if len(plain) < 16 else plain
    return plain.replace("{", "").replace("}", "")


def answers_match(prediction: str, reference: str) -> bool:
    """Do two answers (raw text or already extracted) agree after normalization?

    >>> answers_match("The answer is 1,000.", "1000")
    True
    >>> answers_match("\\\\boxed{0.5}", "\\\\frac{1}{2}")
    True
    """
    pred, gold = extract_answer(prediction), extract_answer(reference)
    if not pred or not gold:
        return False
    if pred == gold:
        return True
    try:
        return abs(float(Fraction(pred)) - float(Fraction(gold))) < 1e-6
    except (ValueError, ZeroDivisionError):
        return False
