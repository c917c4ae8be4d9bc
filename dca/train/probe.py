"""``dca train probe``: fit the learned verifier (dca/runtime/probe.py) on judged samples.

Every sample that ``dca train collect`` judged (right or wrong, with its output) becomes one
row: the base model's final hidden state at the end of ``probe_prompt(question, solution)``,
labelled by its verdict. A fixed share of the questions is held out, chosen by a hash of the
question's text (so the held-out set stays the same as the data file grows); the summary
reports the probe's AUROC there against the AUROC of the sample's vote share (the fraction of
its question's samples with the same answer: what the plain vote knows). The ridge penalty is
chosen by cross-validation over the training questions, never on the held-out ones.

Hidden states are cached beside the run (``features.npz``), keyed by the model and the exact
text read, rewritten atomically every 32 rows: a killed run resumes where it stopped, and a
refit on a grown data file reads only the new samples.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dca.errors import ConfigError, TrainError
from dca.files import atomic_write_json, sha256_file
from dca.reasoning.events import Sample
from dca.reasoning.program import FENCE
from dca.reasoning.think import CLOSE, OPEN
from dca.reasoning.verify import solution_text
from dca.train.base import RunFolder
from dca.train.data import read_judged

ProgressFn = Callable[[int, int], None]  # (rows with features, rows)


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    """One probe fit; recorded in the run folder."""

    data: str  # traces JSONL from `dca train collect` (every judged sample kept)
    data_sha256: str = ""
    model: str | None = None  # the base whose hidden states are read (None = the default generator)
    dev_fraction: float = 0.2  # share of the questions held out for the AUROC (by a hash of the text)
    l2: float | None = None  # ridge penalty on the standardized weights; None: chosen by cross-validation

    def __post_init__(self) -> None:
        if not 0 < self.dev_fraction < 1:
            raise ConfigError(f"dev_fraction must be between 0 and 1, got {self.dev_fraction}")
        if self.l2 is not None and self.l2 <= 0:
            raise ConfigError(f"l2 must be > 0, got {self.l2}")


L2_GRID = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
CV_FOLDS = 5


def held_out(question: str, fraction: float) -> bool:
    """Whether ``question`` is in the held-out share: a hash of its text, stable as data grows."""
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < fraction


def auroc(scores: list[float] | np.ndarray, labels: list[bool] | np.ndarray) -> float:
    """Area under the ROC curve: P(a right sample scores above a wrong one), ties half.

    >>> auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False])
    1.0
    >>> auroc([0.5, 0.5], [True, False])
    0.5
    """
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    right, wrong = s[y], s[~y]
    if len(right) == 0 or len(wrong) == 0:
        return float("nan")
    greater = (right[:, None] > wrong[None, :]).sum() + 0.5 * (right[:, None] == wrong[None, :]).sum()
    return float(greater / (len(right) * len(wrong)))


def within_auroc(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> float:
    """AUROC over pairs of a right and a wrong sample of the same question: what re-ranking one
    question's samples needs (a pooled AUROC also rewards telling easy questions from hard ones).

    >>> within_auroc(np.array([0.9, 0.1, 0.2, 0.3]), np.array([True, False, True, False]), np.array([0, 0, 1, 1]))
    0.5
    """
    wins = pairs = 0.0
    for group in np.unique(groups):
        members = groups == group
        right, wrong = scores[members & labels], scores[members & ~labels]
        wins += (right[:, None] > wrong[None, :]).sum() + 0.5 * (right[:, None] == wrong[None, :]).sum()
        pairs += len(right) * len(wrong)
    return float(wins / pairs) if pairs else float("nan")


def fit_logistic(features: np.ndarray, labels: np.ndarray, *, l2: float, steps: int = 25) -> tuple[np.ndarray, float]:
    """Ridge logistic regression by Newton's method on (already standardized) ``features``.

    With fewer rows than features the weights of the penalized fit lie in the span of the rows
    (any part outside it adds penalty and changes no prediction), so the fit runs in that basis:
    the same weights, a rows-by-rows system instead of a features-by-features one."""
    n, width = features.shape
    if n < width and l2 > 0:
        _, _, basis = np.linalg.svd(features, full_matrices=False)
        w, b = _newton(features @ basis.T, labels, l2=l2, steps=steps)
        return basis.T @ w, b
    return _newton(features, labels, l2=l2, steps=steps)


def _newton(features: np.ndarray, labels: np.ndarray, *, l2: float, steps: int) -> tuple[np.ndarray, float]:
    n, width = features.shape
    x = np.hstack([features, np.ones((n, 1))])
    y = labels.astype(np.float64)
    w = np.zeros(width + 1)
    penalty = np.full(width + 1, l2)
    penalty[-1] = 0.0  # the bias is not shrunk
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -40, 40)))
        gradient = x.T @ (p - y) + penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return w[:-1], float(w[-1])


def _sample(raw: dict[str, Any]) -> Sample:
    """A judged sample of a traces file, as the reasoning engine's Sample (for solution_text)."""
    response = str(raw["response"])
    if raw.get("kind") == "program":
        code = response.removeprefix(FENCE).removesuffix("```").rstrip("\n")
        return Sample(kind="program", reasoning=code, answer=str(raw.get("output", "")), final=str(raw["final"]))
    body = response.removeprefix(OPEN)
    thought, _, answer = body.partition(CLOSE)
    return Sample(kind="cot", reasoning=thought.strip(), answer=answer.strip(), final=str(raw["final"]))


