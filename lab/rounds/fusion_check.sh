#!/usr/bin/env bash
# Hybrid search's fusion (convex combination against reciprocal rank fusion): retrieval on four
# question sets, then the answers at dca ask's k = 3 (RAG short answers, the base model) on
# SQuAD 2.0 answerable 100 and HotpotQA dev 100 with each fusion, back to back on one machine.
# The RRF runs use the code before the change (OLD: a checkout of it, default commit a8ae821).
#   nohup lab/rounds/fusion_check.sh >> logs/fusion_check.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=$(cd "${DATA:-../shared/data}" && pwd)
E=lab/results/eval
TAG=${TAG:-zen4}
OLD=${OLD:-/tmp/old}
[ -d "$OLD/dca" ] || git worktree add "$OLD" a8ae821 || exit 1
for set in ${SETS-squad squad-calibration hotpotqa docs}; do
  echo "== $(date -u +%FT%TZ) retrieval $set"
  .venv/bin/python benchmarks/bench_retrieval_quality.py --set "$set" | tail -6 || exit 1
done
SQUAD=(squad2 --data "$D/squad2_dev/dev-v2.0.json" --answerable-only --max-tokens 32 --limit 100 --style short --k 3)
HOTPOT=(hotpotqa --data "$D/hotpotqa/hotpot_dev_distractor_100.json" --setting rag --max-tokens 32 --style short --k 3)
# run from the old checkout: `python -m` puts the working folder first on sys.path
old() { (here=$PWD; cd "$OLD" && PYTHONPATH="$OLD" DCA_HOME="$here" "$here/.venv/bin/python" -m dca "$@"); }
echo "== $(date -u +%FT%TZ) squad rrf";    old eval "${SQUAD[@]}" --out "$PWD/$E/squad2-rag-short-k3-rrf-$TAG" || exit 1
echo "== $(date -u +%FT%TZ) squad convex"; .venv/bin/dca eval "${SQUAD[@]}" --out "$E/squad2-rag-short-k3-convex-$TAG" || exit 1
echo "== $(date -u +%FT%TZ) hotpot rrf";    old eval "${HOTPOT[@]}" --out "$PWD/$E/hotpotqa-rag-short-k3-rrf-$TAG" || exit 1
echo "== $(date -u +%FT%TZ) hotpot convex"; .venv/bin/dca eval "${HOTPOT[@]}" --out "$E/hotpotqa-rag-short-k3-convex-$TAG" || exit 1
for s in squad2 hotpotqa; do
  .venv/bin/python lab/paired_table.py "$E/$s-rag-short-k3-rrf-$TAG" "$E/$s-rag-short-k3-convex-$TAG"
done
echo "== $(date -u +%FT%TZ) done"
