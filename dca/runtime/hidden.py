"""Hidden states: the model's final hidden state at the last token of a prompt.

A learned verifier (a linear probe) reads it to score a candidate solution. A second llama
context on the same weights runs with embeddings on and last-token pooling; it keeps the KV
cache of the previous prompt, so candidates that share a question re-evaluate only their own
tokens.
"""

from __future__ import annotations

import numpy as np

from dca.errors import GeneratorError
from dca.runtime.llama import LlamaRuntime, hidden_vector
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
        return hidden_vector(
            runtime,
            llama_cpp.llama_get_embeddings_seq(slot.context.ctx, 0),
            "llama.cpp returned no hidden state (does this model support embeddings?)",
        )
