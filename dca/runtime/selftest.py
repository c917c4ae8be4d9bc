"""A tiny generation in a child process: proof that llama.cpp runs a model on this CPU.

A llama.cpp build can crash outright on some CPUs (a segmentation fault in ggml's AMX matmul,
an illegal instruction in a build made for another CPU). In a child, such a crash is a result
to report, not the end of ``dca doctor``.

    python -m dca.runtime.selftest MODEL.gguf     # one JSON line on stdout
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

_QUESTION = "What is the capital of France? Answer in one word."
_TOKENS = 8


@dataclass(frozen=True, kw_only=True)
class SelftestResult:
    """How the tiny generation went."""

    ok: bool
    detail: str  # the generated text and speed, or how it failed
    crashed: bool = False  # the child died of a signal (segmentation fault, illegal instruction)


def run_selftest(model: Path, *, timeout_s: float = 180.0) -> SelftestResult:
    """Load ``model`` in a child process, generate a few tokens greedily, and say how it went."""
    return _run_child([sys.executable, "-m", "dca.runtime.selftest", str(model)], timeout_s)


def _run_child(argv: list[str], timeout_s: float) -> SelftestResult:
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return SelftestResult(ok=False, detail=f"no answer within {timeout_s:.0f} s")
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return SelftestResult(ok=False, crashed=True, detail=f"llama.cpp crashed ({name}) generating {_TOKENS} tokens")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    try:
        report = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return SelftestResult(ok=False, detail=f"the test process exited with code {done.returncode}: {last[:200]}")
    if "error" in report:
        return SelftestResult(ok=False, detail=str(report["error"]))
    return SelftestResult(
        ok=True,
        detail=f"{report['tokens']} tokens in {report['seconds']:.1f} s ({report['text'].strip()[:40]!r}); "
        f"extra weight buffers {'on' if report['extra_buffers'] else 'off'}",
    )


def _generate(model: Path) -> dict[str, object]:
    from dca.errors import DcaError
    from dca.runtime.generation import GenerationConfig
    from dca.runtime.llama import LlamaRuntime, RuntimeConfig

    try:
        runtime = LlamaRuntime(model, name=model.stem, config=RuntimeConfig(n_ctx=512))
        started = time.perf_counter()
        prompt = runtime.chat_prompt([{"role": "user", "content": _QUESTION}])
        completion = runtime.complete(prompt, GenerationConfig(max_tokens=_TOKENS, temperature=0.0, ignore_eos=True))
    except DcaError as exc:
        return {"error": str(exc)}
    return {
        "text": completion.text,
        "tokens": completion.completion_tokens,
        "seconds": time.perf_counter() - started,
        "extra_buffers": runtime.extra_buffers,
    }


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m dca.runtime.selftest MODEL.gguf", file=sys.stderr)
        return 2
    print(json.dumps(_generate(Path(argv[0]))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
