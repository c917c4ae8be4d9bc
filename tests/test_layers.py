"""The floors of the house: a module imports only floors below it (docs: HOUSE_STYLE)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DCA = Path(__file__).resolve().parents[1] / "dca"
# What each floor must never import (directly or lazily inside a function).
_TOOLS = ("dca.api", "dca.cli", "dca.pipeline", "dca.eval", "dca.train")  # above every library floor
FORBIDDEN = {
    "reasoning": (*_TOOLS, "llama_cpp", "torch"),
    "models": ("dca.runtime", "dca.knowledge", "dca.answer", "dca.reasoning", *_TOOLS, "llama_cpp", "torch"),
    "runtime": ("dca.knowledge", "dca.answer", "dca.reasoning", *_TOOLS),
    "knowledge": ("dca.runtime", "dca.answer", "dca.reasoning", *_TOOLS, "llama_cpp"),
    "answer": ("dca.reasoning", *_TOOLS, "llama_cpp"),
    "pipeline": ("dca.api", "dca.cli", "dca.eval", "dca.train", "llama_cpp", "torch"),
    "api.py": ("dca.cli", "dca.serve", "dca.eval", "dca.train"),
    "serve": ("dca.cli", "dca.eval", "dca.train", "llama_cpp", "torch"),
}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


@pytest.mark.parametrize("floor", sorted(FORBIDDEN))
def test_a_floor_never_imports_a_higher_one(floor: str) -> None:
    target = DCA / floor
    files = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert files
    bad = [
        f"{path.relative_to(DCA)} imports {name}"
        for path in files
        for name in _imports(path)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[floor])
    ]
    assert not bad, bad


def _runtime_imports(path: Path) -> set[str]:
    """dca.runtime modules ``path`` imports when it runs (an ``if TYPE_CHECKING:`` import is not one)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for child in ast.walk(node)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found |= {n for n in names if n.startswith("dca.runtime.")}
    return found


def test_the_runtime_has_no_import_circle() -> None:
    """dca/runtime/llama.py and sampling.py imported each other (sampling took llama's private
    sequence type); the sequence type has one home now, and no runtime module imports one
    that imports it back, even lazily."""
    modules = {f"dca.runtime.{p.stem}": p for p in (DCA / "runtime").glob("*.py") if p.stem != "__init__"}
    graph = {name: _runtime_imports(path) & set(modules) for name, path in modules.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(n == goal or (n not in seen and reaches(n, goal, seen | {n})) for n in graph[start])

    circles = sorted(name for name in graph if reaches(name, name, {name}))
    assert not circles, circles


def test_the_cli_is_one_package_and_the_only_one_that_uses_typer() -> None:
    """The CLI was 8 files over floors 4 to 12 of dca/; it is the package dca/cli now
    (one module per command group), and no library module reaches for Typer."""
    assert not sorted(p.name for p in DCA.glob("cli*.py"))
    assert (DCA / "cli" / "__init__.py").is_file()
    outside = [
        str(path.relative_to(DCA))
        for path in sorted(DCA.rglob("*.py"))
        if path.relative_to(DCA).parts[0] != "cli" and any(n.split(".")[0] == "typer" for n in _imports(path))
    ]
    assert not outside, outside


def _is_module(dotted: str) -> bool:
    """Is ``dotted`` (dca.x.y) a module or package of dca?"""
    path = DCA.parent / dotted.replace(".", "/")
    return path.is_dir() or path.with_suffix(".py").is_file()


def _experiment_problems(path: Path) -> list[str]:
    """What in ``path`` reaches into dca: a private name imported or read from a dca module, or
    a dca module's attribute replaced (a monkey-patch)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: set[str] = set()  # local names bound to dca modules
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("dca"):
                    modules.add(alias.asname or alias.name.split(".")[0])
                    if any(part.startswith("_") for part in alias.name.split(".")):
                        problems.append(f"imports {alias.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dca"):
            if any(part.startswith("_") for part in node.module.split(".")):  # type: ignore[union-attr]
                problems.append(f"imports from {node.module}")
            for alias in node.names:
                if alias.name.startswith("_"):
                    problems.append(f"imports {node.module}.{alias.name}")
                elif _is_module(f"{node.module}.{alias.name}"):
                    modules.add(alias.asname or alias.name)  # a submodule: from dca import pipeline
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            if node.attr.startswith("_"):
                problems.append(f"reads {node.value.id}.{node.attr}")
            if isinstance(node.ctx, ast.Store):
                problems.append(f"replaces {node.value.id}.{node.attr}")
    return problems


def test_no_benchmark_or_experiment_reaches_into_dca() -> None:
    """benchmarks/ and lab/ use dca's public names only and patch none: an experiment that must
    change a step passes its own stages to the pipeline (dca.pipeline.Stages)."""
    root = DCA.parent
    scripts = sorted([*(root / "benchmarks").glob("*.py"), *(root / "lab").rglob("*.py")])
    assert len(scripts) > 20
    bad = [f"{path.relative_to(root)} {problem}" for path in scripts for problem in _experiment_problems(path)]
    assert not bad, bad
