"""Why prompt lookup cannot be both identical to greedy and faster here (issue 31): what a
batch of draft tokens costs against one token, and whether llama.cpp gives a token the same
logits in a batch as alone.

Speculative decoding checks K drafted tokens in one llama_decode call; it is exact only if
each token's logits in that batch equal the logits the plain decode computes for it alone, and
it is faster only if the batch costs little more than one token. The model evaluates a
grounded prompt (~470 tokens), decodes 24 tokens greedily one at a time, then evaluates the
same 24 tokens again in batches of 2, 4 and 8 from the same KV-cache position and compares
the logits row by row; with llama.cpp's repacked weights (dca's default) and without them,
each with flash attention on (llama.cpp's default on a CPU) and off. ``--build`` names the
llama-cpp-python build in the results (run it again with another build first on PYTHONPATH,
e.g. one compiled with ``-DGGML_LLAMAFILE=OFF``).

    .venv/bin/python benchmarks/bench_batch_invariance.py      # lab/results/batch_invariance.json
    PYTHONPATH=/tmp/nollamafile .venv/bin/python benchmarks/bench_batch_invariance.py \
        --build "GGML_LLAMAFILE=OFF" --name batch_invariance_no_llamafile
"""

from __future__ import annotations

import argparse
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


def measure(model: Path, extra_buffers: bool, flash_attn: bool) -> dict[str, object]:
    import llama_cpp

    threads = physical_cores()
    with model_params(extra_buffers=extra_buffers):
        llm = llama_cpp.Llama(
            model_path=str(model), n_ctx=2048, n_batch=512, n_threads=threads, n_threads_batch=threads,
            logits_all=True, flash_attn=flash_attn, verbose=False,
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
            "flash_attention": "on (default)" if flash_attn else "off",
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=MODEL, help="a GGUF file (default: the 1.5B default model)")
    parser.add_argument("--build", default="dca's build (portable, llamafile on)", help="names the llama.cpp build")
    parser.add_argument("--name", default="batch_invariance", help="results file name")
    args = parser.parse_args()
    rows = [measure(args.model, extra, flash) for extra in (True, False) for flash in (True, False)]
    columns = ["weights", "flash_attention", "one_token_ms"]
    for size in BATCHES:
        columns += [
            f"batch_{size}_x_one",
            f"batch_{size}_identical_rows",
            f"batch_{size}_max_abs_logit_diff",
        ]
    print_table(rows, columns)
    write_results(args.name, {"steps": STEPS, "model": args.model.name, "build": args.build, "rows": rows})


if __name__ == "__main__":
    main()
