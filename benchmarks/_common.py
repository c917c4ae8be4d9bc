"""Shared benchmark plumbing: machine facts, a printed table, JSON results written atomically,
a throwaway index of a dataset's paragraphs."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dca.files import atomic_write_json
from dca.machine import machine

RESULTS = Path(__file__).resolve().parents[1] / "lab" / "results"  # run outputs live in the lab


def run_rows(run: Path) -> list[dict[str, Any]]:
    """The rows of an eval run folder (its results.jsonl), in order."""
    lines = (run / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line]


def paired_change(
    old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]], ids: Sequence[str], metric: str
) -> str:
    """ "A -> B (+up -down)": the mean of ``metric`` over the questions ``ids`` in two runs' rows
    (by id), and on how many it rose and fell."""
    n = max(1, len(ids))
    a = sum(old[i]["metrics"][metric] for i in ids) / n
    b = sum(new[i]["metrics"][metric] for i in ids) / n
    up = sum(new[i]["metrics"][metric] > old[i]["metrics"][metric] for i in ids)
    down = sum(new[i]["metrics"][metric] < old[i]["metrics"][metric] for i in ids)
    return f"{a:.3f} -> {b:.3f} (+{up} -{down})"


def sign_test(gained: int, lost: int) -> float:
    """Two-sided exact sign test of ``gained`` against ``lost`` questions (ties dropped)."""
    n = gained + lost
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(gained, lost) + 1)) / 2**n
    return min(1.0, 2 * tail)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    def fmt(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    widths = {c: max(len(c), *(len(fmt(r.get(c, ""))) for r in rows)) for c in columns}
    print(" | ".join(c.ljust(widths[c]) for c in columns))
    print("-|-".join("-" * widths[c] for c in columns))
    for row in rows:
        print(" | ".join(fmt(row.get(c, "")).ljust(widths[c]) for c in columns))


def write_results(name: str, payload: dict[str, Any]) -> Path:
    path = RESULTS / f"{name}.json"
    atomic_write_json(
        path,
        {
            "benchmark": name,
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": machine(),
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            **payload,
        },
    )
    print(f"results written to {path}")
    return path


@contextmanager
def paragraph_index(paragraphs: Sequence[str], store: str | None = None) -> Iterator[tuple[Any, Any]]:
    """(index, embedder): the paragraphs ingested as `dca eval` does (one file each, dca's own
    ingest, the default embedder) into a temporary DCA_HOME that shares the checkout's models;
    ``store``: a PostgreSQL URL to hold the index instead of the embedded store."""
    from dca.eval.datasets import write_paragraphs

    with tempfile.TemporaryDirectory() as tmp:
        write_paragraphs(paragraphs, Path(tmp) / "corpus")
        with folder_index(Path(tmp) / "corpus", store) as pair:
            yield pair


@contextmanager
def folder_home(folder: Path, store: str | None = None) -> Iterator[tuple[Any, Any]]:
    """(paths, embedder): ``folder`` ingested as `dca index add` does (its ignore files heeded)
    into the index "corpus" of a temporary DCA_HOME that shares the checkout's models (every
    file of models/, so an Assistant there loads the generator too)."""
    from dca.config import Paths
    from dca.knowledge import add_paths
    from dca.knowledge.embedding import load_embedder

    models_home = Paths.resolve()
    embedder = load_embedder(paths=models_home)
    with tempfile.TemporaryDirectory() as tmp:
        home = Paths(home=Path(tmp) / "home")
        home.models.mkdir(parents=True)
        for entry in models_home.models.iterdir():
            (home.models / entry.name).symlink_to(entry)
        before = os.environ.get("DCA_STORE")
        os.environ["DCA_STORE"] = store or ""
        try:
            add_paths(home, "corpus", [folder], embedder_name=embedder.name, embedder_factory=lambda: embedder)
            yield home, embedder
        finally:
            if before is None:
                os.environ.pop("DCA_STORE", None)
            else:
                os.environ["DCA_STORE"] = before


@contextmanager
def folder_index(folder: Path, store: str | None = None) -> Iterator[tuple[Any, Any]]:
    """(index, embedder): ``folder`` ingested as :func:`folder_home` does, its index open."""
    from dca.knowledge.stores import open_store

    with folder_home(folder, store) as (home, embedder):
        index = open_store(home, "corpus")
        try:
            yield index, embedder
        finally:
            index.close()
