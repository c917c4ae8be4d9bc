"""Answers that are citation markers alone ("[1]"), before and after dca asks again (issue 31's
grounding). Offline on recorded `dca eval` runs with cited answers.

``--prepare BEFORE AFTER`` copies the run folder BEFORE to AFTER without its bare rows, so that
resuming AFTER with the same `dca eval` command answers exactly those rows again with the code
of now (every other row is what the code of now answers too: it only acts on a bare answer).
Without ``--prepare``: the table of BEFORE against AFTER, question by question.

    .venv/bin/python lab/bare_citation_table.py --prepare $E/RUN $E/RUN-sayit   # then resume it
    .venv/bin/python lab/bare_citation_table.py $E/RUN $E/RUN-sayit [...]       # pairs
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks._common import paired_change, print_table, run_rows
from dca.answer import says_nothing


def prepare(before: Path, after: Path) -> None:
    if after.exists():
        shutil.rmtree(after)
    shutil.copytree(before, after)
    rows = run_rows(after)
    kept = [r for r in rows if not says_nothing(r["prediction"])]
    (after / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    print(f"{after}: {len(rows) - len(kept)} bare rows of {len(rows)} left out, to be answered again")


def compare(before: Path, after: Path) -> dict[str, Any]:
    old = {r["id"]: r for r in run_rows(before)}
    new = {r["id"]: r for r in run_rows(after)}
    if set(old) != set(new):
        raise SystemExit(f"{before} and {after} hold other questions; resume {after} first")
    bare = [i for i in old if says_nothing(old[i]["prediction"])]
    row: dict[str, Any] = {"run": before.name, "questions": len(old), "bare": len(bare)}
    row["bare_after"] = sum(says_nothing(new[i]["prediction"]) for i in new)
    row["others_unchanged"] = all(old[i]["prediction"] == new[i]["prediction"] for i in old if i not in bare)
    for metric in ("correct", "em", "f1"):
        row[metric] = paired_change(old, new, list(old), metric)
    row["refused_after"] = sum("do not contain" in new[i]["prediction"] for i in bare)
    row["s_per_bare_q"] = f"{sum(old[i]['seconds'] for i in bare) / max(1, len(bare)):.2f} -> " + (
        f"{sum(new[i]['seconds'] for i in bare) / max(1, len(bare)):.2f}"
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="BEFORE AFTER pairs")
    parser.add_argument("--prepare", action="store_true", help="copy BEFORE to AFTER without its bare rows")
    args = parser.parse_args()
    if len(args.runs) % 2:
        raise SystemExit("give the runs in BEFORE AFTER pairs")
    pairs = list(zip(args.runs[::2], args.runs[1::2], strict=True))
    if args.prepare:
        for before, after in pairs:
            prepare(before, after)
        return
    rows = [compare(before, after) for before, after in pairs]
    print_table(rows, list(rows[0]))


if __name__ == "__main__":
    main()
