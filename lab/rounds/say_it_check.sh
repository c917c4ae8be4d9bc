#!/usr/bin/env bash
# Cited answers that are a citation alone ("[1]"), answered again (issue 31): the recorded cited
# runs (SQuAD 2.0 answerable, evaluation rows and calibration rows 1000-1099; HotpotQA 100, its
# baseline made first from a checkout of the code before the change, OLD), copied without their
# bare rows and resumed with the code of now, then compared question by question.
#   OLD=/tmp/old TAG=zen4 nohup lab/rounds/say_it_check.sh >> logs/say_it_check.log 2>&1 &
set -uo pipefail
cd "$(dirname "$0")/.."
D=${DATA:-../shared/data}
E=lab/results/eval
TAG=${TAG:-zen4}
P=.venv/bin/python
if [ -n "${OLD:-}" ] && [ ! -f "$E/hotpotqa-rag-cited-k3-convex-$TAG/summary.json" ]; then
  (cd "$OLD" && PYTHONPATH="$OLD" DCA_HOME="$OLDPWD" "$OLDPWD/.venv/bin/python" -m dca eval hotpotqa \
    --data "$(realpath "$OLDPWD/$D")/hotpotqa/hotpot_dev_distractor_100.json" --setting rag --max-tokens 96 --k 3 \
    --out "$OLDPWD/$E/hotpotqa-rag-cited-k3-convex-$TAG") || exit 1
fi
RUNS="squad2-rag-cited-k3-convex-cal1000-$TAG squad2-rag-cited-k3-convex-$TAG hotpotqa-rag-cited-k3-convex-$TAG"
for r in $RUNS; do $P lab/bare_citation_table.py --prepare "$E/$r" "$E/${r%-$TAG}-sayit-$TAG" || exit 1; done
.venv/bin/dca eval squad2 --data "$D/squad2_dev/dev-v2.0.json" --answerable-only --max-tokens 96 --k 3 --offset 1000 \
  --limit 100 --out "$E/squad2-rag-cited-k3-convex-cal1000-sayit-$TAG" || exit 1
.venv/bin/dca eval squad2 --data "$D/squad2_dev/dev-v2.0.json" --answerable-only --max-tokens 96 --k 3 --limit 100 \
  --out "$E/squad2-rag-cited-k3-convex-sayit-$TAG" || exit 1
.venv/bin/dca eval hotpotqa --data "$D/hotpotqa/hotpot_dev_distractor_100.json" --setting rag --max-tokens 96 --k 3 \
  --out "$E/hotpotqa-rag-cited-k3-convex-sayit-$TAG" || exit 1
PAIRS=""
for r in $RUNS; do PAIRS="$PAIRS $E/$r $E/${r%-$TAG}-sayit-$TAG"; done
$P lab/bare_citation_table.py $PAIRS
