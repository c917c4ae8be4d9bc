"""``dca train pairs``: (question, chosen, rejected) pairs from judged samples, for DPO.

``dca train collect`` keeps every sample it draws with its verdict against the gold answer.
A question gives pairs only when some of its samples are right and some wrong (a wrong one:
a wrong answer, no answer, or a program that failed to run). At most ``per_question`` pairs
per question (docs/training.md says why 2): the shortest right samples are the chosen ones,
the wrong ones are taken in a seeded random order, and no (chosen, rejected) pair repeats.
The output is written whole and atomically.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dca.errors import ConfigError, TrainError
from dca.files import atomic_write_bytes, atomic_write_json
from dca.train.data import read_judged


@dataclass(frozen=True, kw_only=True)
class PairsConfig:
    """How pairs are made; recorded beside the output."""

    data: str  # traces JSONL from `dca train collect` (every judged sample kept)
    per_question: int = 2  # most pairs per question
    seed: int = 0  # order of the rejected samples

    def __post_init__(self) -> None:
        if not 1 <= self.per_question <= 64:
            raise ConfigError(f"per_question must be between 1 and 64, got {self.per_question}")


def question_pairs(row: dict[str, Any], per_question: int, rng: random.Random) -> list[dict[str, Any]]:
    """The pairs of one collected question: [] unless it has a right and a wrong sample.

    >>> row = {"id": "q1", "question": "1+1?", "gold": "2", "messages": [],
    ...        "samples": [{"response": "a", "final": "2", "correct": True, "tokens": 9},
    ...                    {"response": "b", "final": "3", "correct": False, "tokens": 5},
    ...                    {"response": "c", "final": "2", "correct": True, "tokens": 4}]}
    >>> [(p["chosen"], p["rejected"]) for p in question_pairs(row, 2, random.Random(0))]
    [('c', 'b'), ('a', 'b')]
    """
    samples = row["samples"]
    right = sorted(
        {s["response"]: s for s in samples if s["correct"]}.values(), key=lambda s: (s["tokens"], s["response"])
    )
    wrong = list({s["response"]: s for s in samples if not s["correct"]}.values())
    if not right or not wrong:
        return []
    rng.shuffle(wrong)
    pairs: list[dict[str, Any]] = []
    used_right, used_wrong = [0] * len(right), [0] * len(wrong)
    free = {(i, j) for i in range(len(right)) for j in range(len(wrong))}
    for _ in range(min(per_question, len(free))):
        # the least used samples first (then the shorter right one): spread over all samples
        i, j = min(free, key=lambda ij: (used_right[ij[0]] + used_wrong[ij[1]], ij))
        free.discard((i, j))
        used_right[i] += 1
        used_wrong[j] += 1
        chosen, rejected = right[i], wrong[j]
        pairs.append(
            {
                "id": row["id"],
                "question": row["question"],
                "gold": row["gold"],
                "messages": row["messages"],
                "chosen": chosen["response"],
                "rejected": rejected["response"],
                "chosen_final": chosen["final"],
                "rejected_final": rejected["final"],
                "rejected_error": rejected.get("error", ""),
            }
        )
    return pairs


def make_pairs(config: PairsConfig, *, out: Path) -> dict[str, Any]:
    """Read the traces, write the pairs (and ``OUT.config.json``); returns counts."""
    data = Path(config.data)
    rows = read_judged(data)
    if missing := [n for n, row in enumerate(rows, 1) if "id" not in row]:
        raise TrainError(f"{data} question {missing[0]} is not a collected question (no id)")
    rng = random.Random(config.seed)
    pairs = [pair for row in rows for pair in question_pairs(row, config.per_question, rng)]
    all_right = sum(1 for r in rows if r["samples"] and all(s["correct"] for s in r["samples"]))
    all_wrong = sum(1 for r in rows if r["samples"] and not any(s["correct"] for s in r["samples"]))
    counts = {
        "questions": len(rows),
        "questions_with_pairs": len({p["id"] for p in pairs}),
        "only_right": all_right,
        "only_wrong": all_wrong,
        "pairs": len(pairs),
    }
    if not pairs:
        raise TrainError(
            f"{data} gives no pairs: none of its {len(rows)} questions has both a right and a wrong sample "
            f"({all_right} only right, {all_wrong} only wrong); collect more samples per question"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_name(out.name + ".config.json"), {**asdict(config), "counts": counts})
    atomic_write_bytes(out, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs).encode("utf-8"))
    return counts
