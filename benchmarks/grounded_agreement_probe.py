"""Grounded or not, a third signal tried (issue 31): sampling agreement instead of P("Yes").

After the greedy short answer, N more answers are sampled over the same prompt (temperature 0.7,
dca's sampler) and the support is the share that say the same thing as the greedy one after
SQuAD normalisation: a cheap relative of semantic entropy (Farquhar et al. 2024), the idea
being that a model answering from nothing answers differently each time. It replaces the
pipeline's P("Yes") check for this process only, so `dca eval ... --min-support 0` records it
as each row's support and benchmarks/grounded_table.py reads it as it reads P("Yes").

    DCA_HOME=. .venv/bin/python benchmarks/grounded_agreement_probe.py eval squad2 \\
        --data ../shared/data/squad2_dev/dev-v2.0.json --setting rag --style short --max-tokens 32 \\
        --offset 3000 --limit 24 --adapter none --min-support 0 --out benchmarks/results/eval/squad2-agreement-cal24
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import replace
from typing import Any

import dca.pipeline as pipeline
from dca.answer import strip_citations
from dca.eval.metrics import normalize_text

N = int(os.environ.get("AGREE_N", "4"))
_LEAD = re.compile(r"^\s*(the answer is|answer:)\s*", re.IGNORECASE)


def _normal(text: str) -> str:
    return normalize_text(_LEAD.sub("", strip_citations(text).strip()))


def agreement(generator: Any, messages: Any, text: str, gen: Any, question: str = "", grounded: Any = None) -> float:
    samples = generator.sample(generator.chat_prompt(messages), N, replace(gen, temperature=0.7, seed=1))
    return sum(_normal(c.text) == _normal(text) for c in samples) / N


if __name__ == "__main__":
    pipeline._support = agreement  # type: ignore[assignment]
    from dca.cli import main

    sys.argv = ["dca", *sys.argv[1:]]
    main()
