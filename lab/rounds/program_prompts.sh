#!/usr/bin/env bash
# History: --program-prompt left dca on 2026-12-07 (none of the three beat "plain"); this ran at
# commit 3553f0a or before, and git history holds the prompts it compared.
# Issue 29, the policy: the program instruction (dca/reasoning/program.py PROGRAM_PROMPTS) on the
# two train-side dev splits, greedy programs with the shipped adapter, paired against "plain".
#   SPLIT=dev2 nohup lab/rounds/program_prompts.sh quantities plan check >> logs/program_prompts.log 2>&1 &
# dev2 = train rows 7374-7473 (nothing trained or chosen on them), dev = train rows 101-200.
# The "plain" runs of both splits are the committed -shipped-$TAG runs of the same machine kind;
# on another CPU make them first (lab/rounds/dev2_check.sh for dev2; for dev the same dca eval with
# --offset 100 --out $E/gsm8k-train-dev-program-shipped-$TAG). Run it alone on the machine.
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
SPLIT=${SPLIT:-dev2}
case "$SPLIT" in
  dev2) OFFSET=7373 ;;
  dev) OFFSET=100 ;;
  *) echo "SPLIT must be dev or dev2" >&2; exit 1 ;;
esac
for name in "$@"; do
  echo "== $(date -u +%FT%TZ) $SPLIT $name"
  .venv/bin/dca eval gsm8k --data "$D/gsm8k/train.jsonl" --offset "$OFFSET" --limit 100 --strategy program \
    --adapter qwen2.5-coder-1.5b-programs --program-prompt "$name" \
    --out "$E/gsm8k-train-$SPLIT-program-prompt-$name" || exit 1
done
.venv/bin/python lab/paired_table.py "$E/gsm8k-train-$SPLIT-program-shipped-$TAG" \
  $(for name in "$@"; do echo "$E/gsm8k-train-$SPLIT-program-prompt-$name"; done)
echo "== $(date -u +%FT%TZ) done"
