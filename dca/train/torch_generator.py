"""A ``Generator`` in torch, for collecting traces on a GPU (``dca train collect --device cuda``).

llama.cpp decodes the samples of one question in a batch on the CPU; on a GPU, torch decodes
them far faster. This generator runs the same GGUF base that training loads (dequantized by
transformers), with the same chat template and tokenizer as inference (a vocab-only llama.cpp
model), and ends each sequence through the runtime's ``TokenSequence``: end of turn, stop
strings and the token limit behave as in llama.cpp. So the reasoning code that collects
(programs run in the sandbox, thoughts, repairs, judging) runs unchanged on either.

Sampling is temperature, top-k, top-p and min-p as in ``GenerationConfig``; sample ``s`` of a
batch draws from its own torch generator seeded ``seed + s``. Greedy output can differ from
llama.cpp's in the last bits (bfloat16 against quantized weights), as the trained adapters
do; the numbers that count are measured with `dca eval` on llama.cpp.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dca.errors import GeneratorError
from dca.runtime.generation import Completion, GenerationConfig, check_samples
from dca.runtime.llama import LlamaRuntime, RuntimeConfig
from dca.runtime.sequence import TokenSequence

Request = tuple[str, int, GenerationConfig]  # (prompt, samples, config) of one sample/stream call


class _Batcher:
    """Gathers the requests of several threads into one decode.

    A thread that submits waits; the first waiting thread that finds no decode running leads:
    it waits until every working thread has a request in (or ``wait_s`` passed: a thread
    may be running a program), decodes them all at once and hands each its completions."""

    def __init__(self, run: Callable[[list[Request]], list[list[Completion]]], workers: int, *, wait_s: float) -> None:
        self.run = run
        self.workers = workers
        self.wait_s = wait_s
        self.cond = threading.Condition()
        self.pending: list[tuple[Request, dict[str, Any]]] = []
        self.leading = False

    def leave(self) -> None:
        with self.cond:
            self.workers -= 1
            self.cond.notify_all()

    def submit(self, request: Request) -> list[Completion]:
        slot: dict[str, Any] = {}
        with self.cond:
            self.pending.append((request, slot))
            self.cond.notify_all()
            while not slot and self.leading:
                self.cond.wait()
            if slot:
                return self._result(slot)
            self.leading = True
            self.cond.wait_for(lambda: len(self.pending) >= self.workers, timeout=self.wait_s)
            batch, self.pending = self.pending, []
        try:
            results = self.run([r for r, _ in batch])
            for (_, owner), completions in zip(batch, results, strict=True):
                owner["result"] = completions
        except BaseException as exc:  # every waiting thread gets the error, not a hang
            for _, owner in batch:
                owner["error"] = exc
        with self.cond:
            self.leading = False
            self.cond.notify_all()
        return self._result(slot)

    @staticmethod
    def _result(slot: dict[str, Any]) -> list[Completion]:
        if "error" in slot:
            raise slot["error"]
        return slot["result"]  # type: ignore[no-any-return]


class TorchGenerator:
    """The GGUF base (and its LoRA adapters) in torch on ``device``, as a ``Generator``."""

    supports_adapters = True
    reads_hidden_states = False

    def __init__(self, base_path: Path, *, name: str, device: str, dtype: str = "bfloat16", n_ctx: int = 4096) -> None:
        from dca.train.base import load_base

        self.name = name
        self.n_ctx = n_ctx
        self.device = device
        self.dtype = dtype
        self.base_path = base_path
        self.vocab = LlamaRuntime(base_path, name=name, config=RuntimeConfig(vocab_only=True))
        self.model: Any = load_base(base_path, dtype).to(device).eval()
        self.adapters: dict[str, Path] = {}
        self._batcher: _Batcher | None = None

    # ---- what the template and tokenizer say (llama.cpp's, as at inference) ----------------
    @property
    def control_tokens(self) -> tuple[str, ...]:
        return self.vocab.control_tokens

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.vocab.chat_prompt(messages)

    def tokenize(self, prompt: str) -> list[int]:
        return self.vocab.tokenize(prompt)

    def load_adapter(self, name: str, path: Path) -> None:
        """Load a LoRA GGUF as a peft adapter (one adapter per generator: collection samples from one)."""
        from peft import LoraConfig, get_peft_model

        from dca.train.base import architecture
        from dca.train.export import adapter_shape, import_lora

        if name in self.adapters:
            return
        if self.adapters:
            raise GeneratorError("the torch generator holds one adapter; collect from one adapter at a time")
        rank, alpha, targets = adapter_shape(path)
        self.model = get_peft_model(
            self.model, LoraConfig(r=rank, lora_alpha=int(alpha), target_modules=list(targets), lora_dropout=0.0)
        ).eval()
        import_lora(self.model, path, arch=architecture(self.base_path), base_model=self.name, alpha=alpha)
        self.adapters[name] = path

    # ---- generation --------------------------------------------------------------------
    def stream(self, prompt: str, config: GenerationConfig, completion: Completion | None = None) -> Iterator[str]:
        """The whole text at once when it is done (torch decodes on the device; nothing streams)."""
        completion = completion if completion is not None else Completion()
        result = self._generate(prompt, 1, config)[0]
        for key, value in result.__dict__.items():
            setattr(completion, key, value)
        if completion.text:
            yield completion.text

    def sample(self, prompt: str, n: int, config: GenerationConfig) -> list[Completion]:
        check_samples(n)
        return self._generate(prompt, n, config)

    def choice_probabilities(self, prompt: str, choices: Sequence[str], config: GenerationConfig) -> list[float]:
        import torch

        first = self.vocab.first_tokens(choices)
        tokens = torch.tensor([self.tokenize(prompt)], device=self.device)
        with torch.no_grad(), self._adapter(config.adapter):
            logits = self.model(input_ids=tokens).logits[0, -1].float()
        picked = torch.softmax(logits[first], dim=-1)
        return [float(p) for p in picked]

    def _adapter(self, name: str | None) -> Any:
        import contextlib

        if name is not None and name not in self.adapters:
            raise GeneratorError(f"adapter {name!r} is not loaded (loaded: {', '.join(self.adapters) or 'none'})")
        if self.adapters and name is None:
            return self.model.disable_adapter()
        return contextlib.nullcontext()

    def _generate(self, prompt: str, n: int, config: GenerationConfig) -> list[Completion]:
        if self._batcher is not None:
            return self._batcher.submit((prompt, n, config))
        return self._generate_many([(prompt, n, config)])[0]

    def _generate_many(self, requests: Sequence[Request]) -> list[list[Completion]]:
        """Every request's ``n`` sequences decoded together (one adapter a call: requests are
        grouped by theirs). Prompts of different lengths are padded on the left and masked, so
        each row sees only its own prompt; row ``s`` of a request draws from seed + s."""
        results: list[list[Completion]] = [[] for _ in requests]
        by_adapter: dict[str | None, list[int]] = {}
        for number, (_, _, config) in enumerate(requests):
            by_adapter.setdefault(config.adapter, []).append(number)
        for adapter, numbers in by_adapter.items():
            for number, completions in zip(numbers, self._decode([requests[i] for i in numbers], adapter), strict=True):
                results[number] = completions
        return results

    def _decode(self, requests: Sequence[Request], adapter: str | None) -> list[list[Completion]]:
        import time

        import torch

        rows: list[tuple[list[int], TokenSequence, Any, GenerationConfig]] = []  # tokens, sequence, rng, config
        grouped: list[list[Completion]] = []
        for prompt, n, config in requests:
            tokens = self.tokenize(prompt)
            budget = min(config.max_tokens, self.n_ctx - len(tokens))
            if budget < 1:
                raise GeneratorError(f"the prompt has {len(tokens)} tokens but the context holds {self.n_ctx}")
            completions = [Completion(prompt_tokens=len(tokens)) for _ in range(n)]
            seed = 0 if config.seed is None else config.seed
            for s, completion in enumerate(completions):
                rng = torch.Generator(device=self.device).manual_seed(seed + s)
                rows.append((tokens, TokenSequence(self.vocab, config, completion, budget), rng, config))
            grouped.append(completions)
        width = max(len(tokens) for tokens, *_ in rows)
        padded = any(len(tokens) < width for tokens, *_ in rows)
        alive = list(range(len(rows)))
        started = time.perf_counter()
        first: float | None = None
        with torch.no_grad(), self._adapter(adapter):
            ids = torch.tensor([[0] * (width - len(t)) + t for t, *_ in rows], device=self.device)
            extra: dict[str, Any] = {}
            if padded:  # left padding: masked, and positions counted from each row's first token
                mask = torch.tensor([[0] * (width - len(t)) + [1] * len(t) for t, *_ in rows], device=self.device)
                positions = (mask.cumsum(-1) - 1).clamp(min=0)
                extra = {"attention_mask": mask, "position_ids": positions}
            out = self.model(input_ids=ids, use_cache=True, **extra)
            past, logits = _cache_of(out), out.logits[:, -1].float()
            cache_kw = _cache_keyword(self.model)
            while True:
                if first is None:
                    first = time.perf_counter()
                picked = [self._pick(logits[row], rows[r][3], rows[r][2]) for row, r in enumerate(alive)]
                still = []
                for row, r in enumerate(alive):
                    _, finished = rows[r][1].accept(picked[row])
                    if not finished:
                        still.append(row)
                if not still:
                    break
                keep = torch.tensor(still, device=self.device)
                alive = [alive[row] for row in still]
                past = _select(past, keep)
                step = torch.tensor([[picked[row]] for row in still], device=self.device)
                if padded:
                    mask = torch.cat([mask.index_select(0, keep), mask.new_ones((len(still), 1))], dim=-1)
                    extra = {"attention_mask": mask, "position_ids": positions.index_select(0, keep)[:, -1:] + 1}
                    positions = extra["position_ids"]
                out = self.model(input_ids=step, use_cache=True, **{cache_kw: past}, **extra)
                past, logits = _cache_of(out), out.logits[:, -1].float()
        ended = time.perf_counter()
        for _, sequence, _, _ in rows:
            sequence.flush()
        for completions in grouped:
            for completion in completions:
                completion.prompt_seconds = (first or ended) - started
                completion.decode_seconds = ended - (first or ended)
        return grouped

    @contextmanager
    def batching(self, workers: int, *, wait_s: float = 0.05) -> Iterator[None]:
        """While open, ``sample`` and ``stream`` calls from up to ``workers`` threads are decoded
        together: a GPU decodes many questions' samples in about the time of one's."""
        self._batcher = _Batcher(self._generate_many, workers, wait_s=wait_s)
        try:
            yield
        finally:
            self._batcher = None

    def worker_done(self) -> None:
        """A batching thread has no more requests to make (the batch stops waiting for it)."""
        if self._batcher is not None:
            self._batcher.leave()

    @staticmethod
    def _pick(logits: Any, config: GenerationConfig, generator: Any) -> int:
        import torch

        if config.temperature <= 0:
            return int(torch.argmax(logits))
        scores = logits / config.temperature
        if config.top_k > 0:
            kth = torch.topk(scores, min(config.top_k, scores.numel())).values[-1]
            scores = torch.where(scores < kth, torch.full_like(scores, float("-inf")), scores)
        probs = torch.softmax(scores, dim=-1)
        if config.min_p > 0:
            probs = torch.where(probs < config.min_p * probs.max(), torch.zeros_like(probs), probs)
        if config.top_p < 1:
            ordered, order = torch.sort(probs, descending=True)
            cumulative = torch.cumsum(ordered, dim=-1)
            cut = cumulative - ordered > config.top_p  # keep the smallest head whose mass reaches top_p
            ordered[cut] = 0
            probs = torch.zeros_like(probs).scatter(0, order, ordered)
        return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


def _cache_keyword(model: Any) -> str:
    """transformers 5 names the KV cache ``cache`` (``past_key_values`` before, now deprecated)."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def _cache_of(out: Any) -> Any:
    cache = out.get("cache")  # not out.past_key_values first: transformers 5 warns on it
    return cache if cache is not None else out.past_key_values


def _select(past: Any, rows: Any) -> Any:
    """The KV cache of the sequences still alive (``rows`` of the batch)."""
    if hasattr(past, "batch_select_indices"):
        past.batch_select_indices(rows)
        return past
    return tuple(tuple(t.index_select(0, rows) for t in layer) for layer in past)
