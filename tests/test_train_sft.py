"""SFT on a tiny qwen2 written as GGUF: loss on responses, checkpoints, the exported adapter
loads in the runtime, a changed config is refused, and a real SIGKILL mid-run resumes to the
same weights as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


from dca.config import Paths  # noqa: E402
from dca.errors import TrainError  # noqa: E402
from dca.runtime.generation import GenerationConfig  # noqa: E402
from dca.runtime.llama import LlamaRuntime, RuntimeConfig  # noqa: E402
from dca.train.base import RunFolder  # noqa: E402
from dca.train.data import IGNORE, encode, read_traces  # noqa: E402
from dca.train.sft import SFTConfig, train_sft  # noqa: E402


def _traces(path: Path, n: int = 6) -> Path:
    rows = []
    for i in range(n):
        messages = [{"role": "system", "content": "Solve."}, {"role": "user", "content": f"{i} + {i}?"}]
        rows.append(
            {"id": f"q{i}", "traces": [{"messages": messages, "response": f"```python\nprint({i} + {i})\n```"}]}
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(tmp_path: Path, tiny: Path, **changes: object) -> SFTConfig:
    settings: dict[str, object] = {
        "data": str(_traces(tmp_path / "traces.jsonl")),
        "model": str(tiny),
        "rank": 4,
        "alpha": 8,
        "lr": 5e-3,
        "epochs": 3,
        "seq_len": 64,
        "grad_accum": 2,
        "warmup": 1,
        "checkpoint_every": 2,
        "dtype": "float32",
        "gradient_checkpointing": False,
        **changes,
    }
    return SFTConfig(**settings)  # type: ignore[arg-type]


def test_only_response_tokens_are_targets(tmp_path: Path, tiny: Path) -> None:
    tokenizer = LlamaRuntime(tiny, name="tiny", config=RuntimeConfig(vocab_only=True))
    trace = read_traces(_traces(tmp_path / "t.jsonl"))[1]
    example = encode(tokenizer, trace, 512)
    prompt = tokenizer.tokenize(tokenizer.chat_prompt(trace["messages"]) + "```python\n")
    assert example.labels[: len(prompt)] == [IGNORE] * len(prompt)  # the fence is forced at inference
    assert example.labels[len(prompt) :] == example.tokens[len(prompt) :]
    assert example.tokens[-1] == tokenizer.llm.token_eos()


def test_sft_trains_checkpoints_and_exports_a_loadable_adapter(tmp_path: Path, tiny: Path, home: Paths) -> None:
    summary = train_sft(_config(tmp_path, tiny), RunFolder.of("tiny-sft", home, tmp_path / "run"))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == summary["steps"] == 9 and log[-1]["loss"] < log[0]["loss"]
    assert (tmp_path / "run" / "checkpoints" / "latest").read_text().strip() == "step-9"
    assert len(list((tmp_path / "run" / "checkpoints").glob("step-*"))) == 2  # the two newest
    import gguf
    import numpy as np

    reader = gguf.GGUFReader(summary["adapter"])
    b = [t for t in reader.tensors if t.name.endswith(".lora_b")]
    assert len(b) == 2 * 7 and all(np.abs(t.data).max() > 0 for t in b)  # trained away from peft's zero init
    runtime = LlamaRuntime(tiny, name="tiny", config=RuntimeConfig(n_ctx=256, n_threads=1))
    runtime.load_adapter("tiny-sft", Path(summary["adapter"]))
    tuned = runtime.sample("x", 1, GenerationConfig(max_tokens=8, ignore_eos=True, adapter="tiny-sft"))[0]
    assert len(tuned.tokens) == 8
    with pytest.raises(TrainError, match="lr: 0.005 -> 0.001"):
        train_sft(_config(tmp_path, tiny, lr=1e-3), RunFolder.of("tiny-sft", home, tmp_path / "run"))


def test_max_easy_keeps_the_shortest_traces_of_easy_questions_only(tmp_path: Path) -> None:
    messages = [{"role": "user", "content": "q"}]
    traces = [{"messages": messages, "response": r} for r in ("short", "longer one")]
    rows = [
        {"id": "easy", "drawn": 4, "correct": 3, "traces": traces},
        {"id": "hard", "drawn": 4, "correct": 2, "traces": traces},
        {"id": "reference", "drawn": 1, "correct": 1, "traces": traces},  # one drawn: no difficulty to read
    ]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert len(read_traces(path)) == 6
    assert [t["response"] for t in read_traces(path, max_easy=1)] == ["short"] + ["short", "longer one"] * 2


def test_bad_traces_name_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "traces": []}\nnot json\n')
    with pytest.raises(TrainError, match="line 2 is not JSON"):
        read_traces(bad)
    bad.write_text('{"id": 1, "traces": []}\n')
    with pytest.raises(TrainError, match="holds no traces"):
        read_traces(bad)
    bad.write_text("")
    with pytest.raises(TrainError, match="holds no traces"):
        read_traces(bad)


def test_an_unsupported_base_is_refused(tmp_path: Path, home: Paths) -> None:
    from conftest import write_gguf as write_fake_gguf

    fake = write_fake_gguf(tmp_path / "mamba.gguf", arch="mamba")
    with pytest.raises(TrainError, match="'mamba' model; training supports qwen2, llama"):
        train_sft(_config(tmp_path, fake), RunFolder.of("x", home, tmp_path / "run"))


def _sft_command(tmp_path: Path, tiny: Path, run: Path) -> list[str]:
    return [
        sys.executable, "-m", "dca", "train", "sft", "--data", str(_traces(tmp_path / "traces.jsonl")),
        "--out", "tiny", "--run-dir", str(run), "--model", str(tiny), "--rank", "4", "--alpha", "8",
        "--lr", "0.005", "--epochs", "3", "--seq-len", "64", "--grad-accum", "2", "--warmup", "1",
        "--checkpoint-every", "2", "--dtype", "float32", "--json",
    ]  # fmt: skip


def test_sigkill_during_sft_resumes_to_the_same_adapter(tmp_path: Path, tiny: Path) -> None:
    from safetensors.torch import load_file

    env = {**os.environ, "DCA_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    whole = subprocess.run(_sft_command(tmp_path, tiny, tmp_path / "whole"), env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    run = tmp_path / "killed"
    child = subprocess.Popen(_sft_command(tmp_path, tiny, run), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "latest").is_file() and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    latest = (run / "checkpoints" / "latest").read_text().strip()
    assert latest != "step-9", "the run finished before it could be killed"
    rerun = subprocess.run(_sft_command(tmp_path, tiny, run), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["steps"] == 9
    a = load_file(str(tmp_path / "whole" / "checkpoints" / "step-9" / "adapter.safetensors"))
    b = load_file(str(run / "checkpoints" / "step-9" / "adapter.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 10))


def test_a_full_disk_during_a_checkpoint_leaves_the_previous_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import safetensors.torch

    from dca.train import base as sft

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    optimizer.step()
    sft.save_checkpoint(tmp_path, 1, model, optimizer, {"step": 1, "tokens": 4, "seconds": 1.0})
    saved = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer.step()
    real_save = safetensors.torch.save_file
    calls = []

    def full_disk(tensors: object, path: str, *args: object, **kwargs: object) -> None:
        calls.append(path)
        if len(calls) == 2:  # the optimizer file, after the weights were written
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(tensors, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    with pytest.raises(TrainError, match=r"step-2 .*No space left on device.*step-1 is intact.*rerun"):
        sft.save_checkpoint(tmp_path, 2, model, optimizer, {"step": 2, "tokens": 8, "seconds": 2.0})
    root = tmp_path / "checkpoints"
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-1"]  # no partial step-2 left behind
    assert (root / "latest").read_text().strip() == "step-1"
    monkeypatch.setattr(safetensors.torch, "save_file", real_save)
    fresh = torch.nn.Linear(3, 2)
    state = sft.load_checkpoint(tmp_path, fresh, torch.optim.AdamW(fresh.parameters(), lr=0.1))
    assert state is not None and state["step"] == 1
    assert all(torch.equal(p, saved[name]) for name, p in fresh.named_parameters())


def test_the_training_device_is_checked_before_anything_loads() -> None:
    """The trainers (sft, dpo, grpo) take --device auto|cpu|cuda; cuda where torch
    sees no GPU is one line naming the fix."""
    from dca.errors import ConfigError, TrainError
    from dca.train.base import resolve_device
    from dca.train.dpo import DPOConfig
    from dca.train.sft import SFTConfig

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="--device cuda, but torch .* sees no GPU"):
            resolve_device("cuda")
    for make in (SFTConfig, DPOConfig):
        with pytest.raises(ConfigError, match="device must be one of auto, cpu, cuda"):
            make(data="x.jsonl", device="tpu")
