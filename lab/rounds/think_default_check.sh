#!/usr/bin/env bash
# Issue 29's first goal line, measured (not replayed) on all 200 rows of GSM8K test_dev: the
# `--think` default (verify, gated by token certainty, the shipped adapter and verifier) against
# the base's direct answer (as the base was first run: --max-tokens 400), back to back on one
# machine, each alone. TAG names the machine (the runs' summaries record its CPU).
#   TAG=zen4 nohup lab/rounds/think_default_check.sh >> logs/think_default.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
LIMIT=${LIMIT:-200}
echo "== $(date -u +%FT%TZ) think default"
.venv/bin/dca eval gsm8k --data "$D/gsm8k/test_dev.jsonl" --limit "$LIMIT" --strategy verify --sure-above 9.7158 \
  --out "$E/gsm8k-think-default-$TAG" || exit 1
echo "== $(date -u +%FT%TZ) base"
.venv/bin/dca eval gsm8k --data "$D/gsm8k/test_dev.jsonl" --limit "$LIMIT" --max-tokens 400 \
  --out "$E/gsm8k-closed-book-$TAG" || exit 1
.venv/bin/python lab/paired_table.py "$E/gsm8k-closed-book-$TAG" "$E/gsm8k-think-default-$TAG" \
  "$E/gsm8k-program-certainty"
.venv/bin/dca eval report "$E/gsm8k-closed-book-$TAG" "$E/gsm8k-think-default-$TAG"
echo "== $(date -u +%FT%TZ) done"
