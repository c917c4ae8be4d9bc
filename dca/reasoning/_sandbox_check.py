"""The sandbox's static check, shared by the parent (before a program runs) and by the child
(for code that allowed libraries compile at run time, e.g. sympy's generated polynomial
functions). Standard library only: the child loads it by path, without dca."""

import ast
import re
import string
from collections.abc import Iterable

_DUNDER_TEXT = re.compile(r"__\w+__")
_FIELD = string.Formatter()


def static_problems(
    code: str, allowed: Iterable[str], forbidden: Iterable[str], filename: str = "<program>"
) -> list[str]:
    """Why ``code`` may not run: imports outside ``allowed``, private names imported from them,
    ``forbidden`` builtin names, dunder names and private attributes, including in strings
    (``'{0.__globals__}'.format(f)`` and ``operator.attrgetter('__class__')`` read them too)
    (empty: it may run)."""
    try:
        tree = ast.parse(code, filename=filename)
    except SyntaxError as exc:
        return [f"line {exc.lineno}: SyntaxError: {exc.msg}"]
    problems = []
    allowed, forbidden = set(allowed), set(forbidden)
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if getattr(node, "level", 0) or name.split(".")[0] not in allowed:
                    problems.append(
                        f"line {line}: import of {name or '.'!r} is not allowed (allowed: math, cmath, fractions, ...)"
                    )
            if isinstance(node, ast.ImportFrom):
                problems += [
                    f"line {line}: importing the private name {a.name!r} is not allowed"
                    for a in node.names
                    if a.name.startswith("_")
                ]
        elif isinstance(node, ast.Name) and (node.id in forbidden or _dunder(node.id)):
            problems.append(f"line {line}: {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            problems.append(f"line {line}: private attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.alias) and node.asname and _dunder(node.asname):
            problems.append(f"line {line}: {node.asname!r} is not allowed")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _private_in_text(node.value):
            problems.append(f"line {line}: a string naming a dunder or private attribute is not allowed")
    return problems


def _private_in_text(text: str) -> bool:
    """Does ``text`` name a dunder (other than ``__main__``) or, as a format string, read a
    private attribute (``{0._x}``, ``{0.__class__}``)?"""
    if any(found != "__main__" for found in _DUNDER_TEXT.findall(text)):
        return True
    try:
        fields = [field for _, field, _, _ in _FIELD.parse(text) if field]
    except ValueError:  # not a format string
        return False
    return any(re.search(r"\.\s*_", field) for field in fields)


def _dunder(name: str) -> bool:
    return name.startswith("__") and name != "__name__"
