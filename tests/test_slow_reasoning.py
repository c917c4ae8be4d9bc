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


def test_ask_think_from_the_command_line(tmp_path: Path) -> None:
    home = real_models_home(tmp_path)
    env = {"DCA_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    question = "A farmer has 17 sheep. All but 9 run away. How many sheep does the farmer have left?"
    result = subprocess.run(
        [sys.executable, "-m", "dca", "ask", question, "--think", "--no-retrieval", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["reasoning"] and data["answer"] and data["thinking"]["strategy"]
    assert data["usage"]["completion_tokens"] == data["usage"]["reasoning_tokens"] + data["usage"]["answer_tokens"]
