"""Hidden states: the model's final hidden state at the last token of a prompt.

A learned verifier (a linear probe) reads it to score a candidate solution. A second llama
context on the same weights runs with embeddings on and last-token pooling; it keeps the KV
cache of the previous prompt, so candidates that share a question re-evaluate only their own
tokens.
"""

from __future__ import annotations

import ctypes

import numpy as np

from dca.errors import GeneratorError
from dca.runtime.llama import LlamaRuntime
from dca.runtime.side import SideContext, side_context


def hidden_state(runtime: LlamaRuntime, prompt: str) -> np.ndarray:
    """The final hidden state (after the last norm) at the last token of ``prompt`` (base
    weights, no adapter), as float32 of the model's embedding width."""
    import llama_cpp

    with runtime.lock:
        tokens = runtime.tokenize(prompt)
        if not tokens:
            raise GeneratorError("an empty prompt has no hidden state")
        slot = side_context(
            runtime,
            "hidden",
            len(tokens) + 1,
            lambda n_ctx: SideContext(
                runtime,
                "a hidden state",
                n_ctx,
                None,
                embeddings=True,
                pooling_type=llama_cpp.LLAMA_POOLING_TYPE_LAST,
            ),
        )
        slot.evaluate(tokens)  # last-token pooling: every evaluated position is an output
        ctx = slot.context.ctx
        pointer = llama_cpp.llama_get_embeddings_seq(ctx, 0)
        if not pointer:
            raise GeneratorError("llama.cpp returned no hidden state (does this model support embeddings?)")
        width = llama_cpp.llama_model_n_embd(runtime.llm._model.model)
        array = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(width,))
        return np.array(array, dtype=np.float32)
