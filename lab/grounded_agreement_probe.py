"""Grounded or not, a third signal tried (issue 31): sampling agreement instead of P("Yes").

After the greedy short answer, N more answers are sampled over the same prompt (temperature 0.7,
dca's sampler) and the support is the share that say the same thing as the greedy one after
SQuAD normalisation: a cheap relative of semantic entropy (Farquhar et al. 2024), the idea
being that a model answering from nothing answers differently each time. It replaces the
support check's P("Yes") (the pipeline's support_check stage given another score), so an eval
with min_support 0 records it as each row's support and lab/grounded_table.py reads it as it
reads P("Yes").

    DCA_HOME=. .venv/bin/python lab/grounded_agreement_probe.py ../shared/data/squad2_dev/dev-v2.0.json \\
        lab/results/eval/squad2-agreement-cal24 --offset 3000 --limit 24
"""

from __future__ import annotations

import argparse
import os
import re
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from dca.answer import strip_citations
from dca.eval.metrics import normalize_text

N = int(os.environ.get("AGREE_N", "4"))
_LEAD = re.compile(r"^\s*(the answer is|answer:)\s*", re.IGNORECASE)


def _normal(text: str) -> str:
    return normalize_text(_LEAD.sub("", strip_citations(text).strip()))


def agreement(generator: Any, messages: Any, text: str, gen: Any) -> float:
    samples = generator.sample(generator.chat_prompt(messages), N, replace(gen, temperature=0.7, seed=1))
    return sum(_normal(c.text) == _normal(text) for c in samples) / N


def main() -> None:
    from dca.eval.runner import eval_config, run_eval
    from dca.pipeline import STAGES, support_check

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data")
    parser.add_argument("out", type=Path)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--limit", type=int, default=24)
    args = parser.parse_args()
    checks = tuple(partial(support_check, score=agreement) if c is support_check else c for c in STAGES.checks)
    config = eval_config(
        task="squad2", data=args.data, mode="rag", style="short", max_tokens=32, offset=args.offset,
        limit=args.limit, adapter="none", min_support=0.0,
    )  # fmt: skip
    run_eval(config, out=args.out, stages=replace(STAGES, checks=checks))


if __name__ == "__main__":
    main()
