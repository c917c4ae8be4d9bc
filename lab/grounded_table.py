"""Grounded or not (issue 31): the support check's threshold, chosen on calibration rows and
scored on the evaluation's, against today's refusal regex and the similarity threshold.

Both inputs are `dca eval squad2` run folders made with `--min-support 0` (the check asked and
recorded, nothing refused), without --answerable-only: a calibration run on rows the evaluation
does not use (e.g. `--offset 3000 --limit 200`) and the evaluation run (`--limit 200`, the
questions of bench_not_in_sources). The threshold is the highest support value at which at
most ``--max-lost`` of the calibration's answerable questions would be refused; on the
evaluation rows the table gives the recall of unanswerable questions, the share of answerable
ones refused, and EM/F1 before and after (a refused answerable question scores 0, a refused
unanswerable one 1, as SQuAD 2.0 scores them).

    .venv/bin/python lab/grounded_table.py --calibration RUN --eval RUN [--max-lost 0.05]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import print_table, run_rows, write_results
from dca.answer import is_refusal
from dca.train.probe import auroc


def _rows(run: Path) -> list[dict[str, Any]]:
    rows = run_rows(run)
    for row in rows:
        row["answerable"] = bool(row["gold"])
        row["refused"] = is_refusal(row["prediction"])
        # no support: the model refused by itself (not checked) -> it never needs the check
        row["support_value"] = row.get("support")
    return rows


def _flags(rows: list[dict[str, Any]], threshold: float | None) -> list[bool]:
    """Refused after the check: the model's own refusal, or support below ``threshold``."""
    out = []
    for r in rows:
        low = threshold is not None and r["support_value"] is not None and r["support_value"] < threshold
        out.append(r["refused"] or low)
    return out


def _scores(rows: list[dict[str, Any]], flags: list[bool]) -> dict[str, float]:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    refused_ok = sum(1 for r, f in zip(rows, flags, strict=True) if f and not r["answerable"])
    refused_bad = sum(1 for r, f in zip(rows, flags, strict=True) if f and r["answerable"])
    em = f1 = 0.0
    for r, f in zip(rows, flags, strict=True):
        if not r["answerable"]:
            em += float(f)
            f1 += float(f)
        elif not f:
            em += r["metrics"]["em"]
            f1 += r["metrics"]["f1"]
    return {
        "recall": refused_ok / max(1, len(unanswerable)),
        "answerable_lost": refused_bad / max(1, len(answerable)),
        "em": em / len(rows),
        "f1": f1 / len(rows),
    }


def choose(rows: list[dict[str, Any]], max_lost: float) -> float:
    """The highest threshold that refuses at most ``max_lost`` of the answerable questions."""
    values = sorted({r["support_value"] for r in rows if r["support_value"] is not None})
    best = 0.0
    for value in values:
        candidate = value + 1e-9  # refuse everything below and at this value
        if _scores(rows, _flags(rows, candidate))["answerable_lost"] <= max_lost:
            best = candidate
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=Path, required=True)
    parser.add_argument("--eval", type=Path, required=True)
    parser.add_argument("--max-lost", type=float, default=0.05)
    parser.add_argument("--name", default="grounded")
    args = parser.parse_args()
    calibration, evaluation = _rows(args.calibration), _rows(args.eval)
    threshold = choose(calibration, args.max_lost)
    checked = [r for r in evaluation if r["support_value"] is not None]
    table = [
        {"how": "before: the model's refusal (regex)", **_scores(evaluation, _flags(evaluation, None))},
        {"how": f"after: support < {threshold:.3f} (chosen on calibration)", **_scores(evaluation, _flags(evaluation, threshold))},
    ]  # fmt: skip
    for row in table:
        for key in ("recall", "answerable_lost", "em", "f1"):
            row[key] = round(row[key], 4)
    support_auroc = auroc(
        [r["support_value"] for r in checked], [r["answerable"] for r in checked]
    )  # P(answerable) ranked by support
    print_table(table, ["how", "recall", "answerable_lost", "em", "f1"])
    print(f"threshold {threshold:.4f}; support AUROC (answerable vs not) {support_auroc:.4f} on {len(checked)} checked")
    write_results(
        args.name,
        {
            "calibration": str(args.calibration),
            "eval": str(args.eval),
            "max_lost": args.max_lost,
            "threshold": round(threshold, 6),
            "support_auroc": round(support_auroc, 4),
            "questions": len(evaluation),
            "unanswerable": sum(1 for r in evaluation if not r["answerable"]),
            "table": table,
        },
    )


if __name__ == "__main__":
    main()
