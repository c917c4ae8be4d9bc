"""Hidden states: the model's final hidden state at the last token of a prompt.

A learned verifier (a linear probe) reads it to score a candidate solution. A second llama
context on the same weights runs with embeddings on and last-token pooling; it keeps the KV
cache of the previous prompt, so candidates that share a question re-evaluate only their own
tokens.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from dca.errors import GeneratorError
from dca.runtime.llama import LlamaRuntime, reusable_prefix


class _HiddenContext:
    def __init__(self, runtime: LlamaRuntime, n_ctx: int) -> None:
        import llama_cpp

        self.context = runtime.new_context(
            "hidden states", n_ctx=n_ctx, embeddings=True, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST
        )
        self.n_ctx = n_ctx
        self.n_batch = int(runtime.llm.context_params.n_batch)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.tokens: list[int] = []

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_batch_free(self.batch)
        self.context.close()


def _context_for(runtime: LlamaRuntime, n_tokens: int) -> _HiddenContext:
    cache: dict[str, Any] = runtime.__dict__.setdefault("_hidden", {})
    current = cache.get("ctx")
    if current is None or current.n_ctx < n_tokens:
        if current is not None:
            current.close()
        current = _HiddenContext(runtime, max(2048, -(-n_tokens // 1024) * 1024))
        cache["ctx"] = current
    return current


def hidden_state(runtime: LlamaRuntime, prompt: str) -> np.ndarray:
    """The final hidden state (after the last norm) at the last token of ``prompt`` (base
    weights, no adapter), as float32 of the model's embedding width."""
    import llama_cpp

    with runtime.lock:
        tokens = runtime.tokenize(prompt)
        if not tokens:
            raise GeneratorError("an empty prompt has no hidden state")
        slot = _context_for(runtime, len(tokens) + 1)
        ctx = slot.context.ctx
        runtime.apply_adapter(ctx, None, 1.0)
        memory = llama_cpp.llama_get_memory(ctx)
        common = reusable_prefix(slot.tokens, tokens)
        llama_cpp.llama_memory_seq_rm(memory, 0, common, -1)
        slot.tokens = tokens[:common]
        batch = slot.batch
        for start in range(common, len(tokens), slot.n_batch):
            chunk = tokens[start : start + slot.n_batch]
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = True  # last-token pooling computes every output anyway
            code = llama_cpp.llama_decode(ctx, batch)
            if code != 0:
                slot.tokens = []
                llama_cpp.llama_memory_clear(memory, True)
                raise GeneratorError(f"llama_decode failed with code {code} while reading a hidden state")
            slot.tokens += chunk
        pointer = llama_cpp.llama_get_embeddings_seq(ctx, 0)
        if not pointer:
            raise GeneratorError("llama.cpp returned no hidden state (does this model support embeddings?)")
        width = llama_cpp.llama_model_n_embd(runtime.llm._model.model)
        array = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(width,))
        return np.array(array, dtype=np.float32)
