"""GSM8K reference solutions as free training traces, in the two formats inference uses.

A reference solution is prose with calculator annotations, ``48/2 = <<48/2=24>>24 clips``, and
a final ``#### 72``. ``reference_response`` turns it into the think format (the prose as the
thought). ``reference_program`` turns it into a program: one assignment per annotation, named
from the words around it, with every number that repeats an earlier result replaced by that
result's variable, then ``print`` of the variable that holds the answer. The program is
evaluated here (its arithmetic only: it is built from a parsed expression, never run as code)
and kept only when it prints the gold answer.
"""

from __future__ import annotations

import ast
import keyword
import operator
import re

from dca.reasoning.answers import answers_match
from dca.reasoning.think import CLOSE, OPEN

_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_STOP_WORDS = (
    "a an the of per each in on at to for from by with and or is are was were be been it its he she "
    "they them his her their this that these those so then total altogether all more less than as into "
    "after before every there has have had will would can could now also just only which who what how "
    "much many one because means thus therefore hence since we you if not no but still makes make made "
    "need needs get gets got"
)
_STOP = frozenset(_STOP_WORDS.split())
_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def reference_response(solution: str) -> tuple[str, str]:
    """A GSM8K reference solution in the think format: (response, final answer).

    >>> reference_response("She sells 16 - 3 = <<16-3=13>>13 eggs.\\n#### 13")
    ('<think>\\nShe sells 16 - 3 = 13 eggs.\\n</think>\\n\\nThe answer is 13.', '13')
    """
    work, final = solution.rsplit("####", 1)
    work = _ANNOTATION.sub("", work).strip()
    final = final.strip()
    return f"{OPEN}{work}\n{CLOSE}\n\nThe answer is {final}.", final


def reference_hint(solution: str) -> str:
    """A reference solution's worked steps without its calculator annotations and final line:
    the hint a rationalizing pass sees.

    >>> reference_hint("She sells 16 - 3 = <<16-3=13>>13 eggs.\\n#### 13")
    'She sells 16 - 3 = 13 eggs.'
    """
    return _ANNOTATION.sub("", solution.rsplit("####", 1)[0]).strip()


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[A-Za-z]+", text.lower()) if w not in _STOP and len(w) > 1]


def _name(before: str, after: str, taken: set[str]) -> str:
    """A variable name from the two words after the result, else the two before the expression."""
    words = _words(re.split(r"[.;!?\n]", after, maxsplit=1)[0])[:2] or _words(before)[-2:] or ["value"]
    name = "_".join(words)
    if keyword.iskeyword(name) or name in {"print", "round", "int", "float", "sum", "max", "min", "abs"}:
        name += "_value"
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def _number(text: str) -> float | None:
    try:
        return float(text.replace(",", "").strip().rstrip("."))
    except ValueError:
        return None


def _evaluate(node: ast.AST, values: dict[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in values:
        return values[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand, values)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        if isinstance(node.op, ast.Pow) and abs(right) > 64:
            raise ValueError("exponent too large")
        result = _OPS[type(node.op)](left, right)
        if isinstance(result, complex):
            raise ValueError("complex result")
        return float(result)
    raise ValueError(f"not arithmetic: {ast.dump(node)[:60]}")


class _Rename(ast.NodeTransformer):
    """Numbers equal to an earlier result become that result's variable (the latest one)."""

    def __init__(self, results: list[tuple[str, float]]) -> None:
        self.results = results

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, int | float) and not isinstance(node.value, bool):
            for name, value in reversed(self.results):
                if abs(value - node.value) < 1e-9:
                    return ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)
        return node


def reference_program(solution: str) -> tuple[str, str] | None:
    """A GSM8K reference solution as a program: (code, final answer), or None when its
    annotations do not make a program that prints the answer.

    >>> code, final = reference_program(
    ...     "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\\n"
    ...     "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\\n#### 72")
    >>> print(code)
    clips_may = 48 / 2
    clips_april = 48 + clips_may
    print(clips_april)
    """
    if "####" not in solution:
        return None
    work, final = solution.rsplit("####", 1)
    final = final.strip()
    lines: list[str] = []
    results: list[tuple[str, float]] = []
    values: dict[str, float] = {}
    taken: set[str] = set()
    for match in _ANNOTATION.finditer(work):
        expression = match.group(1).replace("x", "*").replace("X", "*").replace("^", "**").replace(",", "")
        stated = _number(match.group(2))
        try:
            tree = ast.parse(expression.strip(), mode="eval")
            tree = ast.fix_missing_locations(_Rename(results).visit(tree))
            value = _evaluate(tree, values)
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError):
            return None
        if stated is None or abs(value - stated) > 1e-6 * max(1.0, abs(stated)):
            return None  # the annotation's own arithmetic is off: not a trace to teach
        start = max(work.rfind("\n", 0, match.start()), 0)
        name = _name(work[start : match.start()], work[match.end() :], taken)
        taken.add(name)
        lines.append(f"{name} = {ast.unparse(tree)}")
        results.append((name, value))
        values[name] = value
    answer = next((name for name, value in reversed(results) if answers_match(repr(value), final)), None)
    if answer is None:
        return None
    value = values[answer]
    printed = f"round({answer}, 2)" if value != round(value) and len(repr(value)) > 8 else answer
    return "\n".join([*lines, f"print({printed})"]), final