def read_samples(path: Path) -> list[dict[str, Any]]:
    """One row per judged sample: question index, question, solution text, verdict, vote share."""
    rows: list[dict[str, Any]] = []
    for questions, row in enumerate(read_judged(path)):
        samples = row["samples"]
        finals = [s["final"] for s in samples]
        for raw in samples:
            share = (finals.count(raw["final"]) / len(finals)) if raw["final"] else 0.0
            rows.append(
                {
                    "question_index": questions,
                    "question": row["question"],
                    "solution": solution_text(_sample(raw)),
                    "right": bool(raw["correct"]),
                    "vote_share": share,
                    "final": str(raw["final"] or ""),
                    "error": str(raw.get("error") or ""),
                }
            )
    if not rows or len({r["right"] for r in rows}) < 2:
        raise TrainError(f"{path} needs both right and wrong samples to train a verifier")
    return rows


def _key(model: str, prompt: str) -> str:
    return hashlib.sha256(f"{model}\0{prompt}".encode()).hexdigest()[:32]


def _save_cache(cache: Path, found: dict[str, np.ndarray]) -> None:
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez(tmp, keys=np.array(list(found), dtype="U32"), values=np.stack(list(found.values())))
    os.replace(tmp, cache)


def _load_cache(cache: Path) -> dict[str, np.ndarray]:
    if not cache.is_file():
        return {}
    try:
        with np.load(cache) as saved:
            return dict(zip(saved["keys"].tolist(), saved["values"], strict=True))
    except (OSError, ValueError, KeyError):  # damaged (a copy cut short): read the states again
        return {}


def _features(runtime: Any, rows: list[dict[str, Any]], cache: Path, progress: ProgressFn | None) -> np.ndarray:
    from dca.runtime.hidden import hidden_state
    from dca.runtime.probe import probe_prompt

    found = _load_cache(cache)
    prompts = [probe_prompt(runtime, r["question"], r["solution"]) for r in rows]
    keys = [_key(runtime.name, p) for p in prompts]
    fresh = 0
    for i, (key, prompt) in enumerate(zip(keys, prompts, strict=True)):
        if key not in found:
            found[key] = hidden_state(runtime, prompt)
            fresh += 1
            if fresh % 32 == 0:
                _save_cache(cache, found)
        if progress:
            progress(i + 1, len(rows))
    if fresh:
        _save_cache(cache, found)
    return np.stack([found[k] for k in keys]).astype(np.float64)


def choose_l2(
    features: np.ndarray, labels: np.ndarray, groups: np.ndarray, grid: tuple[float, ...] = L2_GRID
) -> tuple[float, dict[str, float]]:
    """The ridge penalty whose out-of-fold AUROC is highest, folds by question (``groups``)."""
    folds = np.unique(groups) % CV_FOLDS
    fold_of = dict(zip(np.unique(groups).tolist(), folds.tolist(), strict=True))
    fold = np.array([fold_of[g] for g in groups.tolist()])
    table: dict[str, float] = {}
    for l2 in grid:
        scores = np.zeros(len(labels))
        for k in range(CV_FOLDS):
            test = fold == k
            train = ~test
            if not test.any() or len(set(labels[train].tolist())) < 2:
                continue
            mean, scale = features[train].mean(axis=0), features[train].std(axis=0) + 1e-6
            w, b = fit_logistic((features[train] - mean) / scale, labels[train], l2=l2)
            scores[test] = ((features[test] - mean) / scale) @ w + b
        table[f"{l2:g}"] = round(auroc(scores, labels), 4)
    best = max(grid, key=lambda l2: (table[f"{l2:g}"], l2))  # ties: the stronger penalty
    return best, table


