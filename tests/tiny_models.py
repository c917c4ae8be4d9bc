"""A tiny randomly initialised qwen2 model, in torch and as a GGUF file llama.cpp loads.

Vocabulary: the 256 byte-level tokens of GPT-2 BPE, one merge ("a b" -> "ab") and an
end-of-text token. Weights are drawn large enough that greedy decoding has clear winners,
so llama.cpp (f32) and torch (f32) pick the same tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _byte_tokens() -> list[str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return [chr(c) for c in codes]


def tiny_qwen2(seed: int = 0) -> tuple[Any, list[str]]:
    """(torch Qwen2ForCausalLM in float32, its token list)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tokens = [*_byte_tokens(), "ab", "<|endoftext|>"]
    eos = len(tokens) - 1
    config = Qwen2Config(
        vocab_size=len(tokens),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).float().eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.fill_(1.0)
            else:
                parameter.normal_(0, 0.5 if parameter.dim() > 1 else 0.1)
    return model, tokens


def write_gguf(model: Any, tokens: list[str], path: Path, chat_template: str | None = None) -> Path:
    """The torch model as a qwen2 GGUF file (f32 tensors, a byte-level BPE vocabulary)."""
    import gguf
    import numpy as np

    config = model.config
    writer = gguf.GGUFWriter(str(path), "qwen2")
    writer.add_name("tiny qwen2 (random)")
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    rope = getattr(config, "rope_parameters", None) or {}
    writer.add_rope_freq_base(float(rope.get("rope_theta", 10000.0)))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_file_type(0)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * (len(tokens) - 1) + [3])
    writer.add_token_merges(["a b"])
    writer.add_bos_token_id(len(tokens) - 1)
    writer.add_eos_token_id(len(tokens) - 1)
    writer.add_add_bos_token(False)
    if chat_template is not None:
        writer.add_chat_template(chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, config.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), tensor.numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def tiny_runtime(folder: Path, n_ctx: int = 256) -> tuple[Any, Any]:
    """(a llama.cpp runtime named "tiny" over the tiny model written in ``folder``, the torch model)."""
    from dca.runtime.llama import LlamaRuntime, RuntimeConfig

    model, tokens = tiny_qwen2()
    path = write_gguf(model, tokens, folder / "tiny.gguf")
    return LlamaRuntime(path, name="tiny", config=RuntimeConfig(n_ctx=n_ctx)), model
