"""Two or more eval runs of the same questions, paired: each run's accuracy on the questions
they share, and each later run against the first: "+gained -lost" counts the questions it gets
right where the first is wrong, and wrong where the first is right (two-sided sign test).

    .venv/bin/python lab/paired_table.py $E/gsm8k-train-dev-program-dpo2 \\
        $E/gsm8k-train-dev-program-certainty $E/gsm8k-train-dev-program-dpo1
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: dca and benchmarks/
from benchmarks._common import print_table, run_rows, sign_test


def _correct(run: Path) -> dict[str, bool]:
    return {row["id"]: bool(row["correct"]) for row in run_rows(run)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="eval run folders; the first is compared with each other")
    args = parser.parse_args()
    first, *others = (_correct(run) for run in args.runs)
    rows = []
    for run, other in zip(args.runs[1:], others, strict=True):
        shared = [i for i in first if i in other]
        gained = sum(other[i] and not first[i] for i in shared)  # the later run's view, as RESULTS reads it
        lost = sum(first[i] and not other[i] for i in shared)
        rows.append(
            {
                "against": run.name,
                "questions": len(shared),
                args.runs[0].name: f"{sum(first[i] for i in shared) / len(shared):.3f}",
                "it": f"{sum(other[i] for i in shared) / len(shared):.3f}",
                "paired": f"+{gained} -{lost} (p {sign_test(gained, lost):.2f})",
            }
        )
    print_table(rows, ["against", "questions", args.runs[0].name, "it", "paired"])


if __name__ == "__main__":
    main()
