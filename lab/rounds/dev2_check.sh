#!/usr/bin/env bash
# Issue 29: a second dev split that no adapter was ever chosen on. The shipped programs adapter
# was shipped partly for its +4 on dev (train rows 101-200), so its score there is inflated by the
# choice (winner's curse) and every later candidate compared on those rows starts behind.
# dev2 = the last 100 GSM8K train rows (7374-7473): no adapter trained on them (the shipped one
# on rows 201-600, DPO rounds on 201-454) and none was chosen on them. Run it alone:
#   nohup lab/rounds/dev2_check.sh dpo3 [dpo3b ...] >> logs/dev2.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
run() {  # NAME ADAPTER
  echo "== $(date -u +%FT%TZ) dev2 $1"
  .venv/bin/dca eval gsm8k --data "$D/gsm8k/train.jsonl" --offset 7373 --limit 100 --strategy program \
    --adapter "$2" --out "$E/gsm8k-train-dev2-program-$1" || exit 1
}
run "shipped-$TAG" qwen2.5-coder-1.5b-programs
for name in "$@"; do run "$name" "runs/train/$name/$name.gguf"; done
.venv/bin/python lab/paired_table.py "$E/gsm8k-train-dev2-program-shipped-$TAG" \
  $(for name in "$@"; do echo "$E/gsm8k-train-dev2-program-$name"; done)
echo "== $(date -u +%FT%TZ) done"
