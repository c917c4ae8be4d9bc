"""Refusal thresholds for the signals dca has, chosen on the trust benchmark's calibration split
and applied to its evaluation split (issue 49, step 3: cheapest first).

For each signal (the best retrieved source's cosine similarity; the grounded check's P("Yes");
both, refusing when either is low), the threshold is the highest that refuses at most 5 % of
the calibration split's answerable questions. The table says what it refuses of each kind on
the evaluation split, and how many right answers it costs. No model runs.

    .venv/bin/python lab/trust_threshold_table.py     # lab/results/trust_thresholds.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _common import RESULTS, print_table, write_results
from bench_trust import KINDS, refused_by

from dca.files import complete_jsonl_lines

MAX_REFUSED = 0.05  # of the answerable questions, on calibration


def _rows(split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in complete_jsonl_lines(RESULTS / f"trust_{split}.jsonl")]


def _value(row: dict[str, Any], signal: str) -> float:
    value = row.get(signal)
    return 1.0 if value is None else float(value)  # not asked (a refusal): nothing to refuse for


def threshold(rows: list[dict[str, Any]], signal: str) -> float:
    """The highest threshold that refuses at most MAX_REFUSED of the answerable rows."""
    values = sorted(_value(r, signal) for r in rows if r["kind"] == "answerable")
    allowed = int(MAX_REFUSED * len(values))  # rows below the threshold
    return values[allowed] if values else 0.0


def main() -> None:
    calibration, evaluation = _rows("calibration"), _rows("eval")
    chosen = {signal: threshold(calibration, signal) for signal in ("similarity", "support")}
    rules = {
        f"similarity < {chosen['similarity']:.3f}": lambda r: _value(r, "similarity") < chosen["similarity"],
        f"support < {chosen['support']:.3f}": lambda r: _value(r, "support") < chosen["support"],
        "either": lambda r: _value(r, "similarity") < chosen["similarity"] or _value(r, "support") < chosen["support"],
    }
    table = []
    for name, refuses in rules.items():
        # a row the model refused itself stays refused; rows holding gold never are
        table.append({"rule": name, **refused_by(evaluation, lambda r, rule=refuses: r["refused"] or rule(r))})
    print(f"calibration rows: {len(calibration)}; evaluation rows: {len(evaluation)}")
    print_table(table, ["rule", *KINDS, "gold_lost"])
    write_results(
        "trust_thresholds",
        {"max_refused_answerable_on_calibration": MAX_REFUSED, "thresholds": chosen, "evaluation": table},
    )


if __name__ == "__main__":
    main()
