#!/usr/bin/env bash
# Does the cited instruction ever say "not in the sources"? The first 100 SQuAD 2.0 dev questions,
# answerable and unanswerable, answered in the cited style with the instruction before 2026-12-06
# and with "sentence" (dca's since), dca's retry of a bare answer as it ships.
#   TAG=zen4 nohup lab/rounds/cited_refusal_check.sh >> logs/cited_refusal_check.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
P=.venv/bin/python
for V in before sentence; do
  $P lab/cited_instruction_table.py run --variant $V --out "$E/squad2-mixed-rag-cited-k3-convex-$V-$TAG" -- \
    eval squad2 --data "$D/squad2_dev/dev-v2.0.json" --no-answerable-only --max-tokens 96 --k 3 --limit 100 || exit 1
done
$P lab/cited_instruction_table.py table "$E/squad2-mixed-rag-cited-k3-convex-before-$TAG" \
  "$E/squad2-mixed-rag-cited-k3-convex-sentence-$TAG"
