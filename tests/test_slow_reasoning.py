"""Reasoning with real models: the budget cap holds, a program answers, `dca ask --think` runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import real_models_home

from dca.api import AskConfig, Assistant
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import ProgramRan, Thinking

pytestmark = pytest.mark.slow


def test_the_budget_cap_holds_on_a_real_model(tmp_path: Path) -> None:
    home = real_models_home(tmp_path)
    assistant = Assistant(index=None, home=home, model="smollm2-135m")
    question = "Explain in detail, step by step, how many seconds there are in a leap year."
    for budget in (8, 24):
        config = AskConfig(retrieval=False, max_tokens=16, reasoning=ReasoningConfig(strategy="cot", budget=budget))
        answer = assistant.ask(question, config=config)
        assert answer.reasoning is not None
        sample = answer.reasoning.samples[0]
        assert sample.reasoning_tokens <= budget
        if sample.forced:  # the model did not close its thinking in time: it was closed for it
            assert sample.reasoning_tokens == budget and answer.finish_reason == "length"
        assert answer.completion_tokens == sample.reasoning_tokens + sample.answer_tokens
        assert sample.answer_tokens <= 16


def test_a_program_answer_from_the_default_model(tmp_path: Path) -> None:
    home = real_models_home(tmp_path)
    assistant = Assistant(index=None, home=home)
    events: list[object] = []
    config = AskConfig(retrieval=False, reasoning=ReasoningConfig(strategy="program"))
    answer = assistant.ask(
        "A shop sells pencils at 3 dollars each. Tom buys 12 pencils and pays with a 50 dollar bill. "
        "How much change does he get?",
        config=config,
        on_event=events.append,
    )
    ran = [e for e in events if isinstance(e, ProgramRan)]
    assert ran and ran[-1].result.ok, [e.result.error for e in ran]
    assert answer.reasoning is not None and answer.reasoning.final == "14"
    assert answer.text == "The answer is 14." and "print" in answer.reasoning.reasoning
    assert any(isinstance(e, Thinking) for e in events)


def _ask_json(home: Path, *args: str) -> tuple[dict, str]:
    """`dca ask ARGS --no-retrieval --json` in a new process: (its JSON, its stderr)."""
    env = {"DCA_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "dca", "ask", *args, "--no-retrieval", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def test_ask_think_from_the_command_line(tmp_path: Path) -> None:
    home = real_models_home(tmp_path)
    question = "A farmer has 17 sheep. All but 9 run away. How many sheep does the farmer have left?"
    data, stderr = _ask_json(home, question, "--think")
    assert data["reasoning"] and data["answer"] and data["thinking"]["strategy"] == "verify"
    assert data["usage"]["completion_tokens"] == data["usage"]["reasoning_tokens"] + data["usage"]["answer_tokens"]
    # the greedy program's token certainty, read from llama.cpp, decides whether a vote follows
    first = data["thinking"]["samples"][0]
    assert first["kind"] == "program" and first["certainty"]["mean_conf"] > 0
    assert (first["certainty"]["mean_conf"] >= 9.7158) == (len(data["thinking"]["samples"]) == 1) or not first["final"]
    # The reasoning adapter that ships for the default model is loaded by --think.
    from dca.config import Paths
    from dca.models.catalog import Catalog

    shipped = Catalog.load(Paths(home=home)).adapter_for("qwen2.5-coder-1.5b")
    assert shipped is not None and shipped.name == "qwen2.5-coder-1.5b-programs"
    assert data["adapter"] == shipped.name, stderr
    # llama.cpp's per-tensor warnings while the LoRA loads do not reach the user.
    assert "llama_adapter_lora_init" not in stderr, stderr[:500]


class _Reader:
    """Collects a pipe's text in a thread so the test can wait for a line without blocking."""

    def __init__(self, pipe: object) -> None:
        import threading

        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: object) -> None:
        for chunk in iter(lambda: pipe.read(1), ""):  # type: ignore[attr-defined]
            self.text += chunk

    def wait_for(self, needle: str, timeout: float = 120, count: int = 1) -> None:
        import time

        deadline = time.monotonic() + timeout
        while self.text.count(needle) < count:
            assert time.monotonic() < deadline, f"{needle!r} not seen in: {self.text[-2000:]!r}"
            time.sleep(0.05)


