"""Ingestion speed: `index add` chunks/s against plain SentenceTransformer.encode on the same chunks,
and the re-ingest of an unchanged corpus against the first ingest.

    .venv/bin/python benchmarks/bench_ingest.py [--data ../shared/data/squad2_dev/dev-v2.0.json]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import print_table, write_results

from dca.config import Paths
from dca.eval.datasets import load_squad2, write_squad_corpus
from dca.knowledge import IngestConfig, add_paths
from dca.knowledge.embedding import load_embedder

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad2_dev" / "dev-v2.0.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="SQuAD 2.0 JSON whose paragraphs are the corpus"
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of each side (best is kept)")
    args = parser.parse_args()

    corpus = load_squad2(args.data)
    models_home = Paths.resolve()
    embedder = load_embedder(paths=models_home)
    embedder.embed(["warm up the model"] * 8)
    with tempfile.TemporaryDirectory() as tmp:
        files_dir = Path(tmp) / "corpus"
        write_squad_corpus(corpus, files_dir)
        ingest_times, reingest_times, encode_times, n_chunks, texts = [], [], [], 0, []
        model = embedder._model  # the same SentenceTransformer: the baseline is its plain encode
        for repeat in range(args.repeats):  # interleaved, so drift on the machine hits both sides
            home = Paths(home=Path(tmp) / f"home{repeat}")
            (home.home / "models").mkdir(parents=True)
            (home.models / "catalog.toml").symlink_to(models_home.catalog)
            start = time.perf_counter()
            report = add_paths(
                home,
                "bench",
                [files_dir],
                embedder_name=embedder.name,
                embedder_factory=lambda: embedder,
                config=IngestConfig(),
            )
            ingest_times.append(time.perf_counter() - start)
            n_chunks = report.chunks_added
            start = time.perf_counter()
            again = add_paths(
                home,
                "bench",
                [files_dir],
                embedder_name=embedder.name,
                embedder_factory=lambda: embedder,
                config=IngestConfig(),
            )
            reingest_times.append(time.perf_counter() - start)
            assert again.chunks_added == 0 and again.unchanged == len(corpus.paragraphs)
            db = sqlite3.connect(home.indexes / "bench" / "store.sqlite")
            texts = [
                r[0] if not r[1] else f"{r[1]}\n{r[0]}"
                for r in db.execute("SELECT text, heading FROM chunks ORDER BY id")
            ]
            db.close()
            start = time.perf_counter()
            model.encode(
                texts,
                batch_size=embedder.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            encode_times.append(time.perf_counter() - start)

    ingest, reingest, encode = min(ingest_times), min(reingest_times), min(encode_times)
    rows = [
        {
            "what": "SentenceTransformer.encode (baseline)",
            "seconds": encode,
            "chunks": len(texts),
            "chunks_per_s": len(texts) / encode,
        },
        {
            "what": "dca index add (first ingest)",
            "seconds": ingest,
            "chunks": n_chunks,
            "chunks_per_s": n_chunks / ingest,
        },
        {"what": "dca index add (unchanged re-ingest)", "seconds": reingest, "chunks": 0, "chunks_per_s": ""},
    ]
    print_table(rows, ["what", "seconds", "chunks", "chunks_per_s"])
    ratio = (n_chunks / ingest) / (len(texts) / encode)
    speedup = ingest / reingest
    print(f"ingest / encode throughput ratio: {ratio:.3f} (goal >= 0.9)")
    print(f"re-ingest speedup: {speedup:.0f}x (goal >= 50x)")
    write_results(
        "ingest",
        {
            "documents": len(corpus.paragraphs),
            "rows": rows,
            "throughput_ratio": ratio,
            "reingest_speedup": speedup,
            "repeats": args.repeats,
        },
    )


if __name__ == "__main__":
    main()
