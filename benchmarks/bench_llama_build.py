"""Prefill and decode tokens/s of llama.cpp builds on this machine, in the same run (issue 28).

Each build is a Python interpreter whose llama-cpp-python it uses (a venv), optionally with
llama.cpp's extra weight buffers (repacked, AMX) turned off as dca's AMX guard does. Every
measurement is a fresh child process that loads the model, evaluates a fixed prompt (prefill)
and then a fixed sequence of single tokens (decode); the builds take turns, in a rotating order,
so drift of the machine's speed during the run falls on all of them alike.

    .venv/bin/python benchmarks/bench_llama_build.py \\
        --build portable=.venv/bin/python \\
        --build portable-no-extra-buffers=.venv/bin/python:no-extra-buffers \\
        --build native-amx-off=/tmp/venv-native/bin/python [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROMPT_TOKENS = 512
DECODE_TOKENS = 128


def _child(model: str, extra_buffers: bool, threads: int) -> None:
    """Runs in the build's own interpreter: load, prefill, decode, print one JSON line."""
    sys.path.insert(0, str(ROOT))
    import llama_cpp

    from dca.runtime.build import model_params, read_build_info

    info = read_build_info()
    with model_params(extra_buffers=extra_buffers):
        llm = llama_cpp.Llama(
            model_path=model, n_ctx=2048, n_batch=512, n_threads=threads, n_threads_batch=threads, verbose=False
        )
    assert bool(llm.model_params.use_extra_bufts) == extra_buffers
    text = (ROOT / "docs" / "knowledge.md").read_text(encoding="utf-8")
    tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
    prompt, follow = tokens[:PROMPT_TOKENS], tokens[PROMPT_TOKENS : PROMPT_TOKENS + DECODE_TOKENS]
    assert len(prompt) == PROMPT_TOKENS and len(follow) == DECODE_TOKENS
    llm.eval(prompt[:8])  # warm the threads and the weights' pages
    llm.reset()
    start = time.perf_counter()
    llm.eval(prompt)
    prefill = time.perf_counter() - start
    start = time.perf_counter()
    for token in follow:  # the same tokens for every build: the work is identical
        llm.eval([token])
    decode = time.perf_counter() - start
    report = {
        "prefill_tok_s": PROMPT_TOKENS / prefill,
        "decode_tok_s": DECODE_TOKENS / decode,
        "cpu_features": info.cpu_features,
        "extra_buffers": extra_buffers,
        "llama_cpp_python": llama_cpp.__version__,
    }
    print(json.dumps(report), flush=True)


def _parse_build(spec: str) -> tuple[str, str, bool]:
    name, _, rest = spec.partition("=")
    python, _, option = rest.partition(":")
    if not name or not python or option not in ("", "no-extra-buffers"):
        raise SystemExit(f"--build {spec!r}: expected NAME=PYTHON or NAME=PYTHON:no-extra-buffers")
    return name, python, option != "no-extra-buffers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="append", default=[], help="NAME=PYTHON[:no-extra-buffers]")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "EXTRA", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1] == "on", int(args.child[2]))
        return

    from _common import print_table, write_results

    from dca.config import Paths
    from dca.runtime.llama import physical_cores, resolve_model

    builds = [_parse_build(spec) for spec in args.build]
    if not builds:
        raise SystemExit("give at least one --build NAME=PYTHON")
    _, model = resolve_model(args.model, Paths.resolve())
    threads = physical_cores()
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in builds}
    for repeat in range(args.repeats):
        shift = repeat % len(builds)
        for name, python, extra in builds[shift:] + builds[:shift]:
            argv = [python, __file__, "--child", str(model), "on" if extra else "off", str(threads)]
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise SystemExit(f"{name}: the child failed ({done.returncode}): {done.stderr.strip()[-400:]}")
            runs[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(
                f"repeat {repeat + 1}/{args.repeats} {name}: {runs[name][-1]['prefill_tok_s']:.1f} prefill, "
                f"{runs[name][-1]['decode_tok_s']:.1f} decode tok/s",
                flush=True,
            )
    base = builds[-1][0]
    rows = []
    for name, python, extra in builds:
        prefill = statistics.median(r["prefill_tok_s"] for r in runs[name])
        decode = statistics.median(r["decode_tok_s"] for r in runs[name])
        rows.append(
            {
                "build": name,
                "python": python,
                "extra_buffers": extra,
                "prefill_tok_s": prefill,
                "decode_tok_s": decode,
                "cpu_features": " ".join(runs[name][0]["cpu_features"]),
                "runs": runs[name],
            }
        )
    # Ratios to the last build within each repeat (the builds ran back to back), then their
    # median: the machine's drift over the run cancels out of a ratio taken within one repeat.
    for row in rows:
        for what in ("prefill", "decode"):
            ratios = [
                mine[f"{what}_tok_s"] / theirs[f"{what}_tok_s"]
                for mine, theirs in zip(runs[row["build"]], runs[base], strict=True)
            ]
            row[f"{what}_vs_last"] = statistics.median(ratios)
    print_table(rows, ["build", "extra_buffers", "prefill_tok_s", "decode_tok_s", "prefill_vs_last", "decode_vs_last"])
    for row in rows:
        print(f"{row['build']}: CPU features {row['cpu_features']}")
    write_results(
        "llama_build",
        {
            "model": args.model,
            "threads": threads,
            "prompt_tokens": PROMPT_TOKENS,
            "decode_tokens": DECODE_TOKENS,
            "repeats": args.repeats,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
