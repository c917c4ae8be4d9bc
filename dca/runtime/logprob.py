"""The log-probability a model (with or without an adapter) gives a response after a prompt.

A preference-trained adapter is its own verifier (V-STaR, DPO's implicit reward): a response it
has learned to prefer gains log-probability against the reference policy it started from. This
reads both on side contexts (dca/runtime/side.py), one per adapter setting, each keeping the
prompt's KV cache between the candidates of one question.
"""

from __future__ import annotations

import ctypes

import numpy as np

from dca.errors import GeneratorError
from dca.runtime.llama import LlamaRuntime
from dca.runtime.side import SideContext, side_context


def response_logprob(
    runtime: LlamaRuntime, prompt: str, response: str, *, adapter: str | None, end_of_turn: bool = False
) -> float:
    """Sum over ``response``'s tokens of log P(token | what precedes it), ``prompt`` first; the
    model with ``adapter`` (a loaded one's name) or the base alone (None). ``end_of_turn``: the
    end-of-turn token after the response counts too (as training scores it)."""
    import llama_cpp

    with runtime.lock:
        head = runtime.tokenize(prompt)
        tokens = runtime.tokenize(prompt + response)
        start = len(head)
        if tokens[:start] != head:  # a token merged across the boundary: keep the prompt's own split (as training)
            tokens = head + tokens[start:]
        if start == 0 or start >= len(tokens):
            raise GeneratorError("the response has no tokens of its own after the prompt")
        if end_of_turn:
            tokens = [*tokens, runtime.llm.token_eos()]
        slot = side_context(
            runtime,
            f"logprob:{adapter}",
            len(tokens) + 1,
            lambda n_ctx: SideContext(runtime, "log-probabilities", n_ctx, adapter),
        )
        n_vocab = llama_cpp.llama_vocab_n_tokens(llama_cpp.llama_model_get_vocab(runtime.llm._model.model))
        total = 0.0

        def read(position: int, index: int) -> None:
            nonlocal total
            if position + 1 >= len(tokens):
                return  # the last token's output predicts what follows the response
            pointer = llama_cpp.llama_get_logits_ith(slot.context.ctx, index)
            logits = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,))
            top = float(logits.max())
            log_z = top + float(np.log(np.exp(logits - top, dtype=np.float64).sum()))
            total += float(logits[tokens[position + 1]]) - log_z

        slot.evaluate(tokens, outputs_from=start - 1, read=read)
        return total
