"""dca serve under load, and warm against cold, on loopback only.

1. Warm and cold: the same RAG question (docs/ indexed) asked by a cold `dca ask --json`
   process and by a warm `dca serve`, right after another question (so its prompt is not
   cached), and once more right after itself (cached); wall seconds of each.
2. Load: N concurrent clients (default 8) send short chat requests (closed-book, or over
   --load-index) for at most --seconds (default 60); every reply is counted (200, 429, 503, other, client timeout),
   latency p50/p95 of the answered ones, requests/s, and the server's RSS sampled each second.

    .venv/bin/python benchmarks/bench_serve.py [--model qwen2.5-coder-1.5b] [--clients 8] [--seconds 60]
        [--k N] [--no-load] [--out serve]

`--k N` asks both ways with N sources (default: dca's default); `--no-load` skips part 2.

The server and the CLI run in a temporary DCA_HOME whose models/ link to the checkout's
(nothing is written to the user's home); the server binds 127.0.0.1 on a free port.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "What is dca, and how does it get its models?"  # the Makefile's `make run` question
LOAD_QUESTIONS = ["What is 17 times 3?", "Name a primary colour.", "What is the capital of Italy?", "Say hi."]


def _home(tmp: Path) -> Path:
    home = tmp / "home"
    (home / "models").mkdir(parents=True)
    for entry in (ROOT / "models").iterdir():
        if entry.name not in ("README.md", ".partial"):
            (home / "models" / entry.name).symlink_to(entry)
    return home


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "DCA_HOME": str(home), "HF_HUB_OFFLINE": "1", "DCA_NO_LOG": "1"}


def _dca(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dca", *args], env=_env(home), capture_output=True, text=True, check=True
    )


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _load(
    url: str, model: str, clients: int, seconds: float, max_tokens: int, pid: int, index: str | None
) -> dict[str, Any]:
    outcomes: list[tuple[str, float]] = []
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    rss: list[float] = []
    done = threading.Event()

    def client(n: int) -> None:
        i = 0
        with httpx.Client(timeout=seconds + 120) as http:
            while time.perf_counter() < stop_at:
                body = {
                    "model": model,
                    "messages": [{"role": "user", "content": LOAD_QUESTIONS[(n + i) % len(LOAD_QUESTIONS)]}],
                    "max_tokens": max_tokens,
                    "dca": {"index": index},
                }
                began = time.perf_counter()
                try:
                    reply = http.post(f"{url}/v1/chat/completions", json=body)
                    kind = str(reply.status_code)
                    if reply.status_code == 429:
                        time.sleep(min(5.0, float(reply.headers.get("Retry-After", "1"))))
                except httpx.TimeoutException:
                    kind = "client timeout"
                except httpx.HTTPError as exc:
                    kind = f"transport error ({type(exc).__name__})"
                with lock:
                    outcomes.append((kind, time.perf_counter() - began))
                i += 1

    def sample_rss() -> None:
        while not done.is_set():
            rss.append(_rss_mb(pid))
            done.wait(1.0)

    sampler = threading.Thread(target=sample_rss)
    sampler.start()
    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    done.set()
    sampler.join()
    answered = [t for kind, t in outcomes if kind == "200"]
    counts: dict[str, int] = {}
    for kind, _ in outcomes:
        counts[kind] = counts.get(kind, 0) + 1
    return {
        "clients": clients,
        "seconds_issuing": seconds,
        "wall_s": round(wall, 2),
        "requests": len(outcomes),
        "outcomes": counts,
        "answered_per_s": round(len(answered) / wall, 3),
        "latency_p50_s": round(_percentile(answered, 0.5), 2),
        "latency_p95_s": round(_percentile(answered, 0.95), 2),
        "max_tokens": max_tokens,
        "index": index,
        "rss_mb": {
            "first": round(rss[0], 1),
            "last": round(rss[-1], 1),
            "max": round(max(rss), 1),
            "samples": [round(r, 1) for r in rss],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3, help="warm and cold runs of the RAG question")
    parser.add_argument("--load-index", default=None, help="index the load requests use (default: closed-book)")
    parser.add_argument("--k", type=int, default=None, help="sources per question, cold and warm (default: dca's)")
    parser.add_argument("--no-load", action="store_true", help="warm and cold only, no load phase")
    parser.add_argument("--out", default="serve", help="results file name under lab/results/")
    args = parser.parse_args()
    k_args = ["--k", str(args.k)] if args.k else []

    with tempfile.TemporaryDirectory() as tmp:
        home = _home(Path(tmp))
        _dca(home, "index", "add", str(ROOT / "docs"))
        cold = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            cold_answer = json.loads(
                _dca(home, "ask", QUESTION, "--model", args.model, *k_args, "--json", "--no-log").stdout
            )
            cold.append(time.perf_counter() - began)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        log = open(Path(tmp) / "serve.log", "w")  # noqa: SIM115 (closed below)
        began = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "dca", "serve", "-m", args.model, "--index", "default", "--port", str(port)],
            env=_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                if server.poll() is not None:
                    raise SystemExit((Path(tmp) / "serve.log").read_text())
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            startup = time.perf_counter() - began
            model = httpx.get(f"{url}/v1/models").json()["data"][0]["id"]
            extra = {"dca": {"k": args.k}} if args.k else {}
            body = {"model": model, "messages": [{"role": "user", "content": QUESTION}], **extra}
            other = {"model": model, "messages": [{"role": "user", "content": "How do I add my documents?"}], **extra}
            warm, cached, answers = [], [], []
            for _ in range(args.repeats):
                # Another question first, so the measured prompt is not in the KV cache (only the
                # shared system prompt is); then the same question again: the cached case.
                httpx.post(f"{url}/v1/chat/completions", json=other, timeout=300).raise_for_status()
                for times in (warm, cached):
                    began = time.perf_counter()
                    reply = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)
                    times.append(time.perf_counter() - began)
                    answers.append(reply.json())
            load = (
                None
                if args.no_load
                else _load(url, model, args.clients, args.seconds, args.max_tokens, server.pid, args.load_index)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()

    cold_s, warm_s = statistics.median(cold), statistics.median(warm)
    print_table(
        [
            {"what": "cold `dca ask` (median)", "seconds": cold_s},
            {"what": "warm server request (median)", "seconds": warm_s},
            {"what": "warm / cold", "seconds": warm_s / cold_s},
            {"what": "warm, same prompt again (median)", "seconds": statistics.median(cached)},
            {"what": "server start (models loaded)", "seconds": startup},
        ],
        ["what", "seconds"],
    )
    print()
    if load is not None:
        print_table(
            [{k: v for k, v in load.items() if k not in ("rss_mb", "outcomes")}
             | {"outcomes": json.dumps(load["outcomes"]), "rss first/last/max MB":
                f"{load['rss_mb']['first']}/{load['rss_mb']['last']}/{load['rss_mb']['max']}"}],
            ["clients", "requests", "outcomes", "answered_per_s", "latency_p50_s", "latency_p95_s",
             "rss first/last/max MB"],
        )  # fmt: skip
    write_results(
        args.out,
        {
            "model": args.model,
            "k": args.k,
            "question": QUESTION,
            "cold_s": [round(c, 2) for c in cold],
            "warm_s": [round(w, 2) for w in warm],
            "warm_over_cold": round(warm_s / cold_s, 3),
            "warm_same_prompt_again_s": [round(c, 2) for c in cached],
            "server_start_s": round(startup, 2),
            "cold_timings": cold_answer["timings"],  # inside the process; the rest is loading
            "cold_usage": cold_answer["usage"],
            "warm_answer": answers[-2]["choices"][0]["message"]["content"],
            "warm_timings": answers[-2]["choices"][0]["dca"]["timings"],  # the uncached case
            "warm_usage": answers[-2]["usage"],
            "load": load,
        },
    )


if __name__ == "__main__":
    main()
