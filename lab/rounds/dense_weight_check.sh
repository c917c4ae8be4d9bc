#!/usr/bin/env bash
# The downstream check of a dense weight of 0.6 in hybrid search (lab/NOTEBOOK.md, "A dense
# weight, measured"): SQuAD 2.0 and HotpotQA RAG short answers at k = 3, as lab/rounds/fusion_check.sh
# made the convex runs at 0.5, then question by question against those.
#   TAG=zen4 nohup lab/rounds/dense_weight_check.sh >> logs/dense_weight_check.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
W=(.venv/bin/python lab/dense_weight_eval.py --alpha 0.6 --)
"${W[@]}" eval squad2 --data "$D/squad2_dev/dev-v2.0.json" --answerable-only --max-tokens 32 --limit 100 --style short \
  --k 3 --out "$E/squad2-rag-short-k3-convex-dense06-$TAG" || exit 1
"${W[@]}" eval hotpotqa --data "$D/hotpotqa/hotpot_dev_distractor_100.json" --setting rag --max-tokens 32 --style short \
  --k 3 --out "$E/hotpotqa-rag-short-k3-convex-dense06-$TAG" || exit 1
for s in squad2 hotpotqa; do
  .venv/bin/python lab/paired_table.py "$E/$s-rag-short-k3-convex-$TAG" "$E/$s-rag-short-k3-convex-dense06-$TAG"
done
