"""The question log: ask and chat turns recorded under DCA_HOME, `dca logs`,
--no-log and DCA_NO_LOG, `dca chat --continue`."""

from __future__ import annotations

import json

import pytest
from conftest import ScriptedGenerator
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.logbook import LogBook

runner = CliRunner()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedGenerator:
    import dca.runtime.llama as llama_module

    generator = ScriptedGenerator(["Nine sheep are left."])
    monkeypatch.setattr(llama_module, "load_runtime", lambda model=None, paths=None, config=None: generator)
    return generator


def test_ask_is_logged_unless_told_not_to(
    home: Paths, scripted: ScriptedGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert runner.invoke(app, ["ask", "How many sheep?", "--no-retrieval"]).exit_code == 0
    assert runner.invoke(app, ["ask", "Secret question", "--no-retrieval", "--no-log"]).exit_code == 0
    monkeypatch.setenv("DCA_NO_LOG", "1")
    assert runner.invoke(app, ["ask", "Another secret", "--no-retrieval", "--json"]).exit_code == 0
    monkeypatch.delenv("DCA_NO_LOG")
    turns = LogBook(home).recent(10)
    assert [t.question for t in turns] == ["How many sheep?"]
    assert turns[0].answer == "Nine sheep are left." and turns[0].model == "scripted" and turns[0].strategy == "direct"
    shown = runner.invoke(app, ["logs"])
    assert shown.exit_code == 0 and "Q: How many sheep?" in shown.stdout and "A: Nine sheep are left." in shown.stdout
    data = json.loads(runner.invoke(app, ["logs", "--json", "-n", "5"]).stdout)
    assert data[0]["question"] == "How many sheep?" and data[0]["created"].startswith("20")
    cleared = runner.invoke(app, ["logs", "--clear"])
    assert cleared.exit_code == 0 and "1 turns" in cleared.stdout and not LogBook(home).recent(5)


def test_chat_logs_its_turns_and_continue_resumes_them(home: Paths, scripted: ScriptedGenerator) -> None:
    first = runner.invoke(app, ["chat", "--no-retrieval"], input="My name is Ada.\nWhat is my name?\n/exit\n")
    assert first.exit_code == 0, first.output
    turns = LogBook(home).recent(10)
    assert [t.question for t in turns] == ["My name is Ada.", "What is my name?"]
    assert turns[0].conversation == turns[1].conversation
    scripted.prompts.clear()
    again = runner.invoke(app, ["chat", "--no-retrieval", "--continue"], input="And again?\n/exit\n")
    assert again.exit_code == 0 and "continuing a conversation of 2 turns" in again.stdout
    assert "My name is Ada." in scripted.prompts[-1] and "What is my name?" in scripted.prompts[-1]
    latest = LogBook(home).recent(1)[0]
    assert latest.question == "And again?" and latest.conversation == turns[0].conversation


def test_continue_without_a_log_is_one_line(home: Paths, scripted: ScriptedGenerator) -> None:
    result = runner.invoke(app, ["chat", "--no-retrieval", "--continue"], input="/exit\n")
    assert result.exit_code == 1 and "no logged conversation to continue" in result.output
