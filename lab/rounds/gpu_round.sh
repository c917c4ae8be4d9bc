#!/usr/bin/env bash
# One round of self-training on a GPU with dca's own commands (issue 29: one training path; it
# replaces tools/gpu_prepare.py + tools/gpu_rest.py, which repeated dca/train in one script):
#   collect (samples of many questions decoded in one torch batch, judged in dca's sandbox)
#   -> pairs -> dpo, or -> sft; each step resumable, as on the CPU.
# On a machine where dca is installed with its train extra, run it as is:
#   DATA=../shared/data/gsm8k/train.jsonl NAME=gpu2 lab/rounds/gpu_round.sh
# On the lent device machine (no package index, no llama.cpp build, 64 MiB a call) carry:
#   .gpu/site: the llama_cpp package folder copied from .venv/lib/python3.11/site-packages (its
#     libraries are loaded through ctypes: any Python 3 runs it; the build is portable), and the
#     gguf and diskcache wheels unpacked (pip download --no-deps, see the device README);
#   .gpu/home/models: catalog.toml and the base GGUF, reassembled there from 50 MiB pieces and
#     checked against its sha256 (`split -b 52428800 -d -a 2 models/<base>.gguf .gpu/parts/p`);
#   the data file.
# Not yet run on the lent GPU: no device machine was lent to a session since it was written.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
DATA=${DATA:?the GSM8K train JSONL}
NAME=${NAME:-gpu}
OFFSET=${OFFSET:-200}  # train rows 100-199 (and 0-99) stay the dev split
LIMIT=${LIMIT:-1000}
SAMPLES=${SAMPLES:-8}
BATCH=${BATCH:-64}     # questions decoded together
MODE=${MODE:-dpo}      # dpo: preference pairs from right and wrong samples (IRPO); sft: the right ones (ReST-EM)
INIT=${INIT:-}         # dpo: the adapter it starts from (e.g. models/adapters/qwen2.5-coder-1.5b-programs.gguf)
MODEL=${MODEL:-}       # the generator (default: the catalog's)
DEVICE=${DEVICE:-cuda} # cpu: the same chain on the CPU (slow; a smoke run on a tiny model)
[ -d .gpu/site ] && export PYTHONPATH=".gpu/site:${PYTHONPATH:-}"
[ -d .gpu/home ] && export DCA_HOME="$PWD/.gpu/home"
stamp() { echo "== $(date -u +%FT%TZ) $*"; }
mkdir -p "runs/$NAME"
TRACES="runs/$NAME/traces.jsonl"

stamp collect "$LIMIT questions, $SAMPLES samples, $BATCH at once"
$PY -m dca train collect --device "$DEVICE" --batch-questions "$BATCH" ${MODEL:+--model "$MODEL"} --data "$DATA" --out "$TRACES" \
  --format program --samples "$SAMPLES" --keep 2 --offset "$OFFSET" --limit "$LIMIT" ${INIT:+--adapter "$INIT"} --json

if [ "$MODE" = dpo ]; then
  stamp pairs
  $PY -m dca train pairs --data "$TRACES" --out "runs/$NAME/pairs.jsonl" --json
  stamp dpo
  $PY -m dca train dpo --device "$DEVICE" --data "runs/$NAME/pairs.jsonl" --out "$NAME" ${INIT:+--init-adapter "$INIT"} \
    --rank 8 --alpha 16 --lr 5e-5 --epochs 1 --json
else
  stamp sft
  $PY -m dca train sft --device "$DEVICE" --data "$TRACES" --out "$NAME" --max-easy 1 --rank 8 --alpha 16 --lr 1e-4 --json
fi
stamp done "runs/train/$NAME/$NAME.gguf; measure it with dca eval on the CPU (llama.cpp: the numbers that count)"
