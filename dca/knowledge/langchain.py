"""A langchain-core retriever over a dca index, for LangChain apps."""

from __future__ import annotations

import threading
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import PrivateAttr

from dca.config import Paths
from dca.knowledge.retrieval import SearchConfig, search_index
from dca.knowledge.stores import Store, open_store


class DcaRetriever(BaseRetriever):
    """``DcaRetriever(index="default", mode="hybrid").invoke("question")`` -> list of Documents.

    ``k`` (here, or per call: ``invoke("question", k=1)``) is how many; unset, the k setting,
    as `dca ask` (3 unless DCA_K or settings.toml say otherwise). Each Document's metadata
    carries source path, heading, page, character offsets and score. The index is opened at
    the first query and stays open (it catches up with later changes on its own); ``close()``
    releases it.
    """

    index: str = "default"
    k: int | None = None  # None: the k setting, as `dca ask`
    mode: str = "hybrid"
    source: str = ""
    home: str | None = None

    _opened: Store | None = PrivateAttr(default=None)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, k: int | None = None
    ) -> list[Document]:
        from dca.settings import load_settings

        paths = Paths.resolve(self.home)
        n = k if k is not None else self.k if self.k is not None else int(load_settings(paths)["k"])
        with self._lock:  # one query at a time: catching up with new chunks changes the vectors
            if self._opened is None:
                self._opened = open_store(paths, self.index)
            config = SearchConfig(k=n, mode=self.mode, source=self.source)
            hits = search_index(self._opened, query, config, paths=paths)
        return [Document(page_content=h.chunk.text, metadata=_metadata(h.to_json())) for h in hits]

    def close(self) -> None:
        """Close the index (the next query opens it again)."""
        with self._lock:
            if self._opened is not None:
                self._opened.close()
                self._opened = None


def _metadata(hit: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in hit.items() if key != "text" and value is not None}
