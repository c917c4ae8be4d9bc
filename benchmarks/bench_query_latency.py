"""Query latency p50/p95 of exact and IVF search at 10k, 100k and 1M vectors, with recall@10 against exact.

Synthetic vectors: a mixture of 1,000 Gaussian clusters in 384 dimensions (the default
embedder's), normalized like real embeddings; queries are fresh draws from the same mixture.
The IVF index is built by the same code the store uses (dca.knowledge.vectors.build_ivf).

    .venv/bin/python benchmarks/bench_query_latency.py [--sizes 10000 100000 1000000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import print_table, write_results

from dca.knowledge.vectors import AnnConfig, FaissIndex, build_ivf, recall_at_k

DIM = 384


def mixture(rng: np.random.Generator, centers: np.ndarray, n: int) -> np.ndarray:
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):  # in blocks, to bound temporary memory
        stop = min(n, start + 100_000)
        block = centers[rng.integers(0, len(centers), stop - start)]
        block = block + rng.normal(scale=0.05, size=block.shape).astype(np.float32)
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def latencies(index: FaissIndex, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    times, found = [], []
    for query in queries:
        start = time.perf_counter()
        _, ids = index.search(query[None, :], 10)
        times.append((time.perf_counter() - start) * 1000)
        found.append(ids[0])
    return np.array(times), np.array(found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(1000, DIM)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    queries = mixture(rng, centers, args.queries)
    rows = []
    for n in args.sizes:
        vectors = mixture(rng, centers, n)
        ids = np.arange(1, n + 1, dtype=np.int64)
        exact = FaissIndex.exact(DIM)
        exact.add(ids, vectors)
        n_exact = args.queries if n <= 100_000 else min(args.queries, 50)
        exact_ms, truth = latencies(exact, queries[:n_exact])
        rows.append(
            {
                "vectors": n,
                "index": "exact (flat)",
                "p50_ms": float(np.percentile(exact_ms, 50)),
                "p95_ms": float(np.percentile(exact_ms, 95)),
                "recall@10": 1.0,
                "build_s": 0.0,
                "nprobe": "",
            }
        )
        if n_exact < args.queries:  # recall needs ground truth for every query: batch the rest
            _, rest = exact.search(queries[n_exact:], 10)
            truth = np.concatenate([truth, rest])
        del exact
        start = time.perf_counter()
        ivf, tuned_recall = build_ivf(ids, vectors, AnnConfig(ann_threshold=1000))
        build_s = time.perf_counter() - start
        ivf_ms, found = latencies(ivf, queries)
        rows.append(
            {
                "vectors": n,
                "index": "IVF (dca build_ivf)",
                "p50_ms": float(np.percentile(ivf_ms, 50)),
                "p95_ms": float(np.percentile(ivf_ms, 95)),
                "recall@10": recall_at_k(found, truth),
                "build_s": build_s,
                "nprobe": ivf.nprobe,
                "tuning_recall@10": tuned_recall,
            }
        )
        print_table(rows[-2:], ["vectors", "index", "p50_ms", "p95_ms", "recall@10", "build_s", "nprobe"])
        del ivf, vectors
    print()
    print_table(rows, ["vectors", "index", "p50_ms", "p95_ms", "recall@10", "build_s", "nprobe"])
    write_results("query_latency", {"rows": rows, "queries": args.queries, "dim": DIM})


if __name__ == "__main__":
    main()
