"""``dca train pairs``: (question, chosen, rejected) pairs from judged samples, for DPO.

``dca train collect`` keeps every sample it draws with its verdict against the gold answer.
A question gives pairs only when some of its samples are right and some wrong (a wrong one:
a wrong answer, no answer, or a program that failed to run). At most ``per_question`` pairs
per question (docs/training.md says why 2): the shortest right samples are the chosen ones,
the wrong ones are taken in a seeded random order, and no (chosen, rejected) pair repeats.

``anchor="greedy"`` puts the question's greedy solution (``collect --greedy-first``) on one side
of every pair: rejected where it is wrong (against the shortest right samples), chosen where it
is right (against wrong samples): the pairs then move exactly what greedy decoding writes.
Several traces files of the same questions (a greedy-only collection and a sampled one) are
merged by question id. The output is written whole and atomically.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dca.choices import PAIR_ANCHORS as ANCHORS
from dca.errors import ConfigError, TrainError
from dca.files import atomic_write_bytes, atomic_write_json
from dca.train.data import JUDGED_FIELDS, read_judged


@dataclass(frozen=True, kw_only=True)
class PairsConfig:
    """How pairs are made; recorded beside the output."""

    data: tuple[str, ...]  # traces JSONL from `dca train collect` (every judged sample kept), merged by id
    per_question: int = 2  # most pairs per question
    seed: int = 0  # order of the rejected samples
    anchor: str = "none"  # none | greedy: the greedy solution on one side of every pair

    def __post_init__(self) -> None:
        if not 1 <= self.per_question <= 64:
            raise ConfigError(f"per_question must be between 1 and 64, got {self.per_question}")
        if self.anchor not in ANCHORS:
            raise ConfigError(f"anchor must be one of {', '.join(ANCHORS)}, got {self.anchor!r}")
        if not self.data:
            raise ConfigError("give at least one traces file")


def _greedy(row: dict[str, Any]) -> dict[str, Any] | None:
    """The question's greedy solution: collect records it with seed None (sampled ones have a seed)."""
    return next((s for s in row["samples"] if "seed" in s and s["seed"] is None), None)


def _pair(row: dict[str, Any], chosen: dict[str, Any], rejected: dict[str, Any]) -> dict[str, Any]:
    return {
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
        pairs.append(_pair(row, right[i], wrong[j]))
    return pairs


def greedy_pairs(row: dict[str, Any], per_question: int, rng: random.Random) -> list[dict[str, Any]]:
    """The pairs of one question with its greedy solution on one side: [] without a greedy
    solution, or when no sample disagrees with it.

    >>> row = {"id": "q1", "question": "1+1?", "gold": "2", "messages": [],
    ...        "samples": [{"response": "g", "final": "3", "correct": False, "tokens": 5, "seed": None},
    ...                    {"response": "a", "final": "2", "correct": True, "tokens": 9, "seed": 0},
    ...                    {"response": "c", "final": "2", "correct": True, "tokens": 4, "seed": 1}]}
    >>> [(p["chosen"], p["rejected"]) for p in greedy_pairs(row, 2, random.Random(0))]
    [('c', 'g'), ('a', 'g')]
    """
    greedy = _greedy(row)
    if greedy is None:
        return []
    others = [s for s in {s["response"]: s for s in row["samples"]}.values() if s["response"] != greedy["response"]]
    if greedy["correct"]:
        wrong = [s for s in others if not s["correct"]]
        rng.shuffle(wrong)
        return [_pair(row, greedy, s) for s in wrong[:per_question]]
    right = sorted((s for s in others if s["correct"]), key=lambda s: (s["tokens"], s["response"]))
    return [_pair(row, s, greedy) for s in right[:per_question]]


# A pair carries its question's id and chat messages; the shortest right samples are chosen.
PAIR_FIELDS = ({**JUDGED_FIELDS[0], "id": str, "gold": str, "messages": list}, {**JUDGED_FIELDS[1], "tokens": int})


def merged_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """The judged questions of every file, a question's samples from all of them together."""
    rows: dict[str, dict[str, Any]] = {}
    for path in paths:
        for number, row in enumerate(read_judged(path, PAIR_FIELDS), 1):
            if (seen := rows.get(row["id"])) is None:
                rows[row["id"]] = {**row, "samples": list(row["samples"])}
            elif seen["question"] != row["question"] or seen["gold"] != row["gold"]:
                raise TrainError(f"{path} question {number} ({row['id']}) differs from the same id in another file")
            else:
                seen["samples"] += row["samples"]
    return list(rows.values())


def make_pairs(config: PairsConfig, *, out: Path) -> dict[str, Any]:
    """Read the traces, write the pairs (and ``OUT.config.json``); returns counts."""
    files = [Path(d) for d in config.data]
    rows = merged_rows(files)
    data = ", ".join(str(f) for f in files)
    rng = random.Random(config.seed)
    make = greedy_pairs if config.anchor == "greedy" else question_pairs
    pairs = [pair for row in rows for pair in make(row, config.per_question, rng)]
    all_right = sum(1 for r in rows if r["samples"] and all(s["correct"] for s in r["samples"]))
    all_wrong = sum(1 for r in rows if r["samples"] and not any(s["correct"] for s in r["samples"]))
    counts = {
        "questions": len(rows),
        "questions_with_pairs": len({p["id"] for p in pairs}),
        "only_right": all_right,
        "only_wrong": all_wrong,
        "pairs": len(pairs),
    }
    if config.anchor == "greedy":
        greedy = [_greedy(r) for r in rows]
        counts["with_greedy"] = sum(g is not None for g in greedy)
        counts["greedy_right"] = sum(bool(g and g["correct"]) for g in greedy)
        if not counts["with_greedy"]:
            raise TrainError(f"{data} holds no greedy solution; collect one with `dca train collect --greedy-first`")
    if not pairs and config.anchor == "greedy":
        raise TrainError(
            f"{data} gives no pairs: no sample disagrees with its question's greedy solution "
            f"({counts['greedy_right']} of {counts['with_greedy']} greedy solutions right); collect more samples"
        )
    if not pairs:
        raise TrainError(
            f"{data} gives no pairs: none of its {len(rows)} questions has both a right and a wrong sample "
            f"({all_right} only right, {all_wrong} only wrong); collect more samples per question"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_name(out.name + ".config.json"), {**asdict(config), "counts": counts})
    atomic_write_bytes(out, "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs).encode("utf-8"))
    return counts
