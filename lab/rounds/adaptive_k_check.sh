#!/usr/bin/env bash
# Adaptive k with the convex fusion: the cutoff chosen on SQuAD calibration rows by
# lab/adaptive_k_table.py (k = 5 the most), answered with dca eval RAG short answers on
# SQuAD 2.0 answerable 100 and HotpotQA dev 100, against k = 3 (lab/rounds/fusion_check.sh's convex runs).
#   CUTOFF=0.6 nohup lab/rounds/adaptive_k_check.sh >> logs/adaptive_k_check.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
CUTOFF=${CUTOFF:-0.6}
NAME=k5c$(printf '%03d' "$(echo "$CUTOFF * 100 / 1" | bc)")
echo "== $(date -u +%FT%TZ) squad $NAME"
.venv/bin/dca eval squad2 --data "$D/squad2_dev/dev-v2.0.json" --answerable-only --max-tokens 32 --limit 100 --style short \
  --k 5 --k-cutoff "$CUTOFF" --out "$E/squad2-rag-short-$NAME-convex-$TAG" || exit 1
echo "== $(date -u +%FT%TZ) hotpot $NAME"
.venv/bin/dca eval hotpotqa --data "$D/hotpotqa/hotpot_dev_distractor_100.json" --setting rag --max-tokens 32 --style short \
  --k 5 --k-cutoff "$CUTOFF" --out "$E/hotpotqa-rag-short-$NAME-convex-$TAG" || exit 1
for s in squad2 hotpotqa; do
  .venv/bin/python lab/paired_table.py "$E/$s-rag-short-k3-convex-$TAG" "$E/$s-rag-short-$NAME-convex-$TAG"
done
echo "== $(date -u +%FT%TZ) done"
