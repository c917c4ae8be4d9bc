"""Why prompt lookup cannot be both identical to greedy and faster here (issue 31): what a
batch of draft tokens costs against one token, and whether llama.cpp gives a token the same
logits in a batch as alone.

Speculative decoding checks K drafted tokens in one llama_decode call; it is exact only if
each token's logits in that batch equal the logits the plain decode computes for it alone, and
it is faster only if the batch costs little more than one token. The default model evaluates
a grounded prompt (~470 tokens), decodes 24 tokens greedily one at a time, then evaluates the
same 24 tokens again in batches of 2, 4 and 8 from the same KV-cache position and compares
the logits row by row; with llama.cpp's repacked weights (dca's default) and without them.

    .venv/bin/python benchmarks/bench_batch_invariance.py      # benchmarks/results/batch_invariance.json
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from _common import print_table, write_results

from dca.runtime.build import model_params
from dca.runtime.llama import physical_cores

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
STEPS = 24
BATCHES = (2, 4, 8)


def _prompt() -> str:
    sources = (ROOT / "docs" / "reasoning.md").read_text(encoding="utf-8")[:1800]
    return (
        "<|im_start|>system\nAnswer from the sources.<|im_end|>\n<|im_start|>user\nSources:\n"
        f"{sources}\nQuestion: What does the sandbox do?<|im_end|>\n<|im_start|>assistant\n"
    )


def measure(extra_buffers: bool) -> dict[str, object]:
    import llama_cpp

    threads = physical_cores()
    with model_params(extra_buffers=extra_buffers):
        llm = llama_cpp.Llama(
            model_path=str(MODEL), n_ctx=2048, n_batch=512, n_threads=threads, n_threads_batch=threads,
            logits_all=True, verbose=False,
        )  # fmt: skip
    try:
        tokens = llm.tokenize(_prompt().encode(), add_bos=False, special=True)
        start = len(tokens)
        llm.reset()
        llm.eval(tokens)
        generated: list[int] = []
        alone: list[np.ndarray] = []
        began = time.perf_counter()
        for _ in range(STEPS):
            token = int(np.asarray(llm.scores[llm.n_tokens - 1]).argmax())
            generated.append(token)
            llm.eval([token])
            alone.append(np.array(llm.scores[llm.n_tokens - 1], dtype=np.float32))
        one_token_ms = round(1000 * (time.perf_counter() - began) / STEPS, 1)
        row: dict[str, object] = {
            "weights": "repacked (default)" if extra_buffers else "not repacked",
            "prompt_tokens": start,
            "one_token_ms": one_token_ms,
        }
        for size in BATCHES:
            seconds, worst, identical, flips = [], 0.0, 0, 0
            for at in range(0, STEPS - size + 1, size):
                llm.n_tokens = start + at
                llm._ctx.kv_cache_seq_rm(0, start + at, -1)
                began = time.perf_counter()
                llm.eval(generated[at : at + size])
                seconds.append(time.perf_counter() - began)
                for j in range(size):
                    batched = np.array(llm.scores[start + at + j], dtype=np.float32)
                    diff = float(np.abs(batched - alone[at + j]).max())
                    worst, identical = max(worst, diff), identical + (diff == 0.0)
                    flips += int(batched.argmax() != alone[at + j].argmax())
            row[f"batch_{size}_ms"] = round(1000 * float(np.mean(seconds)), 1)
            row[f"batch_{size}_x_one"] = round(1000 * float(np.mean(seconds)) / one_token_ms, 2)
            row[f"batch_{size}_identical_rows"] = f"{identical}/{STEPS - STEPS % size}"
            row[f"batch_{size}_max_abs_logit_diff"] = round(worst, 4)
            row[f"batch_{size}_argmax_flips"] = flips
        return row
    finally:
        llm.close()


def main() -> None:
    rows = [measure(True), measure(False)]
    columns = ["weights", "one_token_ms"]
    for size in BATCHES:
        columns += [
            f"batch_{size}_ms",
            f"batch_{size}_x_one",
            f"batch_{size}_identical_rows",
            f"batch_{size}_max_abs_logit_diff",
        ]
    print_table(rows, columns)
    write_results("batch_invariance", {"steps": STEPS, "rows": rows})


if __name__ == "__main__":
    main()