def test_ctrl_c_in_chat_pauses_for_a_note_and_a_second_cancels(tmp_path: Path) -> None:
    import signal
    import time

    home = real_models_home(tmp_path)
    env = {"DCA_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    args = ["chat", "--no-retrieval", "--model", "smollm2-135m", "--strategy", "cot", "--budget", "1500"]
    chat = subprocess.Popen(
        [sys.executable, "-m", "dca", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert chat.stdin is not None
    out, err = _Reader(chat.stdout), _Reader(chat.stderr)
    try:
        question = "Write a long, detailed, step by step explanation of how bread is baked.\n"
        chat.stdin.write(question)
        chat.stdin.flush()
        out.wait_for("[thinking]")
        chat.send_signal(signal.SIGINT)
        err.wait_for("(paused)")
        chat.stdin.write("Keep it to three steps.\n")
        chat.stdin.flush()
        out.wait_for("[note added: Keep it to three steps.]")
        err.wait_for("[thought ", timeout=300)  # the turn finished with its accounting line
        seen = out.text.count("[thinking]")
        chat.stdin.write(question)
        chat.stdin.flush()
        out.wait_for("[thinking]", count=seen + 1)
        chat.send_signal(signal.SIGINT)
        err.wait_for("(paused)", count=2)
        out.wait_for("note> ", count=2)
        time.sleep(0.5)  # the prompt is written before input() blocks in its read: signal the read
        chat.send_signal(signal.SIGINT)  # a second Ctrl-C cancels the turn
        out.wait_for("(cancelled)")
        chat.stdin.write("/exit\n")
        chat.stdin.flush()
        assert chat.wait(timeout=60) == 0, err.text
    finally:
        if chat.poll() is None:
            chat.kill()
    assert "Traceback" not in err.text


def test_the_self_judge_reads_yes_and_no_from_the_default_model(tmp_path: Path) -> None:
    from dca.config import Paths
    from dca.reasoning.verify import SelfJudge
    from dca.runtime.generation import GenerationConfig
    from dca.runtime.llama import load_runtime

    judge = SelfJudge(load_runtime(paths=Paths.resolve(real_models_home(tmp_path))), GenerationConfig())
    question = "Tom has 3 apples and buys 4 more. How many apples does he have?"
    right = judge.score(question, "3 + 4 = 7. The answer is 7.")
    wrong = judge.score(question, "3 * 4 = 12. The answer is 12.")
    assert 0.0 <= wrong < right <= 1.0


def test_ask_verify_weighs_with_the_shipped_verifier(tmp_path: Path) -> None:
    """`dca ask --think --strategy verify` loads the shipped programs adapter and the shipped
    verifier by default; the verifier's two adapters load in llama.cpp and score a program."""
    from dca.config import Paths
    from dca.pipeline.checks import load_verifier
    from dca.reasoning.events import Sample
    from dca.reasoning.verify import solution_text
    from dca.runtime.adapters import choose_verifier
    from dca.runtime.llama import load_runtime

    home = real_models_home(tmp_path)
    question = "Ann has 12 eggs. She uses 5 eggs for a cake and buys 6 more. How many eggs does she have now?"
    data, _ = _ask_json(home, question, "--think", "--strategy", "verify", "--samples", "3")
    assert data["thinking"]["strategy"] == "verify" and data["answer"], data
    assert data["adapter"] == "qwen2.5-coder-1.5b-programs"
    assert data["verifier"] == "qwen2.5-coder-1.5b-verifier"
    assert all(s["kind"] == "program" for s in data["thinking"]["samples"])  # what the verifier scores

    paths = Paths.resolve(home)
    runtime = load_runtime(paths=paths)
    scorer = load_verifier(choose_verifier(None, runtime.name, paths), runtime)
    program = Sample(kind="program", reasoning="eggs = 12 - 5 + 6\nprint(eggs)", answer="13", final="13")
    score = scorer.score(question, solution_text(program))
    assert 0.0 < score < 1.0 and score != 0.5  # a real implicit reward, not "no opinion"
