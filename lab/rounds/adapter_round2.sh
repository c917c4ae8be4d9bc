#!/usr/bin/env bash
# Reasoning adapter, round 2 (issue 10), as one resumable chain; run it alone on the machine:
#   nohup lab/rounds/adapter_round2.sh >> runs/adapter_round2.log 2>&1 &
# Every step resumes where it stopped (collect and sft record their progress; eval skips done rows).
# 1. Traces from train rows 400+ (rows 100-199 were the prompt A/B dev split; 200-391 are own.jsonl):
#    a greedy program first, 4 samples only where it is wrong, a hinted pass where all failed.
#    LIMIT grows the same file in steps (the first 100 measure the rationalization yield).
# 2. SFT from the base on own.jsonl + these, easy questions capped at one trace (--max-easy 1),
#    own1's recipe (lab/NOTEBOOK.md).
# 3. GSM8K train rows 101-200 (dev), then the first 200 of test_dev, in the program format with
#    the adapter (test: base 0.620, own1 0.625).
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
LIMIT=${LIMIT:-600}
TRACES=runs/traces/adaptive.jsonl
stamp() { echo "== $(date -u +%FT%TZ) $*"; }

stamp collect --limit "$LIMIT"
.venv/bin/dca train collect --data "$DATA/gsm8k/train.jsonl" --out "$TRACES" --format program \
  --samples 4 --keep 2 --greedy-first --rationalize --offset 400 --limit "$LIMIT" --json || exit 1
[ "${STOP_AFTER_COLLECT:-0}" = 1 ] && exit 0

cat runs/traces/own.jsonl "$TRACES" > runs/traces/round2.jsonl
stamp sft own2
.venv/bin/dca train sft --data runs/traces/round2.jsonl --out own2 --max-easy 1 --rank 8 --alpha 16 \
  --lr 1e-4 --seq-len 512 --grad-accum 4 --checkpoint-every 10 --no-grad-checkpointing || exit 1

stamp dev eval base  # train rows 101-200 (never trained on)
.venv/bin/dca eval gsm8k --data "$DATA/gsm8k/train.jsonl" --offset 100 --limit 100 --strategy program \
  --adapter none --out runs/eval/train-dev-program-base || exit 1
stamp dev eval own2
.venv/bin/dca eval gsm8k --data "$DATA/gsm8k/train.jsonl" --offset 100 --limit 100 --strategy program \
  --adapter runs/train/own2/own2.gguf --out runs/eval/train-dev-program-own2 || exit 1

stamp eval own2
.venv/bin/dca eval gsm8k --data "$DATA/gsm8k/test_dev.jsonl" --limit 200 --strategy program \
  --adapter runs/train/own2/own2.gguf --out lab/results/eval/gsm8k-program-own2 || exit 1
