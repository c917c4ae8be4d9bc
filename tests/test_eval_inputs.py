"""Bad eval inputs are one clear line and exit 1, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ScriptedGenerator
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import dca.runtime.llama as llama_module

    monkeypatch.setattr(
        llama_module, "load_runtime", lambda model=None, paths=None, config=None: ScriptedGenerator(["#### 4"])
    )


def _eval(home: Paths, tmp_path: Path, task: str, data: Path | str, *extra: str) -> str:
    result = runner.invoke(app, ["eval", task, "--data", str(data), "--out", str(tmp_path / "run"), *extra])
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"42\n", "line 1 is not a JSON object"),
        (b'"a string"\n', "line 1 is not a JSON object"),
        (b'{"question": "q", "answer": "#### 4"}\n\xff\xfe\n', "is not UTF-8 text"),
        (b"", "holds no examples"),
        (b"\n\n", "holds no examples"),
    ],
)
def test_bad_jsonl(home: Paths, tmp_path: Path, content: bytes, message: str) -> None:
    data = tmp_path / "gsm.jsonl"
    data.write_bytes(content)
    assert message in _eval(home, tmp_path, "gsm8k", data)


@pytest.mark.parametrize(
    ("squad", "message"),
    [
        ({"data": [{"paragraphs": [{"context": "c", "qas": [{"question": "q", "answers": []}]}]}]}, "malformed"),
        ({"data": ["not an article"]}, "article 1 is not an object"),
        ({"data": {"not": "a list"}}, "a top-level 'data' list"),
        ([1, 2], "a top-level 'data' list"),
    ],
)
def test_bad_squad(home: Paths, tmp_path: Path, squad: object, message: str) -> None:
    data = tmp_path / "squad.json"
    data.write_text(json.dumps(squad))
    assert message in _eval(home, tmp_path, "squad2", data)


def test_bad_hotpotqa_context(home: Paths, tmp_path: Path) -> None:
    item = {"question": "q", "answer": "a", "supporting_facts": [["T", 0]], "context": [["T"]]}
    data = tmp_path / "hotpot.json"
    data.write_text(json.dumps([item]))
    assert "item 1: malformed context" in _eval(home, tmp_path, "hotpotqa", data)


def test_bad_out_config_and_data_paths(home: Paths, tmp_path: Path) -> None:
    data = tmp_path / "gsm.jsonl"
    data.write_text(json.dumps({"question": "q", "answer": "#### 4"}) + "\n")
    (tmp_path / "run").write_text("a file")
    assert "is a file; give a folder" in _eval(home, tmp_path, "gsm8k", data)
    (tmp_path / "run").unlink()
    (tmp_path / "run").mkdir()
    for damaged in ("{not json", "[1, 2]"):
        (tmp_path / "run" / "config.json").write_text(damaged)
        assert "config.json is damaged" in _eval(home, tmp_path, "gsm8k", data)
    assert "is a folder; give the dataset file" in _eval(home, tmp_path, "gsm8k", tmp_path)


def test_report_on_a_summary_with_missing_keys(home: Paths, tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    for summary, message in (({"task": "gsm8k"}, "lacks 'n'"), ([], "is not a JSON object")):
        (run / "summary.json").write_text(json.dumps(summary))
        result = runner.invoke(app, ["eval", "report", str(run), "--out", str(tmp_path / "rep")])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
