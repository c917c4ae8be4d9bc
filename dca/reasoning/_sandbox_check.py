"""The sandbox's static check, shared by the parent (before a program runs) and by the child
(for code that allowed libraries compile at run time, e.g. sympy's generated polynomial
functions). Standard library only: the child loads it by path, without dca."""

import ast
from collections.abc import Iterable


def static_problems(
    code: str, allowed: Iterable[str], forbidden: Iterable[str], filename: str = "<program>"
) -> list[str]:
    """Why ``code`` may not run: imports outside ``allowed``, ``forbidden`` builtin names,
    dunder names and private attributes (empty: it may run)."""
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
        elif isinstance(node, ast.Name) and (node.id in forbidden or _dunder(node.id)):
            problems.append(f"line {line}: {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            problems.append(f"line {line}: private attribute {node.attr!r} is not allowed")
        elif isinstance(node, ast.alias) and node.asname and _dunder(node.asname):
            problems.append(f"line {line}: {node.asname!r} is not allowed")
    return problems


def _dunder(name: str) -> bool:
    return name.startswith("__") and name != "__name__"
