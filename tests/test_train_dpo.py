"""Preference training (DPO + NLL) on a tiny qwen2 written as GGUF: a learnable toy's
loss falls and its margin rises, the reference cache is computed once and checked, a real
SIGKILL resumes to the same weights, the adapter exports, re-imports and loads, bad input is one line."""

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

from tiny_models import tiny_qwen2, write_gguf  # noqa: E402

from dca.config import Paths  # noqa: E402
from dca.errors import TrainError  # noqa: E402
from dca.runtime.llama import LlamaRuntime, RuntimeConfig  # noqa: E402
from dca.train.base import RunFolder, lora_model  # noqa: E402
from dca.train.dpo import DPOConfig, train_dpo  # noqa: E402
from dca.train.export import import_lora, lora_tensors  # noqa: E402


def _pairs(path: Path, n: int = 6) -> Path:
    rows = []
    for i in range(n):
        messages = [{"role": "system", "content": "Solve."}, {"role": "user", "content": f"{i} + {i}?"}]
        rows.append(
            {
                "id": f"q{i}",
                "messages": messages,
                "chosen": f"```python\nprint({i} + {i})\n```",
                "rejected": f"```python\nprint({i} - {i})\n```",
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _config(tmp_path: Path, tiny: Path, **changes: object) -> DPOConfig:
    settings: dict[str, object] = {
        "data": str(_pairs(tmp_path / "pairs.jsonl")),
        "model": str(tiny),
        "rank": 4,
        "alpha": 8,
        "lr": 5e-3,
        "beta": 0.5,
        "epochs": 3,
        "seq_len": 64,
        "grad_accum": 2,
        "warmup": 1,
        "checkpoint_every": 2,
        "dtype": "float32",
        "gradient_checkpointing": False,
        **changes,
    }
    return DPOConfig(**settings)  # type: ignore[arg-type]


def test_dpo_lowers_the_loss_raises_the_margin_and_exports(tmp_path: Path, tiny: Path, home: Paths) -> None:
    summary = train_dpo(_config(tmp_path, tiny), RunFolder.of("tiny-dpo", home, tmp_path / "run"))
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert len(log) == summary["steps"] == 9
    assert log[0]["margin"] == pytest.approx(0.0, abs=1e-4)  # the policy starts as the reference
    assert log[-1]["loss"] < log[0]["loss"] and log[-1]["dpo"] < log[0]["dpo"]
    assert log[-1]["margin"] > 0.1 and log[-1]["reward_accuracy"] == 1.0
    cache = tmp_path / "pairs.jsonl.reference.jsonl"
    assert len(cache.read_text().splitlines()) == 1 + 6  # meta + one line per pair
    runtime = LlamaRuntime(tiny, name="tiny", config=RuntimeConfig(n_ctx=256))
    runtime.load_adapter("dpo", Path(summary["adapter"]))
    assert "dpo" in runtime.adapters
    # --init-adapter: the exported file imports back into a fresh LoRA exactly (float16 export)
    fresh = lora_model(tiny, "float32", rank=4, alpha=8, targets=DPOConfig(data="x").targets)
    import_lora(fresh, Path(summary["adapter"]), arch="qwen2", base_model="tiny", alpha=8)
    from dca.train.base import load_checkpoint

    trained = lora_model(tiny, "float32", rank=4, alpha=8, targets=DPOConfig(data="x").targets)
    load_checkpoint(tmp_path / "run", trained, torch.optim.AdamW(trained.parameters()))
    a = lora_tensors(fresh, arch="qwen2", n_blocks=2, dtype="float32")
    b = lora_tensors(trained, arch="qwen2", n_blocks=2, dtype="float32")
    assert a.keys() == b.keys() and all(abs(a[k] - b[k]).max() < 1e-2 for k in a)


def test_a_reference_cache_of_other_pairs_or_another_start_is_refused(tmp_path: Path, tiny: Path, home: Paths) -> None:
    config = _config(tmp_path, tiny, max_steps=1)
    train_dpo(config, RunFolder.of("a", home, tmp_path / "a"))
    cache = tmp_path / "pairs.jsonl.reference.jsonl"
    lines = cache.read_text().splitlines()
    meta = json.loads(lines[0])
    meta["meta"]["base"] = "another-model"
    cache.write_text("\n".join([json.dumps(meta), *lines[1:]]) + "\n")
    with pytest.raises(TrainError, match="reference cache .* belongs to another base; delete it"):
        train_dpo(config, RunFolder.of("b", home, tmp_path / "b"))


def test_a_response_shared_by_pairs_is_read_once_even_after_a_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dca.train import dpo
    from dca.train.data import Example

    reads: list[tuple[int, ...]] = []

    def fake_logp(model: object, example: Example) -> tuple[object, int]:
        reads.append(tuple(example.tokens))
        return torch.tensor(-float(sum(example.tokens))), len(example.tokens)

    monkeypatch.setattr(dpo, "sequence_logp", fake_logp)
    right, wrong1, wrong2, other = (Example([1, t], [-100, t]) for t in (2, 3, 4, 5))
    encoded = [(right, wrong1), (right, wrong2), (other, wrong2)]  # two questions' pairs
    cache = tmp_path / "pairs.jsonl.reference.jsonl"
    model = torch.nn.Linear(1, 1)
    first = dpo.reference_logps(model, encoded[:2], cache, {"m": 1})
    assert first == [(-3.0, -4.0), (-3.0, -5.0)] and len(reads) == 3  # `right` read once
    reads.clear()
    assert dpo.reference_logps(model, encoded, cache, {"m": 1}) == [*first, (-6.0, -5.0)]
    assert reads == [(1, 5)]  # resumed: the cached lines stand for `wrong2`; only `other` is new
    assert len(cache.read_text().splitlines()) == 1 + 3


def test_bad_pairs_and_adapters_are_one_line(tmp_path: Path, tiny: Path, home: Paths) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text("")
    with pytest.raises(TrainError, match="holds no pairs"):
        train_dpo(_config(tmp_path, tiny, data=str(bad)), RunFolder.of("x", home, tmp_path / "x"))
    bad.write_text(json.dumps({"messages": [], "chosen": "a", "rejected": "a"}) + "\n")
    with pytest.raises(TrainError, match="line 1: chosen and rejected are the same"):
        train_dpo(_config(tmp_path, tiny, data=str(bad)), RunFolder.of("x", home, tmp_path / "x"))
    bad.write_text('{"messages": []}\n')
    with pytest.raises(TrainError, match="line 1 is not a pair"):
        train_dpo(_config(tmp_path, tiny, data=str(bad)), RunFolder.of("x", home, tmp_path / "x"))
    first = train_dpo(_config(tmp_path, tiny, max_steps=1), RunFolder.of("first", home, tmp_path / "first"))
    # an adapter made for another base is refused, naming both
    other, tokens = tiny_qwen2(seed=1)
    other_path = write_gguf(other, tokens, tmp_path / "other.gguf")
    with pytest.raises(TrainError, match="trained on tiny, not on other"):
        train_dpo(_config(tmp_path, other_path, init_adapter=first["adapter"]), RunFolder.of("y", home, tmp_path / "y"))
    with pytest.raises(TrainError, match="give the --rank it was trained with|adapts other layers"):
        train_dpo(
            _config(tmp_path, tiny, init_adapter=first["adapter"], rank=8, alpha=8),
            RunFolder.of("z", home, tmp_path / "z"),
        )


def _dpo_command(tmp_path: Path, tiny: Path, run: Path) -> list[str]:
    return [
        sys.executable, "-m", "dca", "train", "dpo", "--data", str(_pairs(tmp_path / "pairs.jsonl")),
        "--out", "tiny", "--run-dir", str(run), "--model", str(tiny), "--rank", "4", "--alpha", "8",
        "--lr", "0.005", "--beta", "0.5", "--epochs", "3", "--seq-len", "64", "--grad-accum", "2",
        "--warmup", "1", "--checkpoint-every", "2", "--dtype", "float32", "--no-grad-checkpointing", "--json",
    ]  # fmt: skip


def test_sigkill_during_dpo_resumes_to_the_same_adapter(tmp_path: Path, tiny: Path) -> None:
    from safetensors.torch import load_file

    env = {**os.environ, "DCA_HOME": str(tmp_path / "home")}
    (tmp_path / "home").mkdir()
    whole = subprocess.run(_dpo_command(tmp_path, tiny, tmp_path / "whole"), env=env, capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    run = tmp_path / "killed"
    child = subprocess.Popen(_dpo_command(tmp_path, tiny, run), env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "latest").is_file() and time.monotonic() < deadline:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert (run / "checkpoints" / "latest").read_text().strip() != "step-9", "finished before the kill"
    rerun = subprocess.run(_dpo_command(tmp_path, tiny, run), env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["steps"] == 9
    a = load_file(str(tmp_path / "whole" / "checkpoints" / "step-9" / "adapter.safetensors"))
    b = load_file(str(run / "checkpoints" / "step-9" / "adapter.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [json.loads(line)["step"] for line in (run / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 10))
