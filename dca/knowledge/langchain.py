"""A langchain-core retriever over a dca index, for LangChain apps."""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from dca.config import Paths
from dca.knowledge.embedding import load_embedder
from dca.knowledge.retrieval import SearchConfig, search
from dca.knowledge.store import KnowledgeIndex


class DcaRetriever(BaseRetriever):
    """``DcaRetriever(index="default", k=5, mode="hybrid").invoke("question")`` -> list of Documents.

    Each Document's metadata carries source path, heading, page, character offsets and score.
    """

    index: str = "default"
    k: int = 5
    mode: str = "hybrid"
    source: str = ""
    home: str | None = None

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        paths = Paths.resolve(self.home)
        index = KnowledgeIndex.open(paths, self.index)
        try:
            embedder = None if self.mode == "bm25" else load_embedder(index.manifest.embedder, paths=paths)
            hits = search(
                index, query, embedder=embedder, config=SearchConfig(k=self.k, mode=self.mode, source=self.source)
            )
        finally:
            index.close()
        return [Document(page_content=h.chunk.text, metadata=_metadata(h.to_json())) for h in hits]


def _metadata(hit: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in hit.items() if key != "text" and value is not None}
