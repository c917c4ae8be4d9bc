"""Parallel sampling: N answers to one prompt decoded together, sharing the prompt's KV cache.

The prompt is evaluated once as sequence 0; ``llama_memory_seq_cp`` then tags the same
KV cells with sequences 1..N-1 (a unified KV cache: no copy). Every step decodes one
token for each unfinished sequence in a single llama.cpp batch. On a CPU, decoding is
bound by memory bandwidth (the weights are read once per step whatever the batch), so
N sequences per step cost far less than N separate runs. Self-consistency uses this.
"""

from __future__ import annotations

import ctypes
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from dca.errors import GeneratorError
from dca.runtime.generation import Completion, GenerationConfig, check_samples
from dca.runtime.sequence import TokenSequence

if TYPE_CHECKING:
    from dca.runtime.llama import LlamaRuntime


def sample_token(logits: np.ndarray, config: GenerationConfig, rng: np.random.Generator) -> int:
    """Greedy at temperature 0, else top-k, then top-p and min-p, from softmax(logits / T).

    >>> sample_token(np.array([0.0, 3.0, 1.0]), GenerationConfig(), np.random.default_rng(0))
    1
    """
    if config.temperature == 0:
        return int(np.argmax(logits))
    k = min(config.top_k, len(logits)) if config.top_k > 0 else len(logits)
    top = np.argpartition(logits, -k)[-k:]
    scaled = logits[top].astype(np.float64) / config.temperature
    probs = np.exp(scaled - scaled.max())
    probs /= probs.sum()
    order = np.argsort(-probs)
    top, probs = top[order], probs[order]
    keep = max(1, min(int(np.searchsorted(np.cumsum(probs), config.top_p)) + 1, len(probs)))
    top, probs = top[:keep], probs[:keep]
    if config.min_p > 0:
        mask = probs >= config.min_p * probs[0]
        top, probs = top[mask], probs[mask]
    return int(rng.choice(top, p=probs / probs.sum()))


class _ParallelContext:
    """A second llama context on the same model, with N sequence slots and a unified KV cache."""

    def __init__(self, runtime: LlamaRuntime, n_seq: int, n_ctx: int) -> None:
        import llama_cpp

        n_batch = max(runtime.config.n_batch, n_seq)
        self.context = runtime.new_context(
            f"{n_seq} parallel samples",
            n_ctx=n_ctx,
            n_batch=n_batch,
            n_ubatch=n_batch,
            n_seq_max=n_seq,
            kv_unified=True,
        )
        self.n_seq, self.n_ctx, self.n_batch = n_seq, n_ctx, n_batch
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, n_seq)

    def close(self) -> None:
        import llama_cpp

        llama_cpp.llama_batch_free(self.batch)
        self.context.close()

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> None:
        """Decode (token, position, sequence, wants_logits) entries in one batch."""
        import llama_cpp

        batch = self.batch
        batch.n_tokens = len(entries)
        for i, (token, pos, seq, logits) in enumerate(entries):
            batch.token[i] = token
            batch.pos[i] = pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq
            batch.logits[i] = logits
        code = llama_cpp.llama_decode(self.context.ctx, batch)
        if code != 0:
            raise GeneratorError(f"llama_decode failed with code {code} (the context may be too small)")

    def logits(self, index: int, n_vocab: int) -> np.ndarray:
        import llama_cpp

        pointer = llama_cpp.llama_get_logits_ith(self.context.ctx, index)
        return np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,))


def _context_for(runtime: LlamaRuntime, n_seq: int, n_ctx: int) -> _ParallelContext:
    cache: dict[str, Any] = runtime.__dict__.setdefault("_parallel", {})
    current = cache.get("ctx")
    if current is None or current.n_seq < n_seq or current.n_ctx < n_ctx:
        if current is not None:
            current.close()
        # Round up so nearby requests reuse the context instead of reallocating it.
        current = _ParallelContext(runtime, max(n_seq, 8), -(-n_ctx // 1024) * 1024)
        cache["ctx"] = current
    return current


def sample_parallel(runtime: LlamaRuntime, prompt: str, n: int, config: GenerationConfig) -> list[Completion]:
    """``n`` completions of ``prompt`` decoded as ``n`` sequences of one batch.

    With temperature 0 every sequence is the greedy answer; otherwise sequence ``s`` samples
    with its own generator seeded from (seed, s), so results are reproducible.
    """
    import llama_cpp

    check_samples(n)
    with runtime.lock:
        tokens = runtime.tokenize(prompt)
        need = len(tokens) + n * config.max_tokens + 8
        slot = _context_for(runtime, n, need)
        ctx = slot.context.ctx
        runtime.apply_adapter(ctx, config.adapter, config.adapter_scale)
        memory = llama_cpp.llama_get_memory(ctx)
        llama_cpp.llama_memory_clear(memory, True)
        n_vocab = runtime.llm.n_vocab()
        seed = runtime.config.seed if config.seed is None else config.seed
        rngs = [np.random.default_rng([seed, s]) for s in range(n)]
        started = time.perf_counter()
        for start in range(0, len(tokens), slot.n_batch):
            chunk = tokens[start : start + slot.n_batch]
            last = start + len(chunk) == len(tokens)
            slot.decode([(t, start + i, 0, last and i == len(chunk) - 1) for i, t in enumerate(chunk)])
        for s in range(1, n):
            llama_cpp.llama_memory_seq_cp(memory, 0, s, -1, -1)
        prompt_logits = slot.logits(-1, n_vocab)  # the last token of the last prompt batch
        first_done = time.perf_counter()
        completions = [Completion(prompt_tokens=len(tokens)) for _ in range(n)]
        sequences = [TokenSequence(runtime, config, completion, config.max_tokens) for completion in completions]
        pending = {s: sample_token(prompt_logits, config, rngs[s]) for s in range(n)}
        position = len(tokens)
        while pending:
            feed = [(s, token) for s, token in pending.items() if not sequences[s].accept(token)[1]]
            if not feed:
                break
            slot.decode([(token, position, s, True) for s, token in feed])
            pending = {s: sample_token(slot.logits(i, n_vocab), config, rngs[s]) for i, (s, _) in enumerate(feed)}
            position += 1
        ended = time.perf_counter()
        llama_cpp.llama_memory_clear(memory, True)
    for sequence, completion in zip(sequences, completions, strict=True):
        sequence.flush()
        completion.prompt_seconds = first_done - started
        completion.decode_seconds = ended - first_done
    return completions
