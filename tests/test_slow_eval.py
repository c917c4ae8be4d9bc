"""Real model: `dca eval` killed with SIGKILL mid-run and rerun ends with the same summary."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import real_models_home

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("Tom has 3 apples and buys 4 more. How many apples does he have?", 7),
    ("A box holds 6 eggs. How many eggs are in 5 boxes?", 30),
    ("Sara had 20 dollars and spent 8. How much does she have left?", 12),
    ("There are 12 cookies shared equally by 4 children. How many does each get?", 3),
    ("A train travels 60 miles each hour for 2 hours. How far does it go?", 120),
    ("Ben is 9 years old. His sister is 5 years older. How old is his sister?", 14),
]


def _command(data: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dca",
        "eval",
        "gsm8k",
        "--data",
        str(data),
        "--model",
        "smollm2-135m",
        "--max-tokens",
        "48",
        "--out",
        str(out),
        "--json",
    ]


def _env(home: Path) -> dict[str, str]:
    return {"DCA_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}


def test_killed_eval_resumes_to_the_same_summary(tmp_path: Path) -> None:
    home = real_models_home(tmp_path)
    data = tmp_path / "gsm8k.jsonl"
    data.write_text("".join(json.dumps({"question": q, "answer": f"#### {a}"}) + "\n" for q, a in QUESTIONS))

    whole = subprocess.run(
        _command(data, tmp_path / "whole"), capture_output=True, text=True, env=_env(home), check=False
    )
    assert whole.returncode == 0, whole.stderr
    expected = json.loads(whole.stdout)
    assert expected["n"] == len(QUESTIONS)

    out = tmp_path / "killed"
    process = subprocess.Popen(
        _command(data, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(home)
    )
    results = out / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if results.is_file() and len(results.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(results.read_text().splitlines())
    assert 2 <= done_before < len(QUESTIONS), "the kill should land mid-run"

    resumed = subprocess.run(_command(data, out), capture_output=True, text=True, env=_env(home), check=False)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    for key in ("n", "metrics", "config"):
        assert summary[key] == expected[key], key
    for key in ("prompt_tokens", "completion_tokens"):
        assert summary["totals"][key] == expected["totals"][key], key
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    expected_rows = [json.loads(line) for line in (tmp_path / "whole" / "results.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == [r["id"] for r in expected_rows]  # each question once, in order
    assert [r["prediction"] for r in rows] == [r["prediction"] for r in expected_rows]
    # Each row says how much of its prompt came from the KV cache: after the first question, at
    # least the shared system prompt.
    assert expected_rows[0]["cached_tokens"] == 0
    assert all(0 < r["cached_tokens"] < r["prompt_tokens"] for r in expected_rows[1:])
