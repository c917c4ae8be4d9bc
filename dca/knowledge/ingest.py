"""``dca index add / remove / sync``: bring an index in line with files on disk, crash-safely.

Documents are committed in groups (one transaction each, whole documents only, up to
``commit_chunks`` chunks: a commit per document would cost a disk sync each on SQLite),
so a killed run loses at most the group in flight and a rerun picks up from there:
unchanged files (same path and content hash) are skipped, changed files replace their
old chunks. The embedder is loaded only when some file actually needs embedding.
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dca.config import Paths
from dca.errors import IngestError, KnowledgeIndexError, SkipFile
from dca.files import sha256_file
from dca.knowledge.chunking import Chunk, ChunkConfig, split_sections
from dca.knowledge.embedding import Embedder
from dca.knowledge.loaders import (
    SUPPORTED_SUFFIXES,
    LoadConfig,
    discover_files,
    load_sections,
    normal_path,
)
from dca.knowledge.stores import Store, create_store, index_names, open_store
from dca.knowledge.vectors import AnnConfig

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
EmbedderFactory = Callable[[], Embedder]


@dataclass(frozen=True, kw_only=True)
class IngestConfig:
    """How `dca index add` reads, cuts, embeds and commits documents."""

    load: LoadConfig = field(default_factory=LoadConfig)
    chunking: ChunkConfig | None = None  # None: the index's own (or the defaults for a new index)
    ann: AnnConfig = field(default_factory=AnnConfig)
    batch_chunks: int = 512  # chunks per embedding call (the model sorts each call by length: bigger = less padding)
    commit_chunks: int = 2048  # commit once a group of whole documents holds this many chunks
    save_every_s: float = 120.0  # also write the FAISS file this often during long runs


@dataclass(kw_only=True)
class IngestReport:
    """What a run changed; every file is accounted for."""

    index: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> reason
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def open_index(paths: Paths, name: str, *, embedder_name: str, create: bool, chunking: ChunkConfig | None) -> Store:
    """Open ``name`` (creating it when asked) and check it was made with the same embedder."""
    if name not in index_names(paths):
        if not create:
            open_store(paths, name)  # raises the "no index named" error
        return create_store(paths, name, embedder=embedder_name, dim=0, chunking=(chunking or ChunkConfig()).to_json())
    index = open_store(paths, name)
    if index.manifest.embedder != embedder_name:
        raise KnowledgeIndexError(
            f"index {name!r} was built with embedder {index.manifest.embedder!r}, not {embedder_name!r}; "
            f"use --embedder {index.manifest.embedder} or another --index"
        )
    if chunking is not None and chunking.to_json() != index.manifest.chunking:
        raise KnowledgeIndexError(
            f"index {name!r} was chunked with {index.manifest.chunking}, not {chunking.to_json()}; "
            "drop the chunking flags or use another --index"
        )
    return index


class _Ingestor:
    """One writer run: classify files, then embed and commit changed ones in groups."""

    def __init__(
        self,
        index: Store,
        config: IngestConfig,
        embedder_factory: EmbedderFactory,
        progress: ProgressFn,
        report: IngestReport,
    ) -> None:
        self.index = index
        self.config = config
        self.chunking = ChunkConfig(**index.manifest.chunking)
        self._factory = embedder_factory
        self._embedder: Embedder | None = None
        self.progress = progress
        self.report = report
        self._pending: list[tuple[int, int, Chunk]] = []  # (doc id, ord, chunk)
        self._last_save = time.monotonic()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = self._factory()
            if self.index.manifest.dim == 0:
                self.index.set_dim(self._embedder.dim)
        return self._embedder

    def _flush(self, gen: int) -> None:
        if not self._pending:
            return
        vectors = self.embedder.embed([c.embed_text for _, _, c in self._pending])
        store = self.index.vectors()
        start = 0
        for doc_id, group in itertools.groupby(self._pending, key=lambda item: item[0]):
            items = list(group)
            ids = self.index.insert_chunks(
                doc_id, items[0][1], [c for _, _, c in items], vectors[start : start + len(items)], gen
            )
            store.add(np.array(ids, dtype=np.int64), vectors[start : start + len(items)])
            start += len(items)
        self.report.chunks_added += len(self._pending)
        self._pending = []

    def remove(self, paths: list[str]) -> None:
        if not paths:
            return
        with self.index.transaction() as gen:
            for path in paths:
                self._remove_document(path)
                self.report.removed.append(path)
        self.index.note_applied(gen)

    def _remove_document(self, path: str) -> None:
        removed = self.index.delete_document(path)
        if removed:  # an index with chunks has a dimension, so its vectors can load
            self.index.vectors().remove(np.array(removed, dtype=np.int64))
            self.report.chunks_removed += len(removed)

    def ingest(self, files: list[Path]) -> None:
        known = self.index.documents()
        todo: list[tuple[Path, os.stat_result, str, bool]] = []
        for n, path in enumerate(files, start=1):
            self.progress("scan", n, len(files))
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                self.report.skipped[str(path)] = f"unsupported type {path.suffix or '(no extension)'}"
                continue
            try:
                stat = path.stat()
                old = known.get(str(path))
                if old and old[1] == stat.st_size and old[2] == stat.st_mtime_ns:
                    self.report.unchanged += 1
                    continue
                digest = sha256_file(path)
            except OSError as exc:
                self.report.skipped[str(path)] = f"unreadable ({exc.strerror or exc})"
                continue
            if old and old[0] == digest:
                self.report.unchanged += 1
                continue
            todo.append((path, stat, digest, old is not None))
        if todo and self.index.manifest.dim == 0:
            # a new index gets its dimension now, in a transaction of its own: set inside a group,
            # PostgreSQL's ALTER TABLE would keep readers out until the group commits
            _ = self.embedder
        position = 0
        while position < len(todo):
            with self.index.transaction() as gen:
                in_group = 0
                while position < len(todo) and in_group < self.config.commit_chunks:
                    path, stat, digest, existed = todo[position]
                    position += 1
                    in_group += self._ingest_one(path, stat, digest, existed, gen)
                    self.progress("index", position, len(todo))
                self._flush(gen)
            self.index.note_applied(gen)
            if time.monotonic() - self._last_save > self.config.save_every_s:
                self.index.save_vectors()
                self._last_save = time.monotonic()

    def _ingest_one(self, path: Path, stat: os.stat_result, digest: str, existed: bool, gen: int) -> int:
        self._remove_document(str(path))
        sections = load_sections(path, self.config.load)
        try:
            first = next(sections, None)
        except SkipFile as exc:
            self.report.skipped[str(path)] = str(exc)
            return 0
        except OSError as exc:
            self.report.skipped[str(path)] = f"unreadable ({exc.strerror or exc})"
            return 0
        if first is None:
            self.report.skipped[str(path)] = "empty"
            return 0
        doc_id = self.index.insert_document(
            path=str(path), sha256=digest, size=stat.st_size, mtime_ns=stat.st_mtime_ns, gen=gen
        )
        n_chunks = 0
        try:
            for n_chunks, chunk in enumerate(
                split_sections(itertools.chain([first], sections), self.embedder, self.chunking), start=1
            ):
                self._pending.append((doc_id, n_chunks - 1, chunk))
                if len(self._pending) >= self.config.batch_chunks:
                    self._flush(gen)
        except (SkipFile, OSError) as exc:
            raise IngestError(f"{path} could not be read to the end ({exc}); fix or exclude it and rerun") from None
        if n_chunks == 0:
            self.index.drop_document(doc_id)
            self.report.skipped[str(path)] = "no text"
            return 0
        (self.report.updated if existed else self.report.added).append(str(path))
        return n_chunks


def _check_inputs(inputs: list[Path]) -> list[Path]:
    missing = [str(p) for p in inputs if not p.exists()]
    if missing:
        raise IngestError(f"no such file or folder: {', '.join(missing)}")
    return [normal_path(p) for p in inputs]


def _run(
    paths: Paths,
    name: str,
    embedder_name: str,
    embedder_factory: EmbedderFactory,
    config: IngestConfig,
    progress: ProgressFn | None,
    *,
    create: bool,
    work: Callable[[_Ingestor], None],
) -> IngestReport:
    started = time.monotonic()
    if create and name not in index_names(paths):
        # A new index records its embedder: load it first, so an unknown or broken embedder
        # leaves nothing behind (an index made with it would refuse every later add).
        embedder = embedder_factory()
        embedder_factory = lambda: embedder  # noqa: E731
        window = int(getattr(embedder, "max_tokens", 0) or 0)
        chunk_tokens = (config.chunking or ChunkConfig()).chunk_tokens
        if window > 0 and chunk_tokens > window:
            raise IngestError(
                f"--chunk-tokens {chunk_tokens} is more than {embedder_name} reads ({window} tokens): the rest of "
                f"each chunk would be cut off unseen; use at most {window}"
            )
    index = open_index(paths, name, embedder_name=embedder_name, create=create, chunking=config.chunking)
    report = IngestReport(index=name)
    try:
        with index.writer():
            ingestor = _Ingestor(index, config, embedder_factory, progress or (lambda s, d, t: None), report)
            work(ingestor)
            index.save_vectors(ann=config.ann)
    finally:
        index.close()
    report.seconds = time.monotonic() - started
    return report


def add_paths(
    paths: Paths,
    name: str,
    inputs: list[Path],
    *,
    embedder_name: str,
    embedder_factory: EmbedderFactory,
    config: IngestConfig | None = None,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Index files and folders (recursive); unchanged files are skipped, changed ones replaced."""
    config = config or IngestConfig()
    roots = _check_inputs(inputs)
    return _run(
        paths,
        name,
        embedder_name,
        embedder_factory,
        config,
        progress,
        create=True,
        work=lambda ing: ing.ingest(list(discover_files(roots, config.load, skipped=ing.report.skipped))),
    )


