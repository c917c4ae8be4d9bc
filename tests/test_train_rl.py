"""Collect, SFT, one RL round and export, end to end on a tiny qwen2 model in llama.cpp and torch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("peft")

from tiny_models import tiny_qwen2, write_gguf

from dca.config import Paths
from dca.train.base import RunFolder
from dca.train.rl import RLConfig, train_rl
from dca.train.sft import SFTConfig, train_sft
from dca.train.traces import CollectConfig, collect


def _questions(path: Path) -> Path:
    rows = [{"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}"} for i in (1, 2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) * 2, encoding="utf-8")  # 4 rows: 2 rounds of 2
    return path


def test_collect_sft_rl_round_and_export_end_to_end(tmp_path: Path, home: Paths) -> None:
    model, tokens = tiny_qwen2()
    base = write_gguf(model, tokens, tmp_path / "tiny.gguf")
    data = _questions(tmp_path / "train.jsonl")
    # Seed data: the reference format needs no model; then programs written by hand.
    reference = collect(CollectConfig(data=str(data), format="reference"), out=tmp_path / "ref.jsonl")
    assert reference["traces"] == 4
    seed_traces = tmp_path / "seed.jsonl"
    rows = []
    for i in (1, 2):
        messages = [{"role": "system", "content": "x"}, {"role": "user", "content": f"What is {i} + {i}?"}]
        from dca.reasoning.program import program_messages

        messages = program_messages(messages)
        rows.append({"id": f"s{i}", "traces": [{"messages": messages, "response": f"```python\nprint({2 * i})\n```"}]})
    seed_traces.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    sft = SFTConfig(
        data=str(seed_traces), model=str(base), rank=8, alpha=16, lr=2e-2, epochs=40, seq_len=1024, grad_accum=1,
        warmup=1, checkpoint_every=1000, dtype="float32", gradient_checkpointing=False,
    )  # fmt: skip
    summary = train_sft(sft, RunFolder.of("seed", home, tmp_path / "seed-run"))
    rl = RLConfig(
        data=str(data), model=str(base), init_adapter=summary["adapter"], init_traces=str(seed_traces), rounds=1,
        questions=2, samples=2, temperature=0.7,
        sft=SFTConfig(data="-", rank=8, alpha=16, lr=1e-2, epochs=2, seq_len=1024, grad_accum=1, warmup=1,
                      dtype="float32", gradient_checkpointing=False),
    )  # fmt: skip
    log = train_rl(rl, RunFolder.of("rl", home, tmp_path / "rl"))
    assert len(log) == 1
    line = log[0]
    assert line["round"] == 1 and line["policy"] == "seed" and line["questions"] == 2
    assert set(line) >= {"sample_accuracy", "mean_reward", "mean_sample_tokens", "traces_kept", "sft_final_loss"}
    assert line["sample_accuracy"] > 0  # the seed adapter learned to print the answers
    assert Path(line["adapter"]).is_file() and Path(line["adapter"]).name == "rl-r1.gguf"
    again = train_rl(rl, RunFolder.of("rl", home, tmp_path / "rl"))  # resumes: nothing left to do
    assert again == log
