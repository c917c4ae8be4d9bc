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

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dca.errors import GeneratorError
from dca.runtime.generation import Completion, GenerationConfig, check_samples
from dca.runtime.llama import LlamaRuntime, RuntimeConfig
from dca.runtime.sequence import TokenSequence


class TorchGenerator:
    """The GGUF base (and its LoRA adapters) in torch on ``device``, as a ``Generator``."""

    def __init__(self, base_path: Path, *, name: str, device: str, dtype: str = "bfloat16", n_ctx: int = 4096) -> None:
        from dca.train.sft import _load_base

        self.name = name
        self.n_ctx = n_ctx
        self.device = device
        self.dtype = dtype
        self.base_path = base_path
        self.vocab = LlamaRuntime(base_path, name=name, config=RuntimeConfig(vocab_only=True))
        self.model: Any = _load_base(base_path, dtype).to(device).eval()
        self.adapters: dict[str, Path] = {}

    # ---- what the template and tokenizer say (llama.cpp's, as at inference) ----------------
    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.vocab.chat_prompt(messages)

    def tokenize(self, prompt: str) -> list[int]:
        return self.vocab.tokenize(prompt)

    def load_adapter(self, name: str, path: Path) -> None:
        """Load a LoRA GGUF as a peft adapter (one adapter per generator: collection samples from one)."""
        from peft import LoraConfig, get_peft_model

        from dca.train.export import adapter_shape, import_lora
        from dca.train.sft import _architecture

        if name in self.adapters:
            return
        if self.adapters:
            raise GeneratorError("the torch generator holds one adapter; collect from one adapter at a time")
        rank, alpha, targets = adapter_shape(path)
        self.model = get_peft_model(
            self.model, LoraConfig(r=rank, lora_alpha=int(alpha), target_modules=list(targets), lora_dropout=0.0)
        ).eval()
        import_lora(self.model, path, arch=_architecture(self.base_path), base_model=self.name, alpha=alpha)
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

        first = []
        for choice in choices:
            ids = self.vocab.llm.tokenize(choice.encode("utf-8"), add_bos=False, special=False)
            if not ids:
                raise GeneratorError(f"choice {choice!r} has no tokens")
            first.append(ids[0])
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
        import time

        import torch

        tokens = self.tokenize(prompt)
        budget = min(config.max_tokens, self.n_ctx - len(tokens))
        if budget < 1:
            raise GeneratorError(f"the prompt has {len(tokens)} tokens but the context holds {self.n_ctx}")
        completions = [Completion(prompt_tokens=len(tokens)) for _ in range(n)]
        sequences = [TokenSequence(self.vocab, config, c, budget) for c in completions]
        seed = 0 if config.seed is None else config.seed
        generators = [torch.Generator(device=self.device).manual_seed(seed + s) for s in range(n)]
        alive = list(range(n))
        started = time.perf_counter()
        first: float | None = None
        with torch.no_grad(), self._adapter(config.adapter):
            ids = torch.tensor([tokens] * n, device=self.device)
            out = self.model(input_ids=ids, use_cache=True)
            past, logits = _cache_of(out), out.logits[:, -1].float()
            cache_kw = _cache_keyword(self.model)
            for _ in range(budget):
                if first is None:
                    first = time.perf_counter()
                picked = [self._pick(logits[row], config, generators[s]) for row, s in enumerate(alive)]
                still = []
                for row, s in enumerate(alive):
                    _, finished = sequences[s].accept(picked[row])
                    if not finished:
                        still.append(row)
                if not still:
                    break
                keep = torch.tensor(still, device=self.device)
                alive = [alive[row] for row in still]
                past = _select(past, keep)
                step = torch.tensor([[picked[row]] for row in still], device=self.device)
                out = self.model(input_ids=step, use_cache=True, **{cache_kw: past})
                past, logits = _cache_of(out), out.logits[:, -1].float()
        ended = time.perf_counter()
        for sequence, completion in zip(sequences, completions, strict=True):
            sequence.flush()
            completion.prompt_seconds = (first or ended) - started
            completion.decode_seconds = ended - (first or ended)
        return completions

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
