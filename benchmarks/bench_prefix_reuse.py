"""Prefix reuse: time to first token of a second question that shares the first one's prefix
(the same retrieved sources, or only the system prompt), with the KV cache kept against reset.

    .venv/bin/python benchmarks/bench_prefix_reuse.py [--model qwen2.5-coder-1.5b] [--index default]
"""

from __future__ import annotations

import argparse
import statistics

from _common import print_table, write_results

from dca.api import AskConfig, Assistant
from dca.runtime.llama import GenerationConfig, RuntimeConfig

FIRST = "How does dca pull a model?"
SECOND_SAME_SOURCES = "Where does an interrupted pull keep its finished parts?"
SECOND_OTHER = "What is the default chunk size?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--index", default="default")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    assistant = Assistant(
        index=args.index, model=args.model, runtime=RuntimeConfig(n_ctx=4096), config=AskConfig(k=4, max_tokens=256)
    )
    runtime = assistant.generator

    def prompt(question: str, hits_for: str) -> str:
        parts = assistant.build_prompt(question, assistant.retrieve(hits_for))
        return runtime.chat_prompt(parts.messages)

    first = prompt(FIRST, FIRST)
    cases = {
        "same sources, new question": prompt(SECOND_SAME_SOURCES, FIRST),
        "same system prompt, new sources": prompt(SECOND_OTHER, SECOND_OTHER),
    }
    config = GenerationConfig(max_tokens=1)
    rows = []
    for case, second in cases.items():
        timings: dict[str, list[float]] = {"reuse": [], "no reuse": []}
        cached = total = 0
        for _ in range(args.repeats):
            for mode in ("reuse", "no reuse"):
                runtime.llm.reset()
                runtime.complete(first, config)
                if mode == "no reuse":
                    runtime.llm.reset()
                result = runtime.complete(second, config)
                timings[mode].append(result.prompt_seconds)
                if mode == "reuse":
                    cached, total = result.cached_tokens, result.prompt_tokens
        with_reuse, without = statistics.median(timings["reuse"]), statistics.median(timings["no reuse"])
        rows.append(
            {
                "case": case,
                "prompt_tokens": total,
                "reused_tokens": cached,
                "ttft_reuse_s": with_reuse,
                "ttft_no_reuse_s": without,
                "speedup": without / with_reuse,
            }
        )
        print_table(rows[-1:], list(rows[-1]))
    print()
    print_table(rows, list(rows[0]))
    write_results("prefix_reuse", {"model": args.model, "repeats": args.repeats, "rows": rows})


if __name__ == "__main__":
    main()
