"""Real model (smollm2-135m): adapter hot-swap, prefix reuse, parallel sampling, answering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dca.config import Paths
from dca.runtime.llama import GenerationConfig, RuntimeConfig, load_runtime
from dca.runtime.sampling import sample_parallel

pytestmark = pytest.mark.slow
GREEDY = GenerationConfig(max_tokens=24)


@pytest.fixture(scope="module")
def runtime():
    return load_runtime("smollm2-135m", paths=Paths.resolve(), config=RuntimeConfig(n_ctx=1024))


def _write_adapter(base: Path, out: Path, *, scale: float, seed: int = 0) -> Path:
    """A LoRA adapter GGUF for every attention q/v matrix of ``base``: zeros, or random of ``scale``."""
    import gguf

    reader = gguf.GGUFReader(str(base))
    arch = str(bytes(reader.fields["general.architecture"].parts[-1]), "utf-8")
    writer = gguf.GGUFWriter(str(out), arch)
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    rank = 4
    writer.add_float32("adapter.lora.alpha", float(rank))
    rng = np.random.default_rng(seed)
    for tensor in reader.tensors:
        if not tensor.name.endswith(("attn_q.weight", "attn_v.weight")):
            continue
        n_in, n_out = int(tensor.shape[0]), int(tensor.shape[1])  # ggml order: ne0 = inputs
        a = (rng.normal(size=(rank, n_in)) * scale).astype(np.float32)
        b = (rng.normal(size=(n_out, rank)) * scale).astype(np.float32)
        writer.add_tensor(f"{tensor.name}.lora_a", a)
        writer.add_tensor(f"{tensor.name}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


def _tokens(runtime, prompt: str, config: GenerationConfig) -> list[int]:
    return runtime.complete(prompt, config).tokens


def test_adapter_hot_swap(runtime, tmp_path: Path) -> None:
    prompt = runtime.chat_prompt([{"role": "user", "content": "Name three colours."}])
    base = _tokens(runtime, prompt, GREEDY)
    runtime.load_adapter("zero", _write_adapter(runtime.path, tmp_path / "zero.gguf", scale=0.0))
    runtime.load_adapter("random", _write_adapter(runtime.path, tmp_path / "random.gguf", scale=0.5))
    assert _tokens(runtime, prompt, GenerationConfig(max_tokens=24, adapter="zero")) == base
    changed = _tokens(runtime, prompt, GenerationConfig(max_tokens=24, adapter="random"))
    assert changed != base
    assert _tokens(runtime, prompt, GREEDY) == base  # back to the base model, same tokens
    assert _tokens(runtime, prompt, GenerationConfig(max_tokens=24, adapter="random")) == changed


def test_prefix_is_reused(runtime) -> None:
    system = {"role": "system", "content": "You are a helpful assistant who answers briefly. " * 5}
    first = runtime.complete(runtime.chat_prompt([system, {"role": "user", "content": "Hi!"}]), GREEDY)
    second = runtime.complete(runtime.chat_prompt([system, {"role": "user", "content": "Name a fruit."}]), GREEDY)
    assert first.prompt_tokens > 40 and second.cached_tokens >= 40


def test_parallel_sampling(runtime) -> None:
    prompt = runtime.chat_prompt([{"role": "user", "content": "Write a line about the sea."}])
    single = runtime.complete(prompt, GREEDY)
    assert sample_parallel(runtime, prompt, 1, GREEDY)[0].tokens == single.tokens
    hot = GenerationConfig(max_tokens=24, temperature=1.0, seed=7)
    samples = sample_parallel(runtime, prompt, 4, hot)
    assert len({tuple(s.tokens) for s in samples}) > 1  # different sequences really differ
    again = sample_parallel(runtime, prompt, 4, hot)
    assert [s.tokens for s in samples] == [s.tokens for s in again]  # seeded: reproducible
    assert all(0 < s.completion_tokens <= 24 for s in samples)


def test_stop_sequences_cut_the_text(runtime) -> None:
    prompt = runtime.chat_prompt([{"role": "user", "content": "Count from one to ten, one number per line."}])
    full = runtime.complete(prompt, GenerationConfig(max_tokens=40)).text
    stop = full[len(full) // 2 : len(full) // 2 + 3]  # a string the greedy answer is known to contain
    cut = runtime.complete(prompt, GenerationConfig(max_tokens=40, stop=(stop,)))
    assert cut.text == full[: full.index(stop)] and cut.finish_reason == "stop"


def test_the_prompt_state_is_read_in_the_answers_own_evaluation(runtime) -> None:
    """The grounding judge's read: the hidden state at a prompt's last token, after which the
    answer from the same prompt reuses the evaluation (all but its last token cached) and is the
    answer it would have been; the state is the one choice_state reads there."""
    prompt = runtime.chat_prompt([{"role": "user", "content": "Why is the sky blue? Answer in one line. " * 4}])
    config = GenerationConfig(max_tokens=16, temperature=0.0)
    alone = runtime.complete(prompt, config).text
    runtime.complete(runtime.chat_prompt([{"role": "user", "content": "hi"}]), config)  # another prompt cached
    state = runtime.prompt_state(prompt, config)
    after = runtime.complete(prompt, config)
    assert after.text == alone and after.cached_tokens == after.prompt_tokens - 1
    _, states = runtime.choice_state(prompt, ["Yes", "No"], config, at=(-1,))
    assert state.shape == states[0].shape and np.allclose(state, states[0], atol=1e-3)
