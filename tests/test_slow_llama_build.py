"""Real model (smollm2-135m): the AMX guard loads without extra weight buffers and still
generates, and doctor's tiny generation runs in a real child process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dca.config import Paths
from dca.runtime import build
from dca.runtime.generation import Completion, GenerationConfig
from dca.runtime.llama import LlamaRuntime, RuntimeConfig, resolve_model
from dca.runtime.selftest import run_selftest

pytestmark = pytest.mark.slow
GREEDY = GenerationConfig(max_tokens=12, ignore_eos=True)


@pytest.fixture(scope="module")
def model():
    return resolve_model("smollm2-135m", Paths.resolve())


def _answer(runtime: LlamaRuntime) -> Completion:
    prompt = runtime.chat_prompt([{"role": "user", "content": "Name three colours."}])
    return runtime.complete(prompt, GREEDY)


def test_the_guard_engages_where_the_build_reports_amx(model, monkeypatch: pytest.MonkeyPatch) -> None:
    name, path = model
    plain = LlamaRuntime(path, name=name, config=RuntimeConfig(n_ctx=512))
    assert plain.extra_buffers is (not build.read_build_info().reports_amx)
    assert bool(plain.llm.model_params.use_extra_bufts) is plain.extra_buffers
    amx = build.parse_system_info("CPU : AVX2 = 1 | AVX512 = 1 | AMX_INT8 = 1 | REPACK = 1 | ")
    monkeypatch.setattr("dca.runtime.llama.read_build_info", lambda: amx)  # what the runtime reads
    guarded = LlamaRuntime(path, name=name, config=RuntimeConfig(n_ctx=512))
    assert guarded.extra_buffers is False and guarded.llm.model_params.use_extra_bufts is False
    guarded_answer, plain_answer = _answer(guarded), _answer(plain)
    assert guarded_answer.completion_tokens == 12 and guarded_answer.text.strip()  # it generates without them
    assert plain_answer.completion_tokens == 12 and plain_answer.text.strip()
    plain.close()
    guarded.close()


def test_selftest_generates_in_a_real_child(model) -> None:
    _, path = model
    result = run_selftest(path)
    assert result.ok and not result.crashed, result.detail
    assert "8 tokens" in result.detail and "extra weight buffers" in result.detail


def test_doctor_runs_the_generation_check_in_a_subprocess(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dca", "doctor", "--json"], capture_output=True, text=True, timeout=600, check=False
    )
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    generation = checks["generation"]
    assert generation["ok"], generation  # CI pulls the default generator before the slow tests
    assert "tokens in" in generation["detail"]
    assert "CPU features:" in checks["llama.cpp"]["detail"]
