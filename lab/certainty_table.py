"""Does the model know when its greedy program is wrong? Offline, on recorded runs.

PROGRAM_RUN is a `dca eval --strategy program` run whose rows record each program's token
certainty (dca/reasoning/certainty.py). For each certainty summary: its AUROC as a predictor of
the greedy answer being right, and the execution facts' flag (dca/reasoning/weigh.py) beside it.
On a run of a gated vote (`verify --sure-above`, whose first sample is the greedy program), also
its own answers against its greedy programs, question by question.

With ``--votes VERIFY_RUN`` (a `verify --fixed` run of the same rows: its sample k > 0 is what
an adaptive run draws k-th, the same seed), the gated vote is replayed: keep the greedy answer
unless its facts flag it or its certainty is below a threshold; then draw more samples as
`verify` does (its adaptive stop, at least 2 in all) and take its weighted vote with the
verifier's scores. Thresholds are swept at quantiles of the run's own certainty (choose on a
dev split), or one rule is applied with ``--stat`` and ``--threshold`` (then apply it to test).
Cost: samples drawn and programs scored per question (each about one program's time, ~6 s here).

    .venv/bin/python lab/certainty_table.py $E/gsm8k-train-dev-program-certainty \\
        --votes $E/gsm8k-train-dev-verify5-dpo1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from weighted_vote_table import _adaptive_stop, _auroc, _parse, _prefix_pick, samples_of

from benchmarks._common import run_rows
from dca.reasoning.answers import answers_match
from dca.reasoning.events import Sample
from dca.reasoning.weigh import execution_facts

STATS = ("mean_logprob", "min_logprob", "mean_conf", "min_window_conf", "tail_conf", "low10_conf")
QUANTILES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)


def _rows(folder: Path) -> dict[str, dict]:
    return {row["id"]: row for row in run_rows(folder)}


def _right(row: dict, answer: str) -> bool:
    golds = _parse(row["gold"])
    return bool(answer) and any(answers_match(answer, g) for g in (golds if isinstance(golds, list) else [golds]))


def _gated(greedy: Sample, question: str, stat: str, threshold: float) -> bool:
    sure = (greedy.certainty or {}).get(stat)
    return bool(execution_facts(question, greedy)) or sure is None or sure < threshold


def replay(program: dict[str, dict], votes: dict[str, dict], stat: str, threshold: float) -> dict[str, object]:
    """The gated vote over the rows both runs hold: accuracy, share gated, drawn and scored per question."""
    ids = [i for i in program if i in votes]
    right = gated = drawn = scored = 0
    for i in ids:
        greedy = samples_of(program[i])[0]
        question = program[i]["question"]
        if not _gated(greedy, question, stat, threshold):
            right += _right(program[i], greedy.final)
            drawn += 1
            continue
        gated += 1
        rest = samples_of(votes[i])
        first = rest[0]
        score = first.score if first.final == greedy.final else None
        samples = [Sample(**{**greedy.__dict__, "score": score}), *rest[1:]]
        facts_only = [Sample(**{**s.__dict__, "score": None}) for s in samples]
        k = max(2, _adaptive_stop(facts_only, question))
        pick, n_scored = _prefix_pick(samples[:k], question)
        right += _right(program[i], pick)
        drawn += k
        scored += n_scored
    n = len(ids)
    return {
        "stat": stat,
        "threshold": round(threshold, 4),
        "questions": n,
        "accuracy": round(right / n, 3),
        "gated": round(gated / n, 3),
        "drawn_per_q": round(drawn / n, 2),
        "scored_per_q": round(scored / n, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("program_run", type=Path)
    parser.add_argument("--votes", type=Path, help="a verify --fixed run of the same rows")
    parser.add_argument("--stat", choices=STATS)
    parser.add_argument("--threshold", type=float)
    args = parser.parse_args()
    program = _rows(args.program_run)
    greedy = {i: samples_of(row)[0] for i, row in program.items()}
    right = {i: _right(program[i], s.final) for i, s in greedy.items()}
    flagged = {i: bool(execution_facts(program[i]["question"], s)) for i, s in greedy.items()}
    n = len(program)
    print(f"{args.program_run.name}: {n} questions, greedy accuracy {sum(right.values()) / n:.3f}; ", end="")
    print(f"facts flag {sum(flagged.values())} ({sum(right[i] for i in flagged if flagged[i])} of them right)")
    voted = [i for i, row in program.items() if len(samples_of(row)) > 1]
    if voted:  # a gated run (its first sample is the greedy program): its answers against its greedy
        final = {i: bool(row["correct"]) for i, row in program.items()}
        gained = sum(final[i] and not right[i] for i in program)
        lost = sum(right[i] and not final[i] for i in program)
        print(
            f"the run's answers: accuracy {sum(final.values()) / n:.3f}, +{gained} -{lost} against its greedy ", end=""
        )
        print(f"programs; {len(voted)} questions went past the greedy")
    print("\n| certainty | AUROC (greedy right) | AUROC where the facts are clean |\n|---|---|---|")
    for stat in STATS:
        pairs = [((greedy[i].certainty or {}).get(stat, float("-inf")), right[i]) for i in program]
        clean = [p for p, i in zip(pairs, program, strict=True) if not flagged[i]]
        auroc, auroc_clean = _auroc(pairs), _auroc(clean)
        print(f"| {stat} | {auroc:.3f} | {auroc_clean:.3f} |" if auroc and auroc_clean else f"| {stat} | - | - |")
    if not args.votes:
        return
    votes = _rows(args.votes)
    columns = ["stat", "threshold", "questions", "accuracy", "gated", "drawn_per_q", "scored_per_q"]
    print("\n| " + " | ".join(columns) + " |\n|" + "---|" * len(columns))
    if args.stat and args.threshold is not None:
        lines = [replay(program, votes, args.stat, args.threshold)]
    else:
        lines = [replay(program, votes, STATS[0], float("-inf"))]  # the facts alone
        for stat in STATS:
            values = sorted((greedy[i].certainty or {}).get(stat, float("-inf")) for i in program)
            lines += [replay(program, votes, stat, values[int(q * n)]) for q in QUANTILES]
    for line in lines:
        print("| " + " | ".join(str(line[c]) for c in columns) + " |")


if __name__ == "__main__":
    main()
