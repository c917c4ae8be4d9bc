"""``dca train probe``: fit the learned verifier (dca/runtime/probe.py) on judged samples.

Every sample that ``dca train collect`` judged (right or wrong, with its output) becomes one
row: the base model's final hidden state at the end of ``probe_prompt(question, solution)``,
labelled by its verdict. The last ``dev_fraction`` of the questions are held out; the summary
reports the probe's AUROC there against the AUROC of the sample's vote share (the fraction of
its question's samples with the same answer: what the plain vote knows). Hidden states are
cached beside the run (``features.npy``, rewritten atomically every 32 rows), so a killed
run resumes where it stopped.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from dca.config import Paths
from dca.errors import ConfigError, TrainError
from dca.files import atomic_write_json, sha256_file
from dca.reasoning.events import Sample
from dca.reasoning.program import FENCE
from dca.reasoning.think import CLOSE, OPEN
from dca.reasoning.verify import solution_text
from dca.train.data import read_judged
from dca.train.sft import _check_run

ProgressFn = Callable[[int, int], None]  # (rows with features, rows)


@dataclass(frozen=True, kw_only=True)
class ProbeConfig:
    """One probe fit; recorded in the run folder."""

    data: str  # traces JSONL from `dca train collect` (every judged sample kept)
    data_sha256: str = ""
    model: str | None = None  # the base whose hidden states are read (None = the default generator)
    dev_fraction: float = 0.2  # the last questions held out for the AUROC
    l2: float = 1.0  # ridge penalty on the standardized weights

    def __post_init__(self) -> None:
        if not 0 < self.dev_fraction < 1:
            raise ConfigError(f"dev_fraction must be between 0 and 1, got {self.dev_fraction}")
        if self.l2 <= 0:
            raise ConfigError(f"l2 must be > 0, got {self.l2}")


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


def fit_logistic(features: np.ndarray, labels: np.ndarray, *, l2: float, steps: int = 25) -> tuple[np.ndarray, float]:
    """Ridge logistic regression by Newton's method on (already standardized) ``features``."""
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
                }
            )
    if not rows or len({r["right"] for r in rows}) < 2:
        raise TrainError(f"{path} needs both right and wrong samples to train a verifier")
    return rows


def _features(runtime: Any, rows: list[dict[str, Any]], cache: Path, progress: ProgressFn | None) -> np.ndarray:
    from dca.runtime.hidden import hidden_state
    from dca.runtime.probe import probe_prompt

    done = np.load(cache) if cache.is_file() else np.zeros((0, 0), dtype=np.float32)
    found: list[np.ndarray] = list(done)
    for i in range(len(found), len(rows)):
        found.append(hidden_state(runtime, probe_prompt(runtime, rows[i]["question"], rows[i]["solution"])))
        if (i + 1) % 32 == 0 or i + 1 == len(rows):
            tmp = cache.with_name(cache.name + ".tmp.npy")
            np.save(tmp, np.stack(found))
            os.replace(tmp, cache)
        if progress:
            progress(i + 1, len(rows))
    return np.stack(found).astype(np.float64)


def train_probe(
    config: ProbeConfig,
    *,
    name: str,
    paths: Paths | None = None,
    out: Path | None = None,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Fit the probe ``name``; returns its summary with the probe file's path."""
    from dca.runtime.llama import RuntimeConfig, load_runtime
    from dca.runtime.probe import Probe

    paths = paths or Paths.resolve()
    data = Path(config.data)
    rows = read_samples(data)
    config = replace(config, data=str(data.resolve()), data_sha256=sha256_file(data))
    folder = out or paths.home / "runs" / "train" / name
    _check_run(folder, config)
    runtime = load_runtime(config.model, paths=paths, config=RuntimeConfig(n_ctx=4096))
    features = _features(runtime, rows, folder / "features.npy", progress)
    labels = np.array([r["right"] for r in rows])
    n_questions = rows[-1]["question_index"] + 1
    first_dev = max(1, min(n_questions - 1, round(n_questions * (1 - config.dev_fraction))))
    dev = np.array([r["question_index"] >= first_dev for r in rows])
    if len(set(labels[~dev].tolist())) < 2:
        raise TrainError("the training questions have only right or only wrong samples; collect more questions")
    mean = features[~dev].mean(axis=0)
    scale = features[~dev].std(axis=0) + 1e-6
    weights, bias = fit_logistic((features[~dev] - mean) / scale, labels[~dev], l2=config.l2)
    counts = {
        "questions": n_questions,
        "train_samples": int((~dev).sum()),
        "dev_samples": int(dev.sum()),
        "dev_right": int(labels[dev].sum()),
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
    }
    probe = replace(probe, meta={"data": config.data, "data_sha256": config.data_sha256, **summary})
    path = folder / f"{name}.probe.json"
    atomic_write_json(path, probe.to_json())
    summary["probe"] = str(path)
    atomic_write_json(folder / "summary.json", summary)
    return summary
