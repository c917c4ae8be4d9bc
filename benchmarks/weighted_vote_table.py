"""Re-decide recorded voting runs with the weighted vote (dca/reasoning/weigh.py), offline.

Every eval row of a voting strategy records each sample's final answer, kind, program error
and (verify runs) the self-judge's score, so the weighted vote can be scored against the
plain majority and the self-judge's pick on exactly the same samples, without a model call.

    .venv/bin/python benchmarks/weighted_vote_table.py benchmarks/results/eval/gsm8k-verify8 [...]
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dca.reasoning.answers import answers_match
from dca.reasoning.events import Sample
from dca.reasoning.vote import leader, tally
from dca.reasoning.weigh import Weights, weighted_tally


def _parse(value: object) -> object:
    return ast.literal_eval(value) if isinstance(value, str) and value[:1] in "[{" else value


def _pick(scores: dict[str, float]) -> str:
    if not scores:
        return ""
    best = max(scores.values())
    return next(a for a, s in scores.items() if s == best)  # ties: the answer that appeared first


def table(folder: Path) -> dict[str, object]:
    rows = [json.loads(line) for line in (folder / "results.jsonl").read_text(encoding="utf-8").splitlines() if line]
    counts = {"majority": 0, "self_judge": 0, "weighted_facts": 0, "weighted_judge": 0, "any_right": 0}
    judged = False
    for row in rows:
        golds = _parse(row["gold"])
        golds = golds if isinstance(golds, list) else [golds]
        reasoning = _parse(row["reasoning"]) or {}
        samples = [
            Sample(
                kind=s["kind"],
                reasoning="",
                answer=s["final"],
                final=s["final"],
                program_error=s.get("program_error", ""),
                score=s.get("score"),
            )
            for s in reasoning.get("samples", [])
        ]
        order = list(dict.fromkeys(s.final for s in samples if s.final))

        def right(answer: str, golds: list = golds) -> bool:
            return bool(answer) and any(answers_match(answer, g) for g in golds)

        majority, _ = leader(tally(s.final for s in samples), order)
        scored = [s for s in samples if s.final and s.score is not None]
        judged = judged or bool(scored)
        judge_pick = max(scored, key=lambda s: s.score or 0.0).final if scored else majority
        facts_only = [Sample(**{**s.__dict__, "score": None}) for s in samples]
        picks = {
            "majority": majority,
            "self_judge": judge_pick,
            "weighted_facts": _pick(weighted_tally(facts_only, row["question"], Weights())),
            "weighted_judge": _pick(weighted_tally(samples, row["question"], Weights())),
        }
        for name, answer in picks.items():
            counts[name] += right(answer)
        counts["any_right"] += any(right(s.final) for s in samples)
    n = len(rows)
    result: dict[str, object] = {"run": folder.name, "questions": n}
    result |= {name: round(value / n, 3) for name, value in counts.items()}
    if not judged:
        result["self_judge"] = result["weighted_judge"] = "-"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    columns = ["run", "questions", "majority", "self_judge", "weighted_facts", "weighted_judge", "any_right"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for folder in args.runs:
        row = table(folder)
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
