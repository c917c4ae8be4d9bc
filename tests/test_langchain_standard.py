"""LangChain's own standard tests (the ``langchain-tests`` package) on ``DcaRetriever``, over a
real index of a few files (the hash embedder of conftest: no model download); and its default
k is `dca ask`'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import HashEmbedder, make_corpus

from dca.config import Paths
from dca.knowledge import add_paths
from dca.knowledge.langchain import DcaRetriever

standard = pytest.importorskip("langchain_tests.integration_tests")


@pytest.fixture(autouse=True)
def _indexed(home: Paths, tmp_path: Path, fake_embedder: HashEmbedder) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    for n in range(4):  # enough chunks that any k the tests ask for can be met
        (corpus / f"extra{n}.md").write_text(f"# Cats {n}\n\nCats purr and sleep, note {n}.\n")
    add_paths(home, "default", [corpus], embedder_name=fake_embedder.name, embedder_factory=lambda: fake_embedder)


class TestDcaRetrieverStandard(standard.RetrieversIntegrationTests):
    @property
    def retriever_constructor(self) -> type[DcaRetriever]:
        return DcaRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"index": "default"}

    @property
    def retriever_query_example(self) -> str:
        return "what do cats do"


def test_the_default_k_is_dca_asks(monkeypatch: pytest.MonkeyPatch) -> None:
    from dca.pipeline import AskConfig

    assert len(DcaRetriever().invoke("cats")) == AskConfig().k == 3
    monkeypatch.setenv("DCA_K", "2")  # the k setting, as `dca ask` reads it
    assert len(DcaRetriever().invoke("cats")) == 2
