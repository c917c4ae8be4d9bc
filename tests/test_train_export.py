"""LoRA export parity on a tiny qwen2 model: torch (base + LoRA) and llama.cpp (GGUF base +
exported adapter, hot-swapped by the runtime) agree on 32 greedy tokens.

Tolerance: exact. Both sides compute in float32 on the same weights; the tiny model's
weights are drawn large, so the greedy choice is never a near tie.
"""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from tiny_models import tiny_qwen2, write_gguf  # noqa: E402

from dca.errors import TrainError  # noqa: E402
from dca.runtime.generation import GenerationConfig  # noqa: E402
from dca.runtime.llama import LlamaRuntime, RuntimeConfig  # noqa: E402
from dca.train.export import export_lora, lora_tensors  # noqa: E402

PROMPT = "tiny prompt: 17 sheep"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _torch_greedy(model: object, ids: list[int], n: int) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=n, do_sample=False, eos_token_id=None, pad_token_id=0)
    return out[0, len(ids) :].tolist()


def test_exported_adapter_matches_torch_over_32_greedy_tokens(tmp_path: Path) -> None:
    model, tokens = tiny_qwen2()
    base_path = write_gguf(model, tokens, tmp_path / "tiny.gguf")
    lora = peft.get_peft_model(model, peft.LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, lora_dropout=0.0))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, parameter in lora.named_parameters():
            if "lora_" in name:
                parameter.normal_(0, 0.3)  # peft starts B at zero: a no-op adapter would prove nothing
    adapter = export_lora(
        lora, tmp_path / "adapters" / "tiny.gguf", arch="qwen2", n_blocks=2, alpha=8, base_model="tiny"
    )
    runtime = LlamaRuntime(base_path, name="tiny", config=RuntimeConfig(n_ctx=256, n_threads=1))
    ids = runtime.tokenize(PROMPT)
    config = GenerationConfig(max_tokens=32, ignore_eos=True)
    base = runtime.sample(PROMPT, 1, config)[0].tokens
    runtime.load_adapter("tiny", adapter)
    adapted = runtime.sample(PROMPT, 1, GenerationConfig(max_tokens=32, ignore_eos=True, adapter="tiny"))[0].tokens
    with lora.disable_adapter():
        assert base == _torch_greedy(lora, ids, 32)
    assert adapted == _torch_greedy(lora, ids, 32)
    assert adapted != base and len(adapted) == 32
    assert runtime.sample(PROMPT, 1, config)[0].tokens == base  # back to the base: the adapter is hot-swapped off


def test_export_refuses_what_it_cannot_write(tmp_path: Path) -> None:
    model, _ = tiny_qwen2()
    with pytest.raises(TrainError, match="no LoRA weights"):
        lora_tensors(model, arch="qwen2", n_blocks=2)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj"]))
    with pytest.raises(TrainError, match="architecture 'nonsense' is not supported"):
        export_lora(lora, tmp_path / "x.gguf", arch="nonsense", n_blocks=2, alpha=4, base_model="tiny")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_an_adapter_for_another_base_is_refused_naming_both(tmp_path: Path) -> None:
    from dca.errors import GeneratorError

    model, tokens = tiny_qwen2()
    base_path = write_gguf(model, tokens, tmp_path / "tiny.gguf")
    lora = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj"]))
    other = export_lora(
        lora, tmp_path / "other.gguf", arch="qwen2", n_blocks=2, alpha=4, base_model="qwen2.5-coder-1.5b"
    )
    runtime = LlamaRuntime(base_path, name="tiny", config=RuntimeConfig(n_ctx=256, n_threads=1))
    with pytest.raises(GeneratorError, match="trained on qwen2.5-coder-1.5b, not on tiny"):
        runtime.load_adapter("other", other)
    with pytest.raises(GeneratorError, match="is not a LoRA adapter"):
        runtime.load_adapter("base", base_path)
