#!/usr/bin/env bash
# The reasoning-strategy evaluations of lab/NOTEBOOK.md, one after another (each needs the CPU
# alone). Every run is resumable: rerunning this script continues where it stopped.
#   nohup lab/rounds/reasoning_runs.sh >> runs/reasoning_runs.log 2>&1 &
# Order: what decides a default first (program, HotpotQA, mix), then the budget curve, then the rest.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
OUT=lab/results/eval
GSM="$DATA/gsm8k/test_dev.jsonl"
HOTPOT="$DATA/hotpotqa/hotpot_dev_distractor_100.json"
MATH="$DATA/math500/test.jsonl"
# --adapter none: these measure the base model (reasoning strategies would load the shipped adapter)
run() { echo "== $(date -u +%FT%TZ) $*"; .venv/bin/dca eval "$@" --adapter none || echo "!! failed: $*"; }

# GSM8K, first 200 rows of test_dev ("program" without repair is read off the program run:
# greedy decoding makes its first attempt identical, see lab/NOTEBOOK.md).
run gsm8k --data "$GSM" --limit 200 --strategy program --out $OUT/gsm8k-program
run gsm8k --data "$GSM" --limit 200 --strategy cot --budget 512 --out $OUT/gsm8k-cot-512
# HotpotQA dev 100: plain RAG short is lab/results/eval/hotpotqa-rag-short (EM 0.31).
run hotpotqa --data "$HOTPOT" --setting rag --style short --strategy cot --budget 256 \
  --out $OUT/hotpotqa-rag-short-cot256
run hotpotqa --data "$HOTPOT" --setting rag --style short --strategy cot --budget 256 --searches 3 \
  --out $OUT/hotpotqa-search3
# (without the fallback: identical to hotpotqa-search3 as long as its fallback never fires, as measured)
run gsm8k --data "$GSM" --limit 200 --strategy program-vote --samples 5 --out $OUT/gsm8k-program-vote5
run gsm8k --data "$GSM" --limit 200 --strategy mix --samples 5 --out $OUT/gsm8k-mix-adaptive5
# The budget curve (512 is gsm8k-cot-512).
for b in 64 128 256; do
  run gsm8k --data "$GSM" --limit 200 --strategy cot --budget $b --out $OUT/gsm8k-cot-$b
done
# 1024: no thought reaches 512, so greedy decoding writes the same; 40 rows check that.
run gsm8k --data "$GSM" --limit 40 --strategy cot --budget 1024 --out $OUT/gsm8k-cot-1024
# MATH-500 program with sympy allowed (since 2026-11-23; 16 of the 100 first programs imported it)
run math500 --data "$MATH" --limit 100 --strategy program --out $OUT/math500-program-sympy
run gsm8k --data "$GSM" --limit 200 --strategy vote --samples 5 --out $OUT/gsm8k-vote-adaptive5
# MATH-500, first 100: direct and the two best GSM8K strategies.
run math500 --data "$MATH" --limit 100 --out $OUT/math500-direct
run math500 --data "$MATH" --limit 100 --strategy program --out $OUT/math500-program
run math500 --data "$MATH" --limit 100 --strategy mix --samples 5 --out $OUT/math500-mix-adaptive5
# One fixed run of 8 scored samples gives verify and the plain majority at N=8, and (its first
# 3 and 5 samples, the greedy one first) at N=3 and N=5: lab/reasoning_table.py.
run gsm8k --data "$GSM" --limit 200 --strategy verify --samples 8 --fixed --out $OUT/gsm8k-verify8
