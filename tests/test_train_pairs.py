"""Every judged sample kept by collect, and (chosen, rejected) pairs made from them."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from conftest import ScriptedGenerator
from typer.testing import CliRunner

from dca.cli import app
from dca.errors import ConfigError
from dca.train.pairs import greedy_pairs, question_pairs
from dca.train.traces import CollectConfig, collect

runner = CliRunner()


def _train(tmp_path: Path, n: int) -> Path:
    rows = [{"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}"} for i in range(1, n + 1)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_collect_keeps_every_judged_sample_with_its_output_and_error(tmp_path: Path) -> None:
    data = _train(tmp_path, 1)
    generator = ScriptedGenerator(["print(3)\n```", "print(1 + 1)\n```", "raise ValueError('no')\n```"])
    out = tmp_path / "traces.jsonl"
    collect(CollectConfig(data=str(data), samples=3), out=out, generator=generator)
    row = json.loads(out.read_text().splitlines()[0])
    verdicts = [(s["final"], s["correct"]) for s in row["samples"]]
    assert verdicts[:2] == [("3", False), ("2", True)]
    failed = row["samples"][2]
    assert failed["correct"] is False and "ValueError" in failed["error"]
    assert row["samples"][0]["output"].strip() == "3"
    assert row["messages"][0]["role"] == "system" and "messages" not in row["samples"][0]
    assert len(row["traces"]) == 1  # the SFT traces are unchanged


def test_pairs_need_a_right_and_a_wrong_sample_and_spread_over_samples() -> None:
    def row(verdicts: list[bool]) -> dict:
        samples = [
            {"response": f"r{k}", "final": "2" if ok else "3", "correct": ok, "tokens": 10 + k}
            for k, ok in enumerate(verdicts)
        ]
        return {"id": "q", "question": "?", "gold": "2", "messages": [], "samples": samples}

    rng = random.Random(0)
    assert question_pairs(row([True, True]), 2, rng) == []
    assert question_pairs(row([False, False]), 2, rng) == []
    pairs = question_pairs(row([True, False, True, False]), 4, rng)
    combos = [(p["chosen"], p["rejected"]) for p in pairs]
    assert len(set(combos)) == 4  # no pair twice
    first_two = combos[:2]
    assert {c for c, _ in first_two} == {"r0", "r2"} and {r for _, r in first_two} == {"r1", "r3"}
    assert question_pairs(row([True, False, True, False]), 2, rng)[0]["chosen"] == "r0"  # the shorter right first
    duplicate = row([True, False, False])
    duplicate["samples"][2]["response"] = "r1"  # the same wrong program twice is one sample
    assert len(question_pairs(duplicate, 4, rng)) == 1


def test_pairs_command_writes_pairs_and_refuses_files_without_any(tmp_path: Path) -> None:
    data = _train(tmp_path, 2)
    out = tmp_path / "traces.jsonl"
    # question 1: right and wrong; question 2: only right
    generator = ScriptedGenerator(["print(2)\n```", "print(5)\n```", "print(4)\n```", "print(2 + 2)\n```"])
    collect(CollectConfig(data=str(data), samples=2), out=out, generator=generator)
    pairs = tmp_path / "pairs.jsonl"
    result = runner.invoke(app, ["train", "pairs", "--data", str(out), "--out", str(pairs), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts == {"questions": 2, "questions_with_pairs": 1, "only_right": 1, "only_wrong": 0, "pairs": 1}
    pair = json.loads(pairs.read_text())
    assert pair["chosen_final"] == "2" and pair["rejected_final"] == "5" and pair["messages"]

    only_right = tmp_path / "right.jsonl"
    only_right.write_text(out.read_text().splitlines()[1] + "\n")
    refused = tmp_path / "none.jsonl"
    result = runner.invoke(app, ["train", "pairs", "--data", str(only_right), "--out", str(refused)])
    assert result.exit_code == 1 and "gives no pairs" in result.stderr and "1 only right" in result.stderr
    assert not refused.exists() and not refused.with_name("none.jsonl.config.json").exists()

    old = tmp_path / "old.jsonl"
    old.write_text(json.dumps({"id": "gsm8k-1", "traces": []}) + "\n")
    result = runner.invoke(app, ["train", "pairs", "--data", str(old), "--out", str(refused)])
    assert result.exit_code == 1 and "collect again" in result.stderr
    result = runner.invoke(app, ["train", "pairs", "--data", str(old), "--out", str(refused), "--per-question", "0"])
    assert result.exit_code == 1 and "per_question" in result.stderr

    # a hand-edited line: a sample without its verdict, a question without its gold
    row = json.loads(out.read_text().splitlines()[0])
    del row["samples"][1]["correct"]
    edited = tmp_path / "edited.jsonl"
    edited.write_text(json.dumps(row) + "\n")
    result = runner.invoke(app, ["train", "pairs", "--data", str(edited), "--out", str(refused)])
    assert result.exit_code == 1 and "line 1, sample 2: 'correct' missing" in result.stderr, result.output
    del row["gold"]
    edited.write_text(json.dumps(row) + "\n")
    result = runner.invoke(app, ["train", "pairs", "--data", str(edited), "--out", str(refused)])
    assert result.exit_code == 1 and "line 1: 'gold' is missing" in result.stderr and "Traceback" not in result.output
    edited.write_bytes(b"\x00\xff\xfe not text")
    result = runner.invoke(app, ["train", "pairs", "--data", str(edited), "--out", str(refused)])
    assert result.exit_code == 1 and "is not UTF-8 text" in result.stderr
    assert not refused.exists()


def test_greedy_pairs_put_the_greedy_solution_on_one_side() -> None:
    def row(greedy_ok: bool | None, verdicts: list[bool]) -> dict:
        samples = [
            {"response": f"r{k}", "final": "2" if ok else "3", "correct": ok, "tokens": 10 - k, "seed": k}
            for k, ok in enumerate(verdicts)
        ]
        if greedy_ok is not None:
            samples.insert(
                0,
                {"response": "g", "final": "2" if greedy_ok else "3", "correct": greedy_ok, "tokens": 5, "seed": None},
            )
        return {"id": "q", "question": "?", "gold": "2", "messages": [], "samples": samples}

    rng = random.Random(0)
    wrong_greedy = greedy_pairs(row(False, [True, False, True, True]), 2, rng)
    assert [(p["chosen"], p["rejected"]) for p in wrong_greedy] == [("r3", "g"), ("r2", "g")]  # shortest right first
    right_greedy = greedy_pairs(row(True, [True, False, False]), 4, rng)
    assert sorted((p["chosen"], p["rejected"]) for p in right_greedy) == [("g", "r1"), ("g", "r2")]
    assert greedy_pairs(row(True, [True, True]), 2, rng) == []  # nothing disagrees with it
    assert greedy_pairs(row(None, [True, False]), 2, rng) == []  # no greedy solution: no anchor
    same = row(False, [False, True])
    same["samples"][1]["response"] = "g"  # a sample that repeats the greedy program is the greedy program
    assert [(p["chosen"], p["rejected"]) for p in greedy_pairs(same, 2, rng)] == [("r1", "g")]


def test_a_greedy_only_collection_merged_with_samples_makes_anchored_pairs(tmp_path: Path) -> None:
    data = _train(tmp_path, 2)
    greedy = tmp_path / "greedy.jsonl"
    # greedy-only: one solution per question, nothing sampled even where it is wrong
    collect(
        CollectConfig(data=str(data), samples=0, greedy_first=True),
        out=greedy,
        generator=ScriptedGenerator(["print(3)\n```", "print(4)\n```"]),
    )
    rows = [json.loads(line) for line in greedy.read_text().splitlines()]
    assert [[(s["final"], s["seed"]) for s in r["samples"]] for r in rows] == [[("3", None)], [("4", None)]]
    sampled = tmp_path / "sampled.jsonl"
    collect(
        CollectConfig(data=str(data), samples=2),
        out=sampled,
        generator=ScriptedGenerator(["print(2)\n```", "print(7)\n```", "print(4)\n```", "print(9)\n```"]),
    )
    pairs = tmp_path / "pairs.jsonl"
    args = ["train", "pairs", "--data", str(greedy), "--data", str(sampled), "--out", str(pairs), "--anchor", "greedy"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout)
    assert counts["pairs"] == 2 and counts["with_greedy"] == 2 and counts["greedy_right"] == 1
    made = [(p["chosen_final"], p["rejected_final"]) for p in map(json.loads, pairs.read_text().splitlines())]
    assert made == [("2", "3"), ("4", "9")]  # question 1: the wrong greedy rejected; question 2: the right one chosen

    refused = tmp_path / "none.jsonl"
    result = runner.invoke(app, ["train", "pairs", "--data", str(sampled), "--out", str(refused), "--anchor", "greedy"])
    assert result.exit_code == 1 and "no greedy solution" in result.stderr and "--greedy-first" in result.stderr
    other = tmp_path / "other.jsonl"
    row = json.loads(sampled.read_text().splitlines()[0])
    other.write_text(json.dumps({**row, "question": "Something else?"}) + "\n")
    result = runner.invoke(app, ["train", "pairs", "--data", str(sampled), "--data", str(other), "--out", str(refused)])
    assert result.exit_code == 1 and "differs from the same id" in result.stderr
    assert not refused.exists()
    with pytest.raises(ConfigError, match="0 only with --greedy-first"):
        CollectConfig(data=str(data), samples=0)
