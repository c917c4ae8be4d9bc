"""Re-decide recorded voting runs with the weighted vote (dca/reasoning/weigh.py), offline.

Every eval row of a voting strategy records each sample's final answer, kind, program error
and (verify runs) the self-judge's score, so the weighted vote can be scored against the
plain majority and the self-judge's pick on exactly the same samples, without a model call.
(`self_judge` is the top-scored sample's answer: the self-judge's, or a learned verifier's;
`best_weighted` the top sample by its weight, the score times the execution facts' penalties,
so a program that failed or printed nothing is never picked. Each is also compared with the
majority question by question: questions gained and lost, and a two-sided sign test.)
With scores, the AUROC of the score as a predictor of a sample being right, against that of
its answer's vote share, over the scored samples (questions whose samples all agree are not
scored; the within-question AUROC pairs only samples of one question).
`adaptive` replays `verify`'s default adaptive stop on a run drawn with `--fixed`: sample k of
an adaptive run is sample k of the fixed run (the same seed), so the run stops at the first
prefix the weighted vote on execution facts calls decided, and the verifier's scores decide
that prefix. Its cost: samples drawn, their tokens against the fixed run's, samples scored.

    .venv/bin/python lab/weighted_vote_table.py lab/results/eval/gsm8k-verify8 [...]
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import run_rows, sign_test
from dca.reasoning.answers import answers_match
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import Sample
from dca.reasoning.vote import leader, tally
from dca.reasoning.weigh import Weights, execution_facts, sample_weight, weighted_decided, weighted_tally


def _parse(value: object) -> object:
    return ast.literal_eval(value) if isinstance(value, str) and value[:1] in "[{" else value


def samples_of(row: dict) -> list[Sample]:
    """The samples an eval row records (answers, program errors, scores, certainty; no texts)."""
    reasoning = _parse(row["reasoning"]) or {}
    return [
        Sample(
            kind=s["kind"],
            reasoning="",
            answer=s["final"],
            final=s["final"],
            program_error=s.get("program_error", ""),
            score=s.get("score"),
            reasoning_tokens=s.get("reasoning_tokens", 0),
            answer_tokens=s.get("answer_tokens", 0),
            certainty=s.get("certainty"),
        )
        for s in reasoning.get("samples", [])
    ]


def _pick(scores: dict[str, float]) -> str:
    if not scores:
        return ""
    best = max(scores.values())
    return next(a for a, s in scores.items() if s == best)  # ties: the answer that appeared first


def _adaptive_stop(facts_only: list[Sample], question: str) -> int:
    """How many samples an adaptive `verify` draws: it stops on the weighted vote of execution
    facts (the verifier scores only at the end), so ``facts_only`` carry no scores."""
    config, n = ReasoningConfig(), len(facts_only)
    for k in range(1, n):
        facts = weighted_tally(facts_only[:k], question, Weights())
        if weighted_decided(facts, k, n, threshold=config.threshold, min_samples=config.min_samples):
            return k
    return n


def _prefix_pick(prefix: list[Sample], question: str) -> tuple[str, int]:
    """(pick, samples scored) of `verify` deciding on the samples it drew."""
    votes = tally(s.final for s in prefix)
    if len(votes) <= 1:  # unanimous: no verifier call
        return leader(votes, list(votes))[0], 0
    return _pick(weighted_tally(prefix, question, Weights())), sum(1 for s in prefix if s.final)


def table(folder: Path) -> dict[str, object]:
    rows = run_rows(folder)
    names = (
        "majority",
        "self_judge",
        "best_weighted",
        "weighted_facts",
        "weighted_judge",
        "adaptive_facts",
        "adaptive",
    )
    counts = dict.fromkeys((*names, "any_right"), 0)
    cost = {"drawn": 0, "scored": 0, "tokens": 0, "fixed_tokens": 0}
    # questions gained, lost by a pick against another: (pick, against) -> [gained, lost]
    paired = {("self_judge", "majority"): [0, 0], ("best_weighted", "majority"): [0, 0]}
    paired[("weighted_judge", "weighted_facts")] = [0, 0]  # what the verifier adds to verify's vote
    paired[("adaptive", "adaptive_facts")] = [0, 0]  # ... to the adaptive vote
    judged = False
    scored_rows: list[tuple[int, float, float, bool]] = []  # (question, score, vote share, right)
    for number, row in enumerate(rows):
        golds = _parse(row["gold"])
        golds = golds if isinstance(golds, list) else [golds]
        samples = samples_of(row)
        order = list(dict.fromkeys(s.final for s in samples if s.final))

        def right(answer: str, golds: list = golds) -> bool:
            return bool(answer) and any(answers_match(answer, g) for g in golds)

        majority, _ = leader(tally(s.final for s in samples), order)
        scored = [s for s in samples if s.final and s.score is not None]
        judged = judged or bool(scored)
        judge_pick = max(scored, key=lambda s: s.score or 0.0).final if scored else majority
        facts_only = [Sample(**{**s.__dict__, "score": None}) for s in samples]
        weighed = [
            (sample_weight(execution_facts(row["question"], s), s.score, Weights()), -order.index(s.final), s.final)
            for s in samples
            if s.final
        ]
        best = max(weighed)[2] if scored and weighed else majority  # ties: the answer seen first
        drawn = _adaptive_stop(facts_only, row["question"])
        pick, scored_n = _prefix_pick(samples[:drawn], row["question"])
        picks = {
            "majority": majority,
            "self_judge": judge_pick,
            "best_weighted": best,
            "weighted_facts": _pick(weighted_tally(facts_only, row["question"], Weights())),
            "weighted_judge": _pick(weighted_tally(samples, row["question"], Weights())),
            "adaptive_facts": _prefix_pick(facts_only[:drawn], row["question"])[0],
            "adaptive": pick,
        }
        for name, answer in picks.items():
            counts[name] += right(answer)
        for (name, against), tally_ in paired.items():
            tally_[0] += right(picks[name]) and not right(picks[against])
            tally_[1] += right(picks[against]) and not right(picks[name])
        counts["any_right"] += any(right(s.final) for s in samples)
        cost["drawn"] += drawn
        cost["scored"] += scored_n
        cost["tokens"] += sum(s.tokens for s in samples[:drawn])
        cost["fixed_tokens"] += sum(s.tokens for s in samples)
        finals = [s.final for s in samples if s.final]
        for sample in scored:
            share = finals.count(sample.final) / len(finals)
            scored_rows.append((number, float(sample.score or 0.0), share, right(sample.final)))
    n = len(rows)
    result: dict[str, object] = {"run": folder.name, "questions": n}
    result |= {name: round(value / n, 3) for name, value in counts.items()}
    for (name, against), (gained, lost) in paired.items():
        result[f"{name}_vs_{against}"] = f"+{gained} -{lost} (p {sign_test(gained, lost):.2f})" if judged else "-"
    if not judged:
        for name in ("self_judge", "best_weighted", "weighted_judge"):
            result[name] = "-"
    for column, index in (("score_auroc", 1), ("share_auroc", 2)):
        pooled = _auroc([(r[index], r[3]) for r in scored_rows])
        within = _auroc([(r[index], r[3]) for r in scored_rows], [r[0] for r in scored_rows])
        result[column] = (
            "-" if pooled is None else f"{pooled:.3f} / {within:.3f}" if within is not None else f"{pooled:.3f}"
        )
    result["scored_samples"] = len(scored_rows)
    result["adaptive_cost"] = (
        f"{cost['drawn'] / n:.2f} drawn, {cost['tokens'] / max(1, cost['fixed_tokens']):.2f} of the tokens, "
        f"{cost['scored'] / n:.2f} scored"
    )
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
    columns = ["run", "questions", "majority", "self_judge", "best_weighted", "weighted_facts", "weighted_judge"]
    columns += ["any_right", "self_judge_vs_majority", "best_weighted_vs_majority", "weighted_judge_vs_weighted_facts"]
    columns += ["scored_samples", "score_auroc"]
    columns += ["share_auroc", "adaptive_facts", "adaptive", "adaptive_vs_adaptive_facts", "adaptive_cost"]
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for folder in args.runs:
        row = table(folder)
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
