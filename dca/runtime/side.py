"""A side context: a second llama context on a loaded model's weights, for reading what the main
context does not keep (a hidden state, the log-probabilities of a given text).

Each one keeps the tokens it last evaluated, so a prompt that shares a prefix with the previous
one (candidates for the same question) evaluates only its own tokens. A side context carries
one adapter setting for its life: the KV cache it keeps was computed with those weights.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dca.errors import GeneratorError
from dca.runtime.llama import LlamaRuntime, reusable_prefix


class SideContext:
    """A second context with its own batch, KV cache and adapter."""

    def __init__(self, runtime: LlamaRuntime, purpose: str, n_ctx: int, adapter: str | None, **fields: Any) -> None:
        import llama_cpp

        self.runtime = runtime
        self.purpose = purpose
        self.context = runtime.new_context(purpose, n_ctx=n_ctx, **fields)
        runtime.apply_adapter(self.context.ctx, adapter, 1.0)
        self.n_ctx = n_ctx
        self.n_batch = int(runtime.llm.context_params.n_batch)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.tokens: list[int] = []

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_batch_free(self.batch)
        self.context.close()

    def evaluate(
        self, tokens: list[int], *, outputs_from: int = 0, read: Callable[[int, int], None] | None = None
    ) -> None:
        """Evaluate ``tokens``, keeping the prefix shared with the previous call; positions from
        ``outputs_from`` on produce outputs. With ``read``, every such position is evaluated
        (none is taken from the cache) and ``read(p, i)`` is called right after the batch that
        holds position ``p``, ``i`` being its index in that batch (for ``llama_get_logits_ith``).
        The caller holds the runtime's lock."""
        import llama_cpp

        ctx = self.context.ctx
        memory = llama_cpp.llama_get_memory(ctx)
        common = reusable_prefix(self.tokens, tokens)
        if read is not None:
            common = min(common, outputs_from)
        llama_cpp.llama_memory_seq_rm(memory, 0, common, -1)
        self.tokens = tokens[:common]
        batch = self.batch
        for start in range(common, len(tokens), self.n_batch):
            chunk = tokens[start : start + self.n_batch]
            batch.n_tokens = len(chunk)
            for i, token in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = start + i
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = 0
                batch.logits[i] = start + i >= outputs_from
            code = llama_cpp.llama_decode(ctx, batch)
            if code != 0:
                self.tokens = []
                llama_cpp.llama_memory_clear(memory, True)
                raise GeneratorError(f"llama_decode failed with code {code} while reading {self.purpose}")
            self.tokens += chunk
            for i in range(len(chunk)):
                if read is not None and start + i >= outputs_from:
                    read(start + i, i)


def side_context(runtime: LlamaRuntime, key: str, n_tokens: int, make: Callable[[int], SideContext]) -> SideContext:
    """The runtime's side context ``key``, made (again) by ``make(n_ctx)`` when it is missing or
    too small for ``n_tokens``."""
    cache: dict[str, SideContext] = runtime.__dict__.setdefault("_side", {})
    current = cache.get(key)
    if current is None or current.n_ctx < n_tokens:
        if current is not None:
            current.close()
        current = make(max(2048, -(-n_tokens // 1024) * 1024))
        cache[key] = current
    return current
