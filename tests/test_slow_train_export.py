"""LoRA export parity on the real default model (qwen2.5-coder-1.5b Q4_K_M): torch (the GGUF
base dequantized, float32, + a peft LoRA) against llama.cpp (the GGUF base + the exported
float16 adapter, hot-swapped by the runtime).

Tolerance: teacher-forced, at least 30 of 32 next-token choices agree. The two sides do not
compute the same numbers: llama.cpp multiplies Q4_K weights by 8-bit-quantized activations and
sums in another order, torch multiplies float32 weights, and the adapter is stored in float16.
Where the top two logits are nearly tied that can flip one greedy choice; teacher forcing (both
sides score the same prefix, torch's own greedy tokens) keeps one flip from derailing the rest.
The base model without the adapter is held to the same bar, which shows the gap is the base's
quantization and not the export.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CHECKOUT_MODELS

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from dca.runtime.llama import LlamaRuntime, RuntimeConfig  # noqa: E402
from dca.train.export import export_lora  # noqa: E402

pytestmark = pytest.mark.slow
MODEL = CHECKOUT_MODELS / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PROMPT = "<|im_start|>user\nJanet has 16 eggs and eats 3. How many are left?<|im_end|>\n<|im_start|>assistant\n"
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
N = 32


def _torch_greedy(model: object, ids: list[int]) -> list[int]:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), max_new_tokens=N, min_new_tokens=N, do_sample=False, pad_token_id=0)
    return out[0, len(ids) :].tolist()


def _llama_choices(runtime: LlamaRuntime, adapter: str | None, ids: list[int], forced: list[int]) -> list[int]:
    """llama.cpp's greedy choice after the prompt and after each prefix of ``forced``."""
    import numpy as np

    runtime._use_adapter(adapter, 1.0)
    llm = runtime.llm
    llm.reset()
    llm.eval(ids)

    def last_logits() -> np.ndarray:  # the logits of the last token evaluated
        return np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))

    choices = []
    for token in forced:
        choices.append(int(np.argmax(last_logits())))
        llm.eval([token])
    return choices


def test_the_exported_adapter_matches_torch_on_the_default_model(tmp_path: Path) -> None:
    if not MODEL.is_file():
        pytest.skip("the default model is not pulled (make test-slow pulls it)")
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(MODEL.parent), gguf_file=MODEL.name, dtype=torch.float32)
    lora = peft.get_peft_model(model, peft.LoraConfig(r=8, lora_alpha=16, target_modules=TARGETS, lora_dropout=0.0))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, parameter in lora.named_parameters():
            if "lora_" in name:
                parameter.normal_(0, 0.03)  # peft starts B at zero: a no-op adapter would prove nothing
    adapter = export_lora(
        lora, tmp_path / "parity.gguf", arch="qwen2", n_blocks=model.config.num_hidden_layers, alpha=16,
        base_model="qwen2.5-coder-1.5b",
    )  # fmt: skip
    runtime = LlamaRuntime(MODEL, name="qwen2.5-coder-1.5b", config=RuntimeConfig(n_ctx=512))
    runtime.load_adapter("parity", adapter)
    ids = runtime.tokenize(PROMPT)
    with lora.disable_adapter():
        torch_base = _torch_greedy(lora, ids)
    torch_adapted = _torch_greedy(lora, ids)
    llama_base = _llama_choices(runtime, None, ids, torch_base)
    llama_adapted = _llama_choices(runtime, "parity", ids, torch_adapted)
    base_agree = sum(a == b for a, b in zip(torch_base, llama_base, strict=True))
    adapted_agree = sum(a == b for a, b in zip(torch_adapted, llama_adapted, strict=True))
    print(f"teacher-forced agreement: base {base_agree}/{N}, adapter {adapted_agree}/{N}")
    assert torch_adapted != torch_base  # the adapter changes what the model says
    assert base_agree >= N - 2, f"base: {base_agree}/{N}"
    assert adapted_agree >= N - 2, f"adapter: {adapted_agree}/{N} (base: {base_agree}/{N})"
