"""Embedders: text -> normalized float32 vectors, plus the tokenizer that sizes chunks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

import numpy as np

from dca.config import Paths
from dca.errors import ModelNotFoundError


class Embedder(Protocol):
    """What the knowledge store needs from an embedding model."""

    name: str  # catalog name, recorded in the index manifest
    dim: int  # vector dimension

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 array of unit-length rows."""
        ...

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Character spans of the text's tokens, as the model counts them."""
        ...


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local folder (no hub access)."""

    def __init__(self, *, name: str, path: Path, batch_size: int = 64, device: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        import transformers
        from sentence_transformers import SentenceTransformer
        from tokenizers import Tokenizer

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()

        self.name = name
        self.batch_size = batch_size
        self._model = SentenceTransformer(str(path), device=device or "cpu")
        dim = self._model.get_embedding_dimension() if hasattr(self._model, "get_embedding_dimension") else None
        self.dim = int(dim or self._model.get_sentence_embedding_dimension() or 0)
        if not self.dim:
            raise ModelNotFoundError(
                f"{path} does not say its embedding dimension; is it a sentence-transformers model?"
            )
        import torch

        self._threads = torch.get_num_threads()
        # tokens one chunk may have: the model's window less its two special tokens
        self.max_tokens = int(getattr(self._model, "max_seq_length", 0) or 0) - 2
        self._tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        # Queries run on one thread and the setting is left there: torch's OpenMP workers keep
        # spinning on the cores for a while after a parallel call (and after the pool is resized),
        # which slowed llama.cpp's decode right after a query by 5-11 % (benchmarks/bench_ask_overhead.py).
        torch.set_num_threads(1 if len(texts) <= 4 else self._threads)
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def spans(self, text: str) -> list[tuple[int, int]]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)


def embedder_for(paths: Paths, index: str | None = None, flag: str | None = None, *, must_exist: bool = False) -> str:
    """Which embedder an index uses: ``flag`` when given, else the one ``index`` was built
    with (when it exists; with ``must_exist`` an unknown index is an IndexNotFoundError), else
    the catalog's default."""
    if flag:
        return flag
    from dca.knowledge.stores import index_names, open_store
    from dca.models.catalog import Catalog

    if index is not None and (must_exist or index in index_names(paths)):
        opened = open_store(paths, index)
        opened.close()
        return opened.manifest.embedder
    return Catalog.load(paths).default("embedder").name


_LOADED: dict[str, Embedder] = {}


def load_embedder(name: str | None = None, *, paths: Paths | None = None) -> Embedder:
    """The catalog embedder ``name`` (default: the catalog's default), loaded once per process."""
    from dca.models.catalog import Catalog
    from dca.models.verify import check_model

    paths = paths or Paths.resolve()
    catalog = Catalog.load(paths)
    entry = catalog.get(name) if name else catalog.default("embedder")
    if entry.role != "embedder":
        raise ModelNotFoundError(f"{entry.name} is a {entry.role}, not an embedder; see `dca models list`")
    if entry.name not in _LOADED:
        status = check_model(entry, paths)
        if not status.verified:
            raise ModelNotFoundError(f"embedder {entry.name} is not ready ({status.detail})")
        _LOADED[entry.name] = SentenceTransformerEmbedder(name=entry.name, path=entry.path(paths))
    return _LOADED[entry.name]
