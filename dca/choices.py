"""The words an option may take, in one place: the library checks values against these, and
the CLI's help lists them (this module imports nothing, so `dca --help` stays light)."""

from __future__ import annotations

RETRIEVAL_MODES = ("hybrid", "dense", "bm25")  # how an index is searched (the first is the default)
ANSWER_STYLES = ("cited", "short")  # grounded answers: sentences ending in [n], or the answer alone
STRATEGIES = ("direct", "cot", "vote", "program", "program-vote", "mix", "verify")  # how a question is reasoned about
VOTING = ("vote", "program-vote", "mix", "verify")  # the strategies that draw several samples
VERIFY_SAMPLES = ("cot", "program", "mix")  # verify: what kind of samples it draws and weighs
THINKING_MODES = ("show", "hide", "summary")  # how the CLI shows thinking
EVAL_SETTINGS = ("closed-book", "rag")  # an eval task answered without or with an index
TRACE_FORMATS = ("program", "cot", "reference", "reference-program")  # dca train collect
PAIR_ANCHORS = ("none", "greedy")  # dca train pairs: the greedy solution on one side of every pair
BACKENDS = ("local", "openai")  # where the model runs: llama.cpp here, or an OpenAI-compatible server
DTYPES = ("auto", "bfloat16", "float32")  # training precision (auto: bfloat16 where the hardware computes it)
