"""Grounded or not, step two (issue 31): a linear probe on the hidden state where the grounded
check reads P("Yes"), against P("Yes") itself.

The grounded check (dca/answer/support.py) asks, after a RAG answer, "Is that answer stated in
the sources above?" and reads the model's P("Yes"); on SQuAD 2.0 it separates answerable from
unanswerable questions no better than chance (AUROC 0.51, lab/NOTEBOOK.md). P("Yes") against
P("No") is one fixed direction in the final hidden state (the difference of two rows of the
output layer). This script asks whether *some* direction of that same state knows: it records
the state (from the same forward pass, `LlamaRuntime.choice_state`; no extra prefill) beside
each `dca eval` row, fits a logistic-regression probe on SQuAD 2.0 rows of 15 articles, and
scores it on the first 200 questions (the article "Normans", bench_not_in_sources' questions),
which no fit reads.

Every answer is a real `dca eval` row, the same as

    dca eval squad2 --data $D/squad2_dev/dev-v2.0.json --setting rag --style short --max-tokens 32 \
        --k 3 --adapter none --min-support 0 --offset O --limit N --out $E/squad2-probe-...

run question by question in one process (a row's state is captured while its row is written);
features go beside each run's results.jsonl (features.jsonl: id, float16 state in base64).
Resumable: a rerun continues every folder where it stopped.

    .venv/bin/python benchmarks/bench_grounded_probe.py [--data-dir ../shared/data] [--table-only] [--write-probe FILE]
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from _common import RESULTS, print_table, run_rows, write_results

from dca.config import Paths
from dca.eval.runner import eval_config, run_eval
from dca.files import complete_jsonl_lines

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
EVAL = RESULTS / "eval"
EVAL_ROWS = 200  # the first article (Normans): the questions bench_not_in_sources and the P(yes) run used
# The first question of every other article of the half-dev file: training blocks, one per article.
TRAIN_OFFSETS = (208, 626, 1050, 1494, 1749, 2170, 2543, 2805, 3250, 3708, 4065, 4449, 4813, 5299, 5701)
TRAIN_ROWS = 22  # per article
MAX_REFUSED = 0.05  # the product choice: refuse at most this share of answerable questions


POSITIONS = ("question", "answer", "check")  # the states read, in this order


class Capture:
    """The runtime, with the hidden states of its latest grounded check kept, read as the
    grounded probe reads them (dca.runtime.probe.grounded_states): at the end of the answer's
    prompt (what the model knew before answering), at the end of its answer, and where the check
    reads P("Yes"). Qwen's chat template: the answer is the last assistant turn before the
    check's user turn."""

    def __init__(self, runtime: Any) -> None:
        self.runtime = runtime
        self.states: np.ndarray | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.runtime, name)

    def choice_probabilities(self, prompt: str, choices: Any, config: Any) -> list[float]:
        from dca.runtime.probe import grounded_states

        user = prompt.rfind("<|im_start|>user")
        header = "<|im_start|>assistant\n"
        assistant = prompt.rfind(header, 0, user)
        if user < 0 or assistant < 0 or list(choices) != ["Yes", "No"]:
            raise SystemExit("the check's prompt is not in Qwen's chat template: this script reads Qwen models")
        start = assistant + len(header)
        answer = prompt[start:user].removesuffix("\n").removesuffix("<|im_end|>")
        probabilities, self.states = grounded_states(self.runtime, prompt[:start], answer, prompt, config)
        return list(probabilities)


def _folders() -> dict[str, tuple[Path, int, int]]:
    """name -> (run folder, offset, rows)."""
    folders = {"eval": (EVAL / "squad2-probe-k3", 0, EVAL_ROWS)}
    for offset in TRAIN_OFFSETS:
        folders[f"train{offset}"] = (EVAL / f"squad2-probe-train-{offset}", offset, TRAIN_ROWS)
    return folders


def _encode(state: np.ndarray) -> str:
    return base64.b64encode(state.astype(np.float16).tobytes()).decode("ascii")


def _decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float16).astype(np.float64)


def _encoded(folder: Path) -> dict[str, dict[str, str]]:
    """The recorded states of a run folder: question id -> {position: encoded state}."""
    path = folder / "features.jsonl"
    if not path.exists():
        return {}
    return {row["id"]: row for row in map(json.loads, complete_jsonl_lines(path))}


