"""Trace collection speed: K samples of one GSM8K train question (the program prompt), generated
by llama.cpp one after another (prompt KV reused), by llama.cpp as K sequences of one batch, and
by torch (the GGUF base dequantized to bfloat16, `generate` with K return sequences).

    .venv/bin/python benchmarks/bench_trace_generation.py [--k 4 8] [--tokens 160]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import print_table, write_results

from dca.config import Paths
from dca.reasoning.program import FENCE, program_messages
from dca.runtime.generation import GenerationConfig
from dca.runtime.llama import RuntimeConfig, load_runtime, resolve_model
from dca.runtime.sampling import sample_parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="../shared/data/gsm8k/train.jsonl")
    parser.add_argument("--k", type=int, nargs="+", default=[4, 8])
    parser.add_argument("--tokens", type=int, default=160)
    parser.add_argument("--no-torch", action="store_true")
    args = parser.parse_args()
    question = json.loads(Path(args.data).read_text(encoding="utf-8").splitlines()[0])["question"]
    runtime = load_runtime(config=RuntimeConfig(n_ctx=4096))
    messages = program_messages([{"role": "user", "content": question}])
    prompt = runtime.chat_prompt(messages) + FENCE
    rows = []
    for k in args.k:
        config = GenerationConfig(max_tokens=args.tokens, temperature=0.8, seed=1, ignore_eos=True)
        start = time.perf_counter()
        tokens = 0
        for s in range(k):
            tokens += runtime.sample(prompt, 1, GenerationConfig(**{**config.__dict__, "seed": 1 + s}))[
                0
            ].completion_tokens
        rows.append({"engine": "llama.cpp sequential", "k": k, "tok_s": tokens / (time.perf_counter() - start)})
        start = time.perf_counter()
        tokens = sum(c.completion_tokens for c in sample_parallel(runtime, prompt, k, config))
        rows.append({"engine": "llama.cpp batched", "k": k, "tok_s": tokens / (time.perf_counter() - start)})
        print_table(rows[-2:], ["engine", "k", "tok_s"])
    if not args.no_torch:
        import torch
        from transformers import AutoModelForCausalLM

        torch.set_num_threads(runtime.n_threads)
        _, path = resolve_model(None, Paths.resolve())
        started = time.perf_counter()
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.bfloat16)
        load_s = time.perf_counter() - started
        ids = torch.tensor([runtime.tokenize(prompt)])
        for k in args.k:
            start = time.perf_counter()
            with torch.no_grad():
                out = model.generate(
                    ids, do_sample=True, temperature=0.8, max_new_tokens=args.tokens, min_new_tokens=args.tokens,
                    num_return_sequences=k, pad_token_id=0,
                )  # fmt: skip
            tokens = (out.shape[1] - ids.shape[1]) * k
            rows.append(
                {"engine": f"torch bf16 (load {load_s:.0f} s)", "k": k, "tok_s": tokens / (time.perf_counter() - start)}
            )
            print_table(rows[-1:], ["engine", "k", "tok_s"])
    print()
    print_table(rows, ["engine", "k", "tok_s"])
    write_results("trace_generation", {"tokens": args.tokens, "threads": runtime.n_threads, "rows": rows})


if __name__ == "__main__":
    main()
