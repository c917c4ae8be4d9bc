#!/usr/bin/env bash
# The cited instruction "sentence" (lab/cited_instruction_table.py) against the shipped one:
# SQuAD 2.0 calibration rows 1000-1099 (where the choice is made), then the evaluation rows
# (SQuAD 2.0 answerable first 100, HotpotQA dev 100), each with dca's retry of a bare answer as it
# ships; compared with the recorded -sayit runs of the shipped instruction.
#   TAG=zen4 nohup lab/rounds/cited_instruction_check.sh >> logs/cited_instruction_check.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
P=.venv/bin/python
V=${VARIANT:-sentence}
RUN="$P lab/cited_instruction_table.py run --variant $V"
$RUN --out "$E/squad2-rag-cited-k3-convex-cal1000-$V-$TAG" -- eval squad2 --data "$D/squad2_dev/dev-v2.0.json" \
  --answerable-only --max-tokens 96 --k 3 --offset 1000 --limit 100 || exit 1
$RUN --out "$E/squad2-rag-cited-k3-convex-$V-$TAG" -- eval squad2 --data "$D/squad2_dev/dev-v2.0.json" \
  --answerable-only --max-tokens 96 --k 3 --limit 100 || exit 1
$RUN --out "$E/hotpotqa-rag-cited-k3-convex-$V-$TAG" -- eval hotpotqa \
  --data "$D/hotpotqa/hotpot_dev_distractor_100.json" --setting rag --max-tokens 96 --k 3 || exit 1
for r in squad2-rag-cited-k3-convex-cal1000 squad2-rag-cited-k3-convex hotpotqa-rag-cited-k3-convex; do
  $P lab/cited_instruction_table.py table "$E/$r-sayit-$TAG" "$E/$r-$V-$TAG"
done