@functools.cache
def _recorded(folder: Path) -> tuple[list[dict[str, Any]], dict[str, dict[str, str]]]:
    """A run folder's rows and states, read once for all tables (a collection may be appending)."""
    return _done(folder), _encoded(folder)


def _done(folder: Path) -> list[dict[str, Any]]:
    return run_rows(folder) if (folder / "results.jsonl").exists() else []


def collect(data: Path, paths: Paths) -> None:
    from dca.knowledge.embedding import load_embedder
    from dca.runtime.llama import load_runtime

    capture, embedder = Capture(load_runtime(paths=paths)), load_embedder(paths=paths)
    folders = _folders()
    rounds = TRAIN_ROWS
    began = time.perf_counter()
    for r in range(1, rounds + 1):
        for folder, offset, rows in folders.values():
            limit = round(rows * r / rounds)
            config = eval_config(
                task="squad2", mode="rag", data=str(data), style="short", max_tokens=32, k=3,
                adapter="none", min_support=0.0, offset=offset, limit=limit,
            )  # fmt: skip
            have = set(_encoded(folder))
            for i in range(len(_done(folder)) + 1, limit + 1):  # row by row: a new row's state is the latest
                capture.states = None
                run_eval(replace(config, limit=i), out=folder, paths=paths, generator=capture, embedder=embedder)
                last = _done(folder)[-1]
                if last["id"] not in have and capture.states is not None:
                    states = dict(zip(POSITIONS, map(_encode, capture.states), strict=True))
                    with (folder / "features.jsonl").open("a", encoding="utf-8") as out:
                        out.write(json.dumps({"id": last["id"], **states}) + "\n")
                    have.add(last["id"])
        seen = sum(len(_done(f)) for f, _, _ in folders.values())
        print(f"round {r}/{rounds}: {seen} rows, {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)


def _rows(folder: Path, position: str) -> tuple[list[dict[str, Any]], np.ndarray, np.ndarray]:
    """The run's rows; the states at ``position`` of those that have one, and which those are (a
    row without a state is one the pipeline did not check: no answer, or the model's own refusal).
    A checked row whose state was not written (the collection killed between the two files) is
    left out, not counted as a refusal."""
    rows, encoded = _recorded(folder)
    rows = [r for r in rows if r["id"] in encoded or r.get("support") is None]
    has = np.array([r["id"] in encoded and r.get("support") is not None for r in rows], dtype=bool)
    x = np.array([_decode(encoded[r["id"]][position]) for r, h in zip(rows, has, strict=True) if h])
    return rows, x.reshape(int(has.sum()), -1), has


@functools.cache
def _split(position: str) -> dict[str, Any]:
    """Training rows (the 15 articles) and evaluation rows (Normans), with their states."""
    folders = _folders()
    eval_rows, eval_x, eval_has = _rows(folders["eval"][0], position)
    train_rows: list[dict[str, Any]] = []
    parts, groups, has, every = [], [], [], []
    for number, (name, (folder, _, _)) in enumerate(folders.items()):
        if name != "eval":
            rows, x, h = _rows(folder, position)
            train_rows += rows
            parts.append(x)
            has.append(h)
            groups += [number] * int(h.sum())
            every += [number] * len(rows)
    if not len(eval_x) or not sum(len(x) for x in parts):
        raise SystemExit("no rows with states yet: run without --table-only first")
    return {
        "train_rows": train_rows,
        "train_x": np.vstack(parts),
        "train_has": np.concatenate(has),
        "groups": np.array(groups),  # the article of each row with a state
        "every_group": np.array(every),  # the article of each training row
        "eval_rows": eval_rows,
        "eval_x": eval_x,
        "eval_has": eval_has,
    }


def _probe_scores(split: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, float, dict[str, float]]:
    """Out-of-fold scores of the training rows (5 folds of 3 articles), the scores of the
    evaluation rows by the probe fitted on all training rows, the l2 and its cross-validation
    table. The l2 is the one whose AUROC within the held-out fold, averaged over folds, is best:
    pooled out-of-fold scores would mix five fits whose intercepts follow their folds' share of
    answerable questions. A row without a state scores 0: the pipeline did not check it (the
    model refused or said nothing)."""
    from dca.train.probe import CV_FOLDS, L2_GRID, auroc, fit_logistic

    x, has, groups = split["train_x"], split["train_has"], split["groups"]
    y = _answerable(split["train_rows"])[has]
    folds = groups % CV_FOLDS

    def fit_and_score(train: np.ndarray, labels: np.ndarray, rows: np.ndarray, l2: float) -> np.ndarray:
        mean, scale = train.mean(axis=0), train.std(axis=0) + 1e-6
        weights, bias = fit_logistic((train - mean) / scale, labels, l2=l2)
        return 1 / (1 + np.exp(-np.clip(((rows - mean) / scale) @ weights + bias, -40, 40)))

    def out_of_fold(l2: float) -> np.ndarray:
        oof = np.zeros(len(y))
        for k in range(CV_FOLDS):
            test = folds == k
            if test.any():
                oof[test] = fit_and_score(x[~test], y[~test], x[test], l2)
        return oof

    cv, oofs = {}, {}
    for l2 in L2_GRID:
        oofs[l2] = out_of_fold(l2)
        within = [auroc(oofs[l2][folds == k], y[folds == k]) for k in range(CV_FOLDS)]
        cv[f"{l2:g}"] = round(float(np.nanmean(within)), 4)
    l2 = max(L2_GRID, key=lambda v: (cv[f"{v:g}"], v))  # ties: the stronger penalty
    train_scores, eval_scores = np.zeros(len(has)), np.zeros(len(split["eval_has"]))
    train_scores[has] = oofs[l2]
    eval_scores[split["eval_has"]] = fit_and_score(x, y, split["eval_x"], l2)
    return train_scores, eval_scores, l2, cv


def _support(rows: list[dict[str, Any]]) -> np.ndarray:
    """P("Yes") of each row; 0 where the pipeline did not check (the model refused or said nothing)."""
    return np.array([r["support"] if r.get("support") is not None else 0.0 for r in rows])


def _answerable(rows: list[dict[str, Any]]) -> np.ndarray:
    return np.array([bool(r["gold"]) for r in rows])


def _threshold(scores: np.ndarray, answerable: np.ndarray) -> float:
    """The highest threshold that refuses at most MAX_REFUSED of the answerable rows (a row is
    refused when its score is below the threshold)."""
    ranked = np.sort(scores[answerable])
    allowed = int(np.floor(MAX_REFUSED * len(ranked)))
    return float(ranked[allowed]) if allowed < len(ranked) else float(ranked[-1]) + 1e-9


def _at(scores: np.ndarray, answerable: np.ndarray, threshold: float) -> dict[str, float]:
    refused = scores < threshold
    return {
        "threshold": round(float(threshold), 4),
        "unanswerable_refused": round(float(refused[~answerable].mean()), 3),
        "answerable_refused": round(float(refused[answerable].mean()), 3),
    }


def table() -> dict[str, Any]:
    from dca.train.probe import CV_FOLDS, auroc

    base = _split("check")
    folds = base["every_group"] % CV_FOLDS

    def fold_auroc(scores: np.ndarray) -> float:
        """AUROC within each fold of held-out articles, averaged: how well a score ranks a new
        article's questions (the probes' scores are out of fold)."""
        return float(np.nanmean([auroc(scores[folds == k], train_y[folds == k]) for k in range(CV_FOLDS)]))

    train_y, eval_y = _answerable(base["train_rows"]), _answerable(base["eval_rows"])

    scored = {"P(yes), the grounded check": (_support(base["train_rows"]), _support(base["eval_rows"]))}
    fits = {}
    for position in POSITIONS:
        train_scores, eval_scores, l2, cv = _probe_scores(_split(position))
        scored[f"probe on the state at the {position}"] = (train_scores, eval_scores)
        fits[position] = {"l2": l2, "auroc_within_held_out_folds_by_l2": cv}
    out = []
    for name, (train_scores, eval_scores) in scored.items():
        threshold = _threshold(train_scores, train_y)  # chosen on the training articles only
        out.append(
            {
                "score": name,
                "train_auroc": round(fold_auroc(train_scores), 3),
                "eval_auroc": round(auroc(eval_scores, eval_y), 3),
                **_at(eval_scores, eval_y, threshold),
            }
        )
    return {
        "train_rows": len(train_y),
        "train_answerable": int(train_y.sum()),
        "eval_rows": len(eval_y),
        "eval_answerable": int(eval_y.sum()),
        "fits": fits,
        "table": out,
    }


def per_article(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """AUROC within each training article: P("Yes") as read, each probe fitted on the other 14
    articles (leave one article out, at its position's l2): is an article's ranking better by
    the probe than by P("Yes")?"""
    from dca.train.probe import auroc, fit_logistic

    base = _split("check")
    y_all, every = _answerable(base["train_rows"]), base["every_group"]
    support = _support(base["train_rows"])
    articles = sorted(set(every.tolist()))
    scores = {"P(yes)": support}
    for position in POSITIONS:
        split, l2 = _split(position), summary["fits"][position]["l2"]
        x, has, groups = split["train_x"], split["train_has"], split["groups"]
        y = y_all[has]
        held = np.zeros(len(y))
        for article in articles:
            test = groups == article
            mean, scale = x[~test].mean(axis=0), x[~test].std(axis=0) + 1e-6
            weights, bias = fit_logistic((x[~test] - mean) / scale, y[~test], l2=l2)
            held[test] = ((x[test] - mean) / scale) @ weights + bias
        full = np.full(len(y_all), -np.inf)  # no state: refused by the model, ranked lowest
        full[has] = held
        scores[position] = full
    by = {name: np.array([auroc(v[every == a], y_all[every == a]) for a in articles]) for name, v in scores.items()}
    return [
        {
            "score": name,
            "mean": round(float(np.nanmean(v)), 3),
            "min": round(float(np.nanmin(v)), 3),
            "max": round(float(np.nanmax(v)), 3),
            "articles_above_p_yes": "" if name == "P(yes)" else f"{int((v > by['P(yes)']).sum())} of {len(v)}",
        }
        for name, v in by.items()
    ]


def write_probe(path: Path, summary: dict[str, Any], model: str) -> dict[str, Any]:
    """Fit the probe of the position with the best out-of-fold AUROC on the training articles
    (never the evaluation's) on all training rows, and write it as a grounded-check probe file;
    its ``threshold`` is the one the table applies (at most 5 % of the training articles'
    answerable questions refused, out of fold)."""
    from dca.files import atomic_write_json
    from dca.runtime.probe import GROUNDED, Probe
    from dca.train.probe import fit_logistic

    rows = {r["score"].removeprefix("probe on the state at the "): r for r in summary["table"]}
    position = max(POSITIONS, key=lambda p: rows[p]["train_auroc"])
    split = _split(position)
    x, has = split["train_x"], split["train_has"]
    y = _answerable(split["train_rows"])[has]
    l2 = summary["fits"][position]["l2"]
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    weights, bias = fit_logistic((x - mean) / scale, y, l2=l2)
    meta = {
        "reads": GROUNDED,
        "position": position,
        "support_question": "stated",
        "trained_on": "SQuAD 2.0 half-dev, 22 questions of each of 15 articles (not Normans), RAG k=3 short answers",
        "train_rows": len(y),
        "l2": l2,
        "cross_validated_auroc": rows[position]["train_auroc"],
        "threshold": rows[position]["threshold"],  # refuses at most 5 % of answerable (out of fold)
        "eval_auroc": rows[position]["eval_auroc"],
    }
    probe = Probe(base_model=model, weights=weights, bias=bias, mean=mean, scale=scale, meta=meta)
    atomic_write_json(path, probe.to_json())
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--table-only", action="store_true", help="no model: fit and score what is recorded")
    parser.add_argument("--write-probe", type=Path, help="write the best position's probe here (a probe file)")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b", help="the model the rows were answered by")
    args = parser.parse_args()
    if not args.table_only:
        collect(args.data_dir / "squad2_dev" / "dev-v2.0.json", Paths.resolve())
    summary = table()
    print({k: v for k, v in summary.items() if k != "table"})
    print_table(
        summary["table"],
        ["score", "train_auroc", "eval_auroc", "threshold", "unanswerable_refused", "answerable_refused"],
    )
    summary["per_article"] = per_article(summary)
    print_table(summary["per_article"], ["score", "mean", "min", "max", "articles_above_p_yes"])
    if args.write_probe:
        summary["probe"] = {"path": str(args.write_probe), **write_probe(args.write_probe, summary, args.model)}
        print(f"probe written to {args.write_probe}: {summary['probe']}")
    write_results("grounded_probe", summary)


if __name__ == "__main__":
    main()