def picks(rows: list[dict[str, Any]], scores: np.ndarray, dev: np.ndarray) -> dict[str, float]:
    """On the held-out questions: how often the plain majority of a question's samples is right,
    the weighted vote of dca/reasoning/weigh.py with execution facts only (``facts``) and with
    the probe's scores as well (``weighted``), and how often some sample is (any pick's ceiling)."""
    from dca.reasoning.weigh import Weights, weighted_tally

    by_question: dict[int, list[int]] = {}
    for i in np.flatnonzero(dev).tolist():
        by_question.setdefault(rows[i]["question_index"], []).append(i)
    right = {"majority": 0, "facts": 0, "weighted": 0, "any": 0}
    for members in by_question.values():
        verdict = {rows[i]["final"]: rows[i]["right"] for i in members if rows[i]["final"]}
        plain = [
            Sample(kind="program", reasoning="", answer=rows[i]["final"], final=rows[i]["final"],
                   program_error=rows[i]["error"])
            for i in members
        ]  # fmt: skip
        scored = [replace(s, score=float(scores[i])) for s, i in zip(plain, members, strict=True)]
        question = rows[members[0]]["question"]
        counts = {f: float(sum(1 for s in plain if s.final == f)) for f in verdict}
        for name, tally in (
            ("majority", counts),
            ("facts", weighted_tally(plain, question, Weights())),
            ("weighted", weighted_tally(scored, question, Weights())),
        ):
            if tally:
                best = max(tally.values())
                pick = next(a for a, v in tally.items() if v == best)
                right[name] += int(verdict.get(pick, False))
        right["any"] += int(any(verdict.values()))
    n = max(1, len(by_question))
    return {f"dev_{k}_accuracy": round(v / n, 4) for k, v in right.items()}


def train_probe(config: ProbeConfig, run: RunFolder, *, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Fit the probe ``name``; returns its summary with the probe file's path."""
    from dca.runtime.adapters import PROBE_SUFFIX
    from dca.runtime.llama import RuntimeConfig, load_runtime
    from dca.runtime.probe import Probe

    name, paths, folder = run.name, run.paths, run.folder
    data = Path(config.data)
    rows = read_samples(data)
    config = replace(config, data=str(data.resolve()), data_sha256=sha256_file(data))
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.array([r["right"] for r in rows])
    dev = np.array([held_out(r["question"], config.dev_fraction) for r in rows])
    if len(set(labels[~dev].tolist())) < 2 or not dev.any():
        raise TrainError(
            "the training questions have only right or only wrong samples, or none is held out; collect more questions"
        )
    runtime = load_runtime(config.model, paths=paths, config=RuntimeConfig(n_ctx=4096))
    atomic_write_json(folder / "config.json", asdict(config))
    features = _features(runtime, rows, folder / "features.npz", progress)
    groups = np.array([r["question_index"] for r in rows])
    l2, cv = (config.l2, {}) if config.l2 is not None else choose_l2(features[~dev], labels[~dev], groups[~dev])
    mean = features[~dev].mean(axis=0)
    scale = features[~dev].std(axis=0) + 1e-6
    weights, bias = fit_logistic((features[~dev] - mean) / scale, labels[~dev], l2=l2)
    counts = {
        "questions": int(groups.max()) + 1,
        "dev_questions": len(set(groups[dev].tolist())),
        "train_samples": int((~dev).sum()),
        "dev_samples": int(dev.sum()),
        "dev_right": int(labels[dev].sum()),
        "l2": l2,
        "cv_auroc": cv,
    }
    probe = Probe(base_model=runtime.name, weights=weights, bias=bias, mean=mean, scale=scale, meta={})
    scores = probe.predict(features)
    shares = np.array([r["vote_share"] for r in rows])
    summary = {
        "name": name,
        **counts,
        "train_auroc": round(auroc(scores[~dev], labels[~dev]), 4),
        "dev_auroc": round(auroc(scores[dev], labels[dev]), 4),
        "dev_vote_share_auroc": round(auroc(shares[dev], labels[dev]), 4),
        "dev_within_auroc": round(within_auroc(scores[dev], labels[dev], groups[dev]), 4),
        "dev_vote_share_within_auroc": round(within_auroc(shares[dev], labels[dev], groups[dev]), 4),
        **picks(rows, scores, dev),
    }
    probe = replace(probe, meta={"data": config.data, "data_sha256": config.data_sha256, **summary})
    path = folder / f"{name}{PROBE_SUFFIX}"
    atomic_write_json(path, probe.to_json())
    summary["probe"] = str(path)
    atomic_write_json(folder / "summary.json", summary)
    return summary
