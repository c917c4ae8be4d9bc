#!/usr/bin/env bash
# Issue 29, DPO round 3: pairs anchored on the greedy program, a smaller step. One resumable chain;
# run it alone on the machine:
#   nohup lab/rounds/dpo_round3.sh >> logs/dpo_round3.log 2>&1 &
# Rounds 1 and 2 paired temperature samples and lost on dev (-5, -10). Here every pair has the
# shipped adapter's greedy program on one side (rejected where it is wrong, chosen where it is
# right), on the same questions as round 2 (train rows 201-454, whose samples are committed), at
# lr 2e-5 (round 2: 5e-5). Then dev (train rows 101-200) as the policy, and the shipped adapter
# on the same rows on the same machine (greedy output differs between machines).
# NAME=dpo3b LR=5e-5 trains the same pairs at round 2's step (the reference cache is shared);
# the greedy programs, pairs and the shipped adapter's dev run are then already done.
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
R1=lab/results/train/dpo1
R3=lab/results/train/dpo3
SHIPPED=qwen2.5-coder-1.5b-programs
NAME=${NAME:-dpo3}
LR=${LR:-2e-5}
TAG=${TAG:?name this machine, e.g. TAG=zen4: the shipped adapter runs on dev here too}
stamp() { echo "== $(date -u +%FT%TZ) $*"; }
mkdir -p "$R3"

stamp greedy programs, train rows 201-454
.venv/bin/dca train collect --data "$D/gsm8k/train.jsonl" --out "$R3/greedy.jsonl" --format program \
  --greedy-first --samples 0 --offset 200 --limit 254 --adapter "$SHIPPED" --json || exit 1

stamp pairs
.venv/bin/dca train pairs --data "$R3/greedy.jsonl" --data "$R1/traces.jsonl" --anchor greedy \
  --out "$R3/pairs.jsonl" --per-question 2 --json || exit 1

stamp "$NAME"
.venv/bin/dca train dpo --data "$R3/pairs.jsonl" --out "$NAME" --init-adapter "models/adapters/$SHIPPED.gguf" \
  --rank 8 --alpha 16 --lr "$LR" --warmup 2 --epochs 1 --checkpoint-every 5 --no-grad-checkpointing --json || exit 1

stamp dev eval "$NAME"
.venv/bin/dca eval gsm8k --data "$D/gsm8k/train.jsonl" --offset 100 --limit 100 --strategy program \
  --adapter "runs/train/$NAME/$NAME.gguf" --out "$E/gsm8k-train-dev-program-$NAME" || exit 1

stamp dev eval shipped, this machine
.venv/bin/dca eval gsm8k --data "$D/gsm8k/train.jsonl" --offset 100 --limit 100 --strategy program \
  --adapter "$SHIPPED" --out "$E/gsm8k-train-dev-program-shipped-$TAG" || exit 1
.venv/bin/python lab/paired_table.py "$E/gsm8k-train-dev-program-$NAME" "$E/gsm8k-train-dev-program-shipped-$TAG"
stamp done
