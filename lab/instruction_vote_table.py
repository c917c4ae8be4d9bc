"""A vote over greedy programs that differ by instruction or adapter instead of by temperature,
offline on recorded `dca eval --strategy program` runs of the same questions (issue 29).

The first run is the default (its greedy program answers alone); the others are the extra
voters. For the plain vote over all of them, and for a gated one (the first run's program
answers alone unless its execution facts flag it or its certainty (``--stat``) is below the
run's own quantile q; then the majority of all the runs' programs, ties to the earliest run):
accuracy, the share of questions gated, and extra programs per question.

    .venv/bin/python lab/instruction_vote_table.py $E/gsm8k-train-dev2-program-shipped-zen4 \\
        $E/gsm8k-train-dev2-program-prompt-plan $E/gsm8k-train-dev2-program-base
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: dca and benchmarks/
from certainty_table import STATS, _gated, _right, _rows
from weighted_vote_table import samples_of

from benchmarks._common import print_table
from dca.reasoning.vote import leader, tally

QUANTILES = (0.0, 0.1, 0.2, 0.3, 0.5, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="program runs; the first is the default")
    parser.add_argument("--stat", choices=STATS, default="mean_conf")
    args = parser.parse_args()
    first, *others = (_rows(run) for run in args.runs)
    ids = [i for i in first if all(i in other for other in others)]
    greedy = {i: samples_of(first[i])[0] for i in ids}
    sure = sorted((greedy[i].certainty or {}).get(args.stat, float("-inf")) for i in ids)
    rows = []
    for q in QUANTILES:
        threshold = float("inf") if q >= 1 else sure[int(q * len(ids))] if q > 0 else float("-inf")
        right = gated = 0
        for i in ids:
            question = first[i]["question"]
            if q > 0 and _gated(greedy[i], question, args.stat, threshold):
                gated += 1
                finals = [greedy[i].final, *(samples_of(o[i])[0].final for o in others)]
                pick = leader(tally(finals), finals)[0]  # ties: the earliest run
            else:
                pick = greedy[i].final
            right += _right(first[i], pick)
        rows.append(
            {
                "gate": "none (the first run alone)" if q == 0 else "all gated" if q >= 1 else f"{args.stat} < q{q:g}",
                "threshold": "" if q in (0.0, 1.0) else round(threshold, 4),
                "questions": len(ids),
                "accuracy": f"{right / len(ids):.3f}",
                "gated": f"{gated / len(ids):.2f}",
                "extra_programs_per_q": f"{gated * len(others) / len(ids):.2f}",
            }
        )
    anyone = sum(any(_right(r[i], samples_of(r[i])[0].final) for r in (first, *others)) for i in ids)
    print(f"runs: {', '.join(run.name for run in args.runs)}; some program right on {anyone / len(ids):.3f}")
    print_table(rows, ["gate", "threshold", "questions", "accuracy", "gated", "extra_programs_per_q"])


if __name__ == "__main__":
    main()
