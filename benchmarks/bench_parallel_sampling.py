"""Parallel sampling: wall time of N = 1, 4, 8 samples of 256 tokens, decoded as N sequences of
one llama.cpp batch (dca.runtime.sampling.sample_parallel), against N sequential runs.

    .venv/bin/python benchmarks/bench_parallel_sampling.py [--model qwen2.5-coder-1.5b] [--tokens 256]
"""

from __future__ import annotations

import argparse
import time

from _common import print_table, write_results

from dca.runtime.llama import GenerationConfig, RuntimeConfig, load_runtime
from dca.runtime.sampling import sample_parallel

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--n", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    runtime = load_runtime(args.model, config=RuntimeConfig(n_ctx=4096))
    prompt = runtime.chat_prompt([{"role": "user", "content": PROMPT}])
    config = GenerationConfig(max_tokens=args.tokens, temperature=0.8, seed=1, ignore_eos=True)
    sample_parallel(runtime, prompt, 1, GenerationConfig(max_tokens=8))  # warm up both contexts
    runtime.complete(prompt, GenerationConfig(max_tokens=8))
    rows = []
    base_batched = None
    for n in args.n:
        start = time.perf_counter()
        batched = sample_parallel(runtime, prompt, n, config)
        batched_s = time.perf_counter() - start
        start = time.perf_counter()
        sequential_tokens = 0
        for s in range(n):
            runtime.llm.reset()  # each sequential run pays its prompt, as a batch pays it once
            sequential_tokens += runtime.complete(
                prompt, GenerationConfig(max_tokens=args.tokens, temperature=0.8, seed=1 + s, ignore_eos=True)
            ).completion_tokens
        sequential_s = time.perf_counter() - start
        batched_tokens = sum(c.completion_tokens for c in batched)
        base_batched = base_batched or batched_s
        rows.append(
            {
                "n": n,
                "batched_s": batched_s,
                "sequential_s": sequential_s,
                "batched_tok_s": batched_tokens / batched_s,
                "sequential_tok_s": sequential_tokens / sequential_s,
                "speedup": sequential_s / batched_s,
                "batched_vs_n1": batched_s / base_batched,
            }
        )
        print_table(rows[-1:], list(rows[-1]))
    print()
    print_table(rows, list(rows[0]))
    write_results(
        "parallel_sampling", {"model": args.model, "tokens": args.tokens, "threads": runtime.n_threads, "rows": rows}
    )


if __name__ == "__main__":
    main()
