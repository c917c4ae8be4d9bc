#!/usr/bin/env bash
# The grounded check (P(yes) "Is that answer stated in the sources above?") over cited answers,
# now that they are sentences, on the SQuAD 2.0 half-dev calibration rows 3000-3079 of the
# short-style measurement in lab/NOTEBOOK.md, read on themselves (in-sample threshold).
#   TAG=zen4 nohup lab/rounds/cited_support_check.sh >> logs/cited_support_check.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
.venv/bin/dca eval squad2 --data "$D/squad2_dev/dev-v2.0.json" --setting rag --max-tokens 96 --k 3 \
  --offset 3000 --limit 80 --adapter none --min-support 0 \
  --out "$E/squad2-support-cited-cal-stated-$TAG" || exit 1
.venv/bin/python lab/grounded_table.py --calibration "$E/squad2-support-cited-cal-stated-$TAG" \
  --eval "$E/squad2-support-cited-cal-stated-$TAG" --name grounded_cited_calibration