def _under(path: str, roots: list[Path]) -> bool:
    return any(path == str(root) or path.startswith(str(root) + os.sep) for root in roots)


def remove_paths(paths: Paths, name: str, inputs: list[Path], *, embedder_name: str) -> IngestReport:
    """Delete the documents at these paths (files or whole folders) from the index."""
    roots = [normal_path(p) for p in inputs]

    def work(ingestor: _Ingestor) -> None:
        doomed = [p for p in ingestor.index.documents() if _under(p, roots)]
        if not doomed:
            raise IngestError(f"nothing in index {name!r} is under {', '.join(map(str, roots))}")
        ingestor.remove(doomed)

    return _run(paths, name, embedder_name, _no_embedder, IngestConfig(), None, create=False, work=work)


def sync_folder(
    paths: Paths,
    name: str,
    folder: Path,
    *,
    embedder_name: str,
    embedder_factory: EmbedderFactory,
    config: IngestConfig | None = None,
    progress: ProgressFn | None = None,
) -> IngestReport:
    """Make the index hold exactly the supported files of ``folder``: add, update, remove."""
    config = config or IngestConfig()
    root = _check_inputs([folder])[0]

    def work(ingestor: _Ingestor) -> None:
        files = list(discover_files([root], config.load, skipped=ingestor.report.skipped))
        present = {str(p) for p in files}
        ingestor.remove([p for p in ingestor.index.documents() if _under(p, [root]) and p not in present])
        ingestor.ingest(files)

    return _run(paths, name, embedder_name, embedder_factory, config, progress, create=True, work=work)


def _no_embedder() -> Embedder:
    raise AssertionError("removing documents needs no embedder")
