#!/usr/bin/env bash
# Issue 29, next steps after DPO round 1, as one resumable chain; run it alone on the machine:
#   nohup lab/rounds/dpo_round2.sh >> logs/dpo_round2.log 2>&1 &
# Every step resumes where it stopped (eval skips done rows; collect, pairs and dpo record progress).
# 1. The round-1 verifier on the dev split (GSM8K train rows 101-200, never trained on): the
#    shipping rule needs it to beat the majority there too, and the pick rule (best-of-5 by the
#    score, or the score-weighted vote) is chosen on these rows, not on test_dev.
# 2. More judged samples from the shipped adapter (train rows 347 onwards; the committed file
#    grows: commit it as it does), then pairs for round 2. Run to the end on 2026-12-05: dpo2
#    lost 10 points on dev (lab/NOTEBOOK.md, "DPO round 2").
# 3. DPO round 2: the same recipe at half the learning rate on the larger pair set, then its
#    dev accuracy as the policy (program, greedy) against the shipped adapter's 0.72.
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
LIMIT=${LIMIT:-254}  # questions collected from row 201 on: 254 (rows 201-454) made round 2 (lab/NOTEBOOK.md)
R1=lab/results/train/dpo1
R2=lab/results/train/dpo2
stamp() { echo "== $(date -u +%FT%TZ) $*"; }

stamp dev verify, round-1 verifier
.venv/bin/dca eval gsm8k --data "$D/gsm8k/train.jsonl" --offset 100 --limit 100 --strategy verify \
  --verify-on program --verifier "$R1/run/dpo1.verifier.json" --samples 5 --fixed \
  --out lab/results/eval/gsm8k-train-dev-verify5-dpo1 || exit 1
.venv/bin/python lab/weighted_vote_table.py lab/results/eval/gsm8k-train-dev-verify5-dpo1
[ "${STOP_AFTER_DEV:-0}" = 1 ] && exit 0

stamp collect --limit "$LIMIT"
.venv/bin/dca train collect --data "$D/gsm8k/train.jsonl" --out "$R1/traces.jsonl" --format program \
  --samples 4 --offset 200 --limit "$LIMIT" --adapter qwen2.5-coder-1.5b-programs --json || exit 1
mkdir -p "$R2"
stamp pairs
.venv/bin/dca train pairs --data "$R1/traces.jsonl" --out "$R2/pairs.jsonl" --per-question 2 --json || exit 1

stamp dpo2
.venv/bin/dca train dpo --data "$R2/pairs.jsonl" --out dpo2 --init-adapter models/adapters/qwen2.5-coder-1.5b-programs.gguf \
  --rank 8 --alpha 16 --lr 5e-5 --warmup 2 --epochs 1 --checkpoint-every 5 --no-grad-checkpointing --json || exit 1

stamp dev eval dpo2  # train rows 101-200; the shipped adapter: 0.72
.venv/bin/dca eval gsm8k --data "$D/gsm8k/train.jsonl" --offset 100 --limit 100 --strategy program \
  --adapter runs/train/dpo2/dpo2.gguf --out lab/results/eval/gsm8k-train-dev-program-dpo2 || exit 1
stamp done
