"""Re-decide recorded voting runs with the weighted vote (dca/reasoning/weigh.py), offline.

Every eval row of a voting strategy records each sample's final answer, kind, program error
and (verify runs) the self-judge's score, so the weighted vote can be scored against the
plain majority and the self-judge's pick on exactly the same samples, without a model call.
(`self_judge` is the top-scored sample's answer: the self-judge's, or a learned verifier's.)
With scores, the AUROC of the score as a predictor of a sample being right, against that of
its answer's vote share, over the scored samples (questions whose samples all agree are not
scored; the within-question AUROC pairs only samples of one question).

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
    scored_rows: list[tuple[int, float, float, bool]] = []  # (question, score, vote share, right)
    for number, row in enumerate(rows):
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
        finals = [s.final for s in samples if s.final]
        for sample in scored:
            share = finals.count(sample.final) / len(finals)
            scored_rows.append((number, float(sample.score or 0.0), share, right(sample.final)))
    n = len(rows)
    result: dict[str, object] = {"run": folder.name, "questions": n}
    result |= {name: round(value / n, 3) for name, value in counts.items()}
    if not judged:
        result["self_judge"] = result["weighted_judge"] = "-"
    for column, index in (("score_auroc", 1), ("share_auroc", 2)):
        pooled = _auroc([(r[index], r[3]) for r in scored_rows])
        within = _auroc([(r[index], r[3]) for r in scored_rows], [r[0] for r in scored_rows])
        result[column] = (
            "-" if pooled is None else f"{pooled:.3f} / {within:.3f}" if within is not None else f"{pooled:.3f}"
        )
    result["scored_samples"] = len(scored_rows)
    return result


def _auroc(pairs: list[tuple[float, bool]], groups: list[int] | None = None) -> float | None:
    """P(a right sample outscores a wrong one), ties half; within ``groups`` only when given."""
    wins = total = 0.0
    for i, (a, right_a) in enumerate(pairs):
        if not right_a:
            continue
        for j, (b, right_b) in enumerate(pairs):
            if right_b or (groups is not None and groups[i] != groups[j]):
                continue
            total += 1
            wins += 1.0 if a > b else 0.5 if a == b else 0.0
    return wins / total if total else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    columns = ["run", "questions", "majority", "self_judge", "weighted_facts", "weighted_judge", "any_right"]
    columns += ["scored_samples", "score_auroc", "share_auroc"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for folder in args.runs:
        row = table(folder)
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
