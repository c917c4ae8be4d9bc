"""Overhead of `dca ask`: decode tokens/s of Assistant.ask against raw llama-cpp-python
(create_completion, streamed) on the same model and the same prompt, in the same run; with
--logprobs, also the cost of reading each token's probabilities (what the --think default's
certainty gate asks of its greedy program): the runtime's decode with and without them, same
prompt, same fixed length.

    .venv/bin/python benchmarks/bench_ask_overhead.py [--model qwen2.5-coder-1.5b] [--tokens 128] [--logprobs]
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import print_table, write_results

from dca.api import AskConfig, Assistant
from dca.runtime.llama import RuntimeConfig

QUESTION = "Explain how dca answers a question, step by step."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--logprobs", action="store_true", help="also time decoding with token probabilities")
    args = parser.parse_args()
    from llama_cpp import Llama

    assistant = Assistant(
        index="default", model=args.model, runtime=RuntimeConfig(n_ctx=4096), config=AskConfig(max_tokens=args.tokens)
    )
    first = assistant.ask(QUESTION)  # loads everything; also gives the exact prompt to replay raw
    runtime = assistant.generator
    parts = assistant.build_prompt(QUESTION, assistant.retrieve(QUESTION))
    prompt = runtime.chat_prompt(parts.messages)
    raw = Llama(
        model_path=str(runtime.path),
        n_ctx=4096,
        n_threads=runtime.n_threads,
        n_threads_batch=runtime.n_threads,
        verbose=False,
    )
    raw.create_completion(prompt, max_tokens=args.tokens, temperature=0.0)  # its prompt is now cached too
    dca_rates, raw_rates, dca_tokens, raw_tokens = [], [], 0, 0

    def run_dca() -> None:
        nonlocal dca_tokens
        answer = assistant.ask(QUESTION)
        dca_tokens = answer.completion_tokens
        dca_rates.append(answer.completion_tokens / (answer.timings["prompt_s"] + answer.timings["decode_s"]))

    def run_raw() -> None:
        nonlocal raw_tokens
        start = time.perf_counter()
        out = raw.create_completion(prompt, max_tokens=args.tokens, temperature=0.0)
        raw_tokens = out["usage"]["completion_tokens"]
        raw_rates.append(raw_tokens / (time.perf_counter() - start))

    from dca.runtime.generation import GenerationConfig

    probs_rates: dict[bool, list[float]] = {False: [], True: []}

    def run_probs(logprobs: bool) -> None:
        config = GenerationConfig(max_tokens=args.tokens, temperature=0.0, ignore_eos=True, logprobs=logprobs)
        completion = runtime.complete(prompt, config)
        assert len(completion.token_logprobs) == (completion.completion_tokens if logprobs else 0)
        probs_rates[logprobs].append(
            completion.completion_tokens / (completion.prompt_seconds + completion.decode_seconds)
        )

    runs = [run_dca, run_raw]
    if args.logprobs:
        runs += [lambda: run_probs(False), lambda: run_probs(True)]
    # Every prompt is cached (prefix reuse), so each call is decode time; the order alternates.
    for repeat in range(args.repeats):
        for run in runs if repeat % 2 == 0 else runs[::-1]:
            run()
    dca_rate, raw_rate = statistics.median(dca_rates), statistics.median(raw_rates)
    rows = [
        {"what": "raw llama-cpp-python create_completion", "decode_tok_s": raw_rate, "tokens": raw_tokens},
        {"what": "dca ask (Assistant.ask)", "decode_tok_s": dca_rate, "tokens": dca_tokens},
    ]
    extra: dict[str, float] = {}
    if args.logprobs:
        plain, probs = statistics.median(probs_rates[False]), statistics.median(probs_rates[True])
        rows += [
            {"what": "runtime decode, fixed length", "decode_tok_s": plain, "tokens": args.tokens},
            {"what": "runtime decode with token probabilities", "decode_tok_s": probs, "tokens": args.tokens},
        ]
        extra["logprobs_ratio"] = probs / plain
    print_table(rows, ["what", "decode_tok_s", "tokens"])
    ratio = dca_rate / raw_rate
    print(f"dca / raw decode throughput: {ratio:.3f} (goal >= 0.97); first answer: {first.text[:80]!r}")
    if extra:
        print(f"with / without token probabilities: {extra['logprobs_ratio']:.3f}")
    write_results("ask_overhead", {"model": args.model, "rows": rows, "ratio": ratio, "repeats": args.repeats, **extra})


if __name__ == "__main__":
    main()
