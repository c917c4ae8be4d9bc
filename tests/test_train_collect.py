"""Trace collection with a scripted generator: shortest correct kept, provenance, resume after
a kill, refused test rows and changed settings, reference solutions reformatted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ScriptedGenerator
from typer.testing import CliRunner

from dca.cli import app
from dca.errors import ConfigError, TrainError
from dca.train.traces import CollectConfig, collect

runner = CliRunner()


def _train(tmp_path: Path, n: int = 3) -> Path:
    rows = [
        {"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = <<{i}+{i}={2 * i}>>{2 * i}\n#### {2 * i}"}
        for i in range(1, n + 1)
    ]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_collect_keeps_the_shortest_correct_program(tmp_path: Path) -> None:
    data = _train(tmp_path, 1)
    generator = ScriptedGenerator(
        ["print(3)\n```", "first = 1\nsecond = 1\ntotal = first + second\nprint(total)\n```", "print(1 + 1)\n```"]
    )
    out = tmp_path / "traces.jsonl"
    counts = collect(CollectConfig(data=str(data), samples=3), out=out, generator=generator)
    assert generator.sample_calls == [3]  # the three programs drawn in one batch
    row = json.loads(out.read_text().splitlines()[0])
    assert row["drawn"] == 3 and row["correct"] == 2 and len(row["traces"]) == 1
    trace = row["traces"][0]
    assert trace["response"] == "```python\nprint(1 + 1)\n```" and trace["final"] == "2" and trace["seed"] == 2
    assert trace["reward"] > 1.0 and trace["messages"][0]["role"] == "system"
    assert row["provenance"]["model"] == "scripted" and row["provenance"]["format"] == "program"
    assert counts == {
        "questions": 1,
        "with_a_correct_trace": 1,
        "traces": 1,
        "samples_drawn": 3,
        "mean_trace_tokens": 3.0,
        "rationalized": 0,
        "sample_accuracy": 0.6667,
        "mean_reward": 0.7644,
        "mean_sample_tokens": 4.3,
    }


def test_collect_cot_traces_in_the_think_format(tmp_path: Path) -> None:
    data = _train(tmp_path, 1)
    generator = ScriptedGenerator(["one and one is two </think>", "The answer is 2."])
    out = tmp_path / "cot.jsonl"
    collect(CollectConfig(data=str(data), format="cot", samples=1), out=out, generator=generator)
    trace = json.loads(out.read_text())["traces"][0]
    assert trace["response"] == "<think>\none and one is two\n</think>\n\nThe answer is 2."
    assert "inside <think>" in trace["messages"][0]["content"]


def test_collect_resumes_after_a_kill(tmp_path: Path) -> None:
    data = _train(tmp_path, 3)
    out = tmp_path / "traces.jsonl"
    config = CollectConfig(data=str(data), samples=1)
    collect(config, out=out, generator=ScriptedGenerator(["print(2)\n```"]), progress=None)
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n" + lines[1][:25])  # killed while writing the second line
    generator = ScriptedGenerator(["print(4)\n```", "print(6)\n```"])
    counts = collect(config, out=out, generator=generator)
    assert len(generator.prompts) == 2  # questions 2 and 3 again, not question 1
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["gsm8k-1", "gsm8k-2", "gsm8k-3"]
    assert counts["traces"] == 3


def test_collect_refuses_test_rows_and_changed_settings(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="train rows only"):
        CollectConfig(data=str(tmp_path / "test_dev.jsonl"))
    data = _train(tmp_path, 1)
    out = tmp_path / "traces.jsonl"
    collect(CollectConfig(data=str(data), samples=1), out=out, generator=ScriptedGenerator(["print(2)\n```"]))
    with pytest.raises(TrainError, match="temperature: 0.7 -> 0.9"):
        collect(CollectConfig(data=str(data), samples=1, temperature=0.9), out=out, generator=ScriptedGenerator())
    with pytest.raises(ConfigError, match="keep must be between 1 and samples"):
        CollectConfig(data=str(data), samples=2, keep=3)


def test_reference_solutions_need_no_model(tmp_path: Path) -> None:
    data = _train(tmp_path, 2)
    result = runner.invoke(
        app,
        [
            "train",
            "collect",
            "--data",
            str(data),
            "--out",
            str(tmp_path / "ref.jsonl"),
            "--format",
            "reference",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["traces"] == 2
    trace = json.loads((tmp_path / "ref.jsonl").read_text().splitlines()[1])["traces"][0]
    assert trace["response"] == "<think>\n2 + 2 = 4\n</think>\n\nThe answer is 4."


def test_reference_solutions_as_programs(tmp_path: Path) -> None:
    rows = [
        {
            "question": "q1",
            "answer": "She has 16 - 3 = <<16-3=13>>13 eggs left.\nShe earns 13 * 2 = $<<13*2=26>>26.\n#### 26",
        },
        {"question": "q2", "answer": "Off by one: 2 + 2 = <<2+2=5>>5 apples.\n#### 5"},  # wrong arithmetic: dropped
        {"question": "q3", "answer": "No annotation here.\n#### 7"},  # nothing prints 7: dropped
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "refprog.jsonl"
    counts = collect(CollectConfig(data=str(data), format="reference-program"), out=out)
    assert counts["questions"] == 3 and counts["traces"] == 1
    trace = json.loads(out.read_text().splitlines()[0])["traces"][0]
    assert trace["response"] == "```python\neggs_left = 16 - 3\nearns = eggs_left * 2\nprint(earns)\n```"
    assert trace["kind"] == "program" and trace["final"] == "26"
    assert "Python program" in trace["messages"][0]["content"]


def test_cli_bad_input_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["train", "collect", "--data", str(tmp_path / "nope.jsonl"), "--out", "x.jsonl"])
    assert result.exit_code == 1 and "does not exist" in result.stderr
    bad = tmp_path / "train.jsonl"
    bad.write_text('{"question": "q"}\n')
    result = runner.invoke(app, ["train", "collect", "--data", str(bad), "--out", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and "line 1 has no field 'answer'" in result.stderr


def test_a_question_holding_a_line_separator_survives_resume(tmp_path: Path) -> None:
    # json.dumps(ensure_ascii=False) keeps U+2028 inside a string; str.splitlines would cut the
    # line there, and resume would then drop every question after it (GSM8K train holds some).
    rows = [
        {"question": "What is 1 + 1?\u2028Think.", "answer": "1 + 1 = <<1+1=2>>2\n#### 2"},
        {"question": "What is 2 + 2?", "answer": "2 + 2 = <<2+2=4>>4\n#### 4"},
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "ref.jsonl"
    config = CollectConfig(data=str(data), format="reference")
    assert collect(config, out=out)["traces"] == 2
    assert "\u2028" in out.read_text(encoding="utf-8")
    assert collect(config, out=out)["questions"] == 2  # the rerun keeps both lines
    assert len(out.read_text(encoding="utf-8").split("\n")) == 3


def test_greedy_first_samples_only_when_the_greedy_program_is_wrong(tmp_path: Path) -> None:
    data = _train(tmp_path, 2)  # 1 + 1 = 2, 2 + 2 = 4
    out = tmp_path / "traces.jsonl"
    # question 1: greedy right, nothing sampled; question 2: greedy wrong, two samples (one right)
    generator = ScriptedGenerator(["print(2)\n```", "print(5)\n```", "print(3)\n```", "print(2 + 2)\n```"])
    counts = collect(CollectConfig(data=str(data), samples=2, greedy_first=True), out=out, generator=generator)
    assert generator.sample_calls == [2]  # only question 2 was sampled
    assert [c.temperature for c in generator.configs[:2]] == [0.0, 0.0]  # type: ignore[attr-defined]
    first, second = (json.loads(line) for line in out.read_text().splitlines())
    assert (first["drawn"], first["correct"], first["traces"][0]["seed"]) == (1, 1, None)
    assert (second["drawn"], second["correct"], second["traces"][0]["response"]) == (
        3,
        1,
        "```python\nprint(2 + 2)\n```",
    )
    assert counts["samples_drawn"] == 4 and counts["traces"] == 2


def test_rationalize_keeps_a_hinted_program_under_the_plain_prompt(tmp_path: Path) -> None:
    rows = [
        {"question": "Ann has 3 bags of 4 apples. How many apples?", "answer": "3 * 4 = <<3*4=12>>12\n#### 12"},
        {"question": "Bob has 2 boxes of 5 pens. How many pens?", "answer": "2 * 5 = <<2*5=10>>10\n#### 10"},
        {"question": "Cy has 6 cats. How many legs?", "answer": "6 * 4 = <<6*4=24>>24\n#### 24"},
    ]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "traces.jsonl"
    generator = ScriptedGenerator(
        [
            "print(7)\n```",  # Ann: the sample is wrong...
            "bags = 3\napples = 4\nprint(bags * apples)\n```",  # ... the hinted program computes 12: kept
            "print(9)\n```",  # Bob: wrong...
            "print(10)\n```",  # ... the hinted one states the answer: dropped
            "print(1)\n```",  # Cy: wrong...
            "print(6 * 5)\n```",  # ... the hinted one is wrong too
        ]
    )
    counts = collect(CollectConfig(data=str(data), samples=1, rationalize=True), out=out, generator=generator)
    assert "Hint, a worked solution" in generator.prompts[1] and "3 * 4 = 12" in generator.prompts[1]
    assert generator.configs[1].temperature == 0.0  # type: ignore[attr-defined]
    ann, bob, cy = (json.loads(line) for line in out.read_text().splitlines())
    assert (ann["drawn"], ann["correct"], ann["rationalized"]) == (1, 0, 1)
    trace = ann["traces"][0]
    assert trace["rationalized"] and trace["final"] == "12"
    assert "Hint" not in json.dumps(trace["messages"]) and trace["messages"][-1]["content"] == rows[0]["question"]
    assert bob["traces"] == [] and bob["rationalized"] == 0 and cy["traces"] == []
    assert counts["rationalized"] == 1 and counts["samples_drawn"] == 3 and counts["sample_accuracy"] == 0.0
    with pytest.raises(ConfigError, match="--format program"):
        CollectConfig(data=str(data), format="cot", rationalize=True)


def test_a_full_disk_is_one_line_that_says_a_rerun_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import dca.train.traces

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ref.jsonl"))

    monkeypatch.setattr(dca.train.traces, "collect", full_disk)
    args = ["train", "collect", "--data", str(_train(tmp_path, 1)), "--out", str(tmp_path / "ref.jsonl")]
    result = runner.invoke(app, [*args, "--format", "reference"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: no space left on the disk writing {tmp_path / 'ref.jsonl'}; free some space and rerun the same "
        "command to resume"
    ]
