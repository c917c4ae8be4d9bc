"""Real embedder: index the project's own docs/ and find things in it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _dca(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"DCA_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "dca", *args], capture_output=True, text=True, env=env, check=False)


def test_index_docs_and_search_with_the_real_embedder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    checkout_models = DOCS.parent / "models"
    for entry in ("all-minilm-l6-v2", ".verified", "catalog.toml"):  # reuse the pulled embedder
        (home / "models" / entry).symlink_to(checkout_models / entry)
    added = _dca(home, "index", "add", str(DOCS), "--json")
    assert added.returncode == 0, added.stderr
    assert len(json.loads(added.stdout)["added"]) >= 2
    found = _dca(home, "index", "search", "how does an interrupted pull resume", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    # the section that answers it, models.md "Pulling a model", is first by BM25 and fifth by the
    # dense model; fused, it ties within 0.0005 with docs/cli.md's "Choices" (which says pull
    # resumes after Ctrl-C), so it must be among the first two, not necessarily first
    answer = [h for h in hits[:2] if h["path"].endswith("models.md") and "Pulling a model" in h["heading"]]
    assert answer, [(h["path"], h["heading"]) for h in hits[:3]]
    again = _dca(home, "index", "add", str(DOCS))
    assert "0 added, 0 updated" in again.stdout
    assert _dca(home, "index", "verify").returncode == 0
