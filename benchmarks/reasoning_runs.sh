#!/usr/bin/env bash
# The reasoning-strategy evaluations of docs/RESULTS.md, one after another (each needs the CPU
# alone). Every run is resumable: rerunning this script continues where it stopped.
#   nohup benchmarks/reasoning_runs.sh > runs/reasoning_runs.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-../shared/data}
OUT=benchmarks/results/eval
GSM="$DATA/gsm8k/test_dev.jsonl"
run() { echo "== $(date -u +%FT%TZ) $*"; .venv/bin/dca eval "$@" || echo "!! failed: $*"; }

run gsm8k --data "$GSM" --limit 200 --strategy program --out $OUT/gsm8k-program
run gsm8k --data "$GSM" --limit 200 --strategy cot --budget 512 --out $OUT/gsm8k-cot-512
run gsm8k --data "$GSM" --limit 200 --strategy mix --samples 5 --out $OUT/gsm8k-mix-adaptive5
run gsm8k --data "$GSM" --limit 200 --strategy vote --samples 5 --out $OUT/gsm8k-vote-adaptive5
for b in 64 128 256 1024; do
  run gsm8k --data "$GSM" --limit 200 --strategy cot --budget $b --out $OUT/gsm8k-cot-$b
done
run gsm8k --data "$GSM" --limit 200 --strategy program --no-repair --out $OUT/gsm8k-program-norepair
run gsm8k --data "$GSM" --limit 200 --strategy verify --samples 5 --fixed --out $OUT/gsm8k-verify5
for n in 3 5 8; do
  run gsm8k --data "$GSM" --limit 200 --strategy vote --samples $n --fixed --out $OUT/gsm8k-vote-fixed$n
done
