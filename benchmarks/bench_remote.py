"""The openai backend against the local one: the same questions answered by llama.cpp in this
process and through a real ``llama_cpp.server`` on this machine (same GGUF), greedy.

Reports how many answers are equal word for word, and the wall seconds of each backend per
answer (the remote backend's overhead: HTTP, JSON, the server's own sampling loop). The server
gets the same thread count; the two backends run one after the other, never at once.

    .venv/bin/python benchmarks/bench_remote.py [--model smollm2-135m] [--questions 10] [--max-tokens 64]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _common import print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = [
    "What is the capital of France?",
    "Explain what a hash table is in two sentences.",
    "Write a Python function that reverses a string.",
    "What is 17 times 3?",
    "Name three primary colours.",
    "Why is the sky blue?",
    "What does HTTP stand for?",
    "Give one use of a binary search.",
    "Who wrote Hamlet?",
    "What is the boiling point of water at sea level in Celsius?",
    "Translate 'good morning' into Spanish.",
    "What is a prime number?",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    os.environ.setdefault("DCA_NO_LOG", "1")
    from dca.api import AskConfig, Assistant
    from dca.config import Paths
    from dca.runtime.llama import RuntimeConfig, load_runtime, physical_cores, resolve_model
    from dca.runtime.remote import RemoteRuntime

    paths = Paths.resolve()
    name, path = resolve_model(args.model, paths)
    threads = physical_cores()
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = (Path(tmp) / "server.log").open("w")
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(path), "--port", str(port)]
        server = subprocess.Popen(
            [*command, "--n_ctx", "4096", "--n_threads", str(threads), "--n_threads_batch", str(threads)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.time() + 180
            while True:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit((Path(tmp) / "server.log").read_text()[-2000:])
                try:
                    if httpx.get(f"{url}/models", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            local = load_runtime(name, paths=paths, config=RuntimeConfig(n_threads=threads))
            vocab = load_runtime(name, paths=paths, config=RuntimeConfig(vocab_only=True))
            remote = RemoteRuntime(vocab, base_url=url, n_ctx=local.n_ctx)
            config = AskConfig(retrieval=False, max_tokens=args.max_tokens, temperature=0.0)
            rows = []
            questions = QUESTIONS[: args.questions]
            for backend, generator in (("local", local), ("openai", remote)):
                assistant = Assistant(index=None, home=paths.home, generator=generator, config=config)
                assistant.ask("Say hi.")  # warm: the first request pays for loading and allocation
                for question in questions:
                    began = time.perf_counter()
                    answer = assistant.ask(question)
                    rows.append(
                        {
                            "backend": backend,
                            "question": question,
                            "seconds": time.perf_counter() - began,
                            "tokens": answer.completion_tokens,
                            "text": answer.text,
                        }
                    )
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
    by = {b: [r for r in rows if r["backend"] == b] for b in ("local", "openai")}
    equal = sum(a["text"] == b["text"] for a, b in zip(by["local"], by["openai"], strict=True))
    summary = []
    for backend, items in by.items():
        seconds = [r["seconds"] for r in items]
        tokens = sum(r["tokens"] for r in items)
        summary.append(
            {
                "backend": backend,
                "answers": len(items),
                "mean_s": round(statistics.mean(seconds), 3),
                "median_s": round(statistics.median(seconds), 3),
                "tokens": tokens,
                "tok_per_s": round(tokens / sum(seconds), 1),
            }
        )
    overhead = summary[1]["mean_s"] - summary[0]["mean_s"]
    print_table(summary, ["backend", "answers", "mean_s", "median_s", "tokens", "tok_per_s"])
    print(f"greedy answers equal: {equal}/{len(questions)}; overhead per answer {overhead:+.3f} s")
    write_results(
        "remote",
        {
            "model": name,
            "threads": threads,
            "max_tokens": args.max_tokens,
            "equal": equal,
            "questions": len(questions),
            "overhead_s": round(overhead, 3),
            "summary": summary,
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
