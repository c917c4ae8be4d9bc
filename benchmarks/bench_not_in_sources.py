""" "Not in sources" from retrieval alone: can a similarity threshold tell SQuAD 2.0's
unanswerable questions from its answerable ones before the model is asked?

All paragraphs of the half-dev set pooled in one index (dca's own ingest and hybrid search,
k=5 as `dca ask`); for every question, the best cosine similarity between the question and a
retrieved chunk. "Not in sources" is predicted when it is below a threshold. The threshold is
chosen on the first half of the paragraphs' questions (calibration) and reported on the second
half (held out), two ways: the best F1 of "not in sources", and the highest threshold that
refuses at most 2 % of the answerable questions.

With ``--run DIR`` (a `dca eval squad2` run folder made without --answerable-only) it also
compares, on that run's questions, "before" (the model's own answer, judged by dca's refusal
regex) with "after" (the similarity threshold, alone and together with the refusal regex).

    .venv/bin/python benchmarks/bench_not_in_sources.py [--data ../shared/data/squad2_dev/dev-v2.0.json] [--run DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import print_table, run_rows, write_results

from dca.answer import is_refusal
from dca.config import Paths
from dca.eval.datasets import load_squad2, write_squad_corpus
from dca.knowledge import KnowledgeIndex, SearchConfig, add_paths, search
from dca.knowledge.embedding import load_embedder

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad2_dev" / "dev-v2.0.json"
MAX_LOST = 0.02  # the product choice: refuse at most this share of answerable questions


def _flag_scores(rows: list[tuple[bool, bool]]) -> dict[str, float]:
    """Precision, recall and F1 of "not in sources" from (answerable, flagged) rows."""
    flagged = [answerable for answerable, flag in rows if flag]
    unanswerable = sum(1 for answerable, _ in rows if not answerable)
    answerable = len(rows) - unanswerable
    true = sum(1 for a in flagged if not a)
    precision = true / len(flagged) if flagged else 1.0
    recall = true / unanswerable if unanswerable else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    lost = sum(1 for a in flagged if a) / answerable if answerable else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "answerable_lost": lost}


def _scores(rows: list[tuple[bool, float]], threshold: float) -> dict[str, float]:
    """Precision and recall of "not in sources" (best similarity < threshold) on (answerable, best) rows."""
    return {"threshold": threshold, **_flag_scores([(answerable, best < threshold) for answerable, best in rows])}


def _before_after(run: Path, rows: list[dict[str, Any]], thresholds: dict[str, float]) -> list[dict[str, Any]]:
    """On the questions of an eval run: the model's refusals against the similarity threshold."""
    by_id = {r["id"]: r for r in rows}
    answers = run_rows(run)
    joined = [(by_id[a["id"]]["answerable"], is_refusal(a["prediction"]), by_id[a["id"]]["best"]) for a in answers]
    ways = [("before: the model's refusal (regex)", [refused for _, refused, _ in joined])]
    for name, t in thresholds.items():
        ways.append((f"after: similarity < {t:.2f} ({name})", [best < t for _, _, best in joined]))
        ways.append((f"after: refusal or similarity < {t:.2f} ({name})", [r or best < t for _, r, best in joined]))
    answerable = [ok for ok, _, _ in joined]
    return [
        {"how": how, "questions": len(joined), **_flag_scores(list(zip(answerable, flags, strict=True)))}
        for how, flags in ways
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--run", type=Path, help="a `dca eval squad2` run folder (with unanswerable questions)")
    args = parser.parse_args()
    corpus = load_squad2(args.data)
    models_home = Paths.resolve()
    embedder = load_embedder(paths=models_home)
    rows: list[dict[str, Any]] = []
    began = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        home = Paths(home=Path(tmp) / "home")
        (home.home / "models").mkdir(parents=True)
        (home.models / "catalog.toml").symlink_to(models_home.catalog)
        files = write_squad_corpus(corpus, Path(tmp) / "corpus")
        add_paths(home, "squad", files, embedder_name=embedder.name, embedder_factory=lambda: embedder)
        index = KnowledgeIndex.open(home, "squad")
        try:
            config = SearchConfig(k=args.k, mode="hybrid")
            for question in corpus.questions:
                hits = search(index, question.question, embedder=embedder, config=config)
                best = max((h.similarity for h in hits if h.similarity is not None), default=0.0)
                rows.append(
                    {
                        "id": question.id,
                        "answerable": bool(question.answers),
                        "best": best,
                        "paragraph": question.paragraph,
                    }
                )
        finally:
            index.close()
    seconds = time.perf_counter() - began
    half = len(corpus.paragraphs) // 2
    calibration = [(r["answerable"], r["best"]) for r in rows if r["paragraph"] < half]
    held_out = [(r["answerable"], r["best"]) for r in rows if r["paragraph"] >= half]
    grid = [t / 100 for t in range(0, 101)]
    best_f1 = max((_scores(calibration, t) for t in grid), key=lambda s: s["f1"])
    safe = max(
        (s for s in (_scores(calibration, t) for t in grid) if s["answerable_lost"] <= MAX_LOST),
        key=lambda s: s["threshold"],
    )
    results = []
    for name, chosen in (("best F1", best_f1), (f"≤ {MAX_LOST:.0%} answerable lost", safe)):
        for split, data in (("calibration", calibration), ("held out", held_out)):
            results.append({"choice": name, "split": split, **_scores(data, chosen["threshold"])})
    compared = []
    if args.run:
        compared = _before_after(args.run, rows, {"best F1": best_f1["threshold"], "safe": safe["threshold"]})
        print_table(compared, ["how", "questions", "precision", "recall", "f1", "answerable_lost"])
    answerable = [b for a, b in held_out if a]
    unanswerable = [b for a, b in held_out if not a]
    print_table(results, ["choice", "split", "threshold", "precision", "recall", "f1", "answerable_lost"])
    print(
        f"held out: mean best similarity {sum(answerable) / len(answerable):.3f} (answerable) "
        f"against {sum(unanswerable) / len(unanswerable):.3f} (unanswerable); {seconds:.0f} s"
    )
    write_results(
        "not_in_sources",
        {
            "data": str(args.data),
            "k": args.k,
            "questions": len(rows),
            "answerable": sum(1 for r in rows if r["answerable"]),
            "seconds": round(seconds, 1),
            "results": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in results],
            "run": str(args.run) if args.run else None,
            "before_after": [{k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in compared],
            "mean_best_similarity_held_out": {
                "answerable": round(sum(answerable) / len(answerable), 4),
                "unanswerable": round(sum(unanswerable) / len(unanswerable), 4),
            },
        },
    )


if __name__ == "__main__":
    main()
