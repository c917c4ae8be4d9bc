"""The language model: a GGUF file run by llama-cpp-python, loaded lazily and once per process.

One ``LlamaRuntime`` owns one model and one context. Consecutive prompts that share a
prefix (system prompt, retrieved sources, the conversation so far) reuse the KV cache of
that prefix (llama-cpp-python's prefix match), so only the new suffix is evaluated.
LoRA adapters are loaded next to the base and chosen per request without reloading it.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import io
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dca.config import Paths
from dca.errors import ConfigError, GeneratorError, ModelNotFoundError
from dca.runtime.build import model_params, quiet_llama_log, read_build_info, use_extra_buffers
from dca.runtime.generation import CONFIDENCE_TOP, Completion, GenerationConfig, check_samples
from dca.runtime.sequence import TokenSequence

log = logging.getLogger(__name__)

_TESTED_LLAMA = "llama-cpp-python 0.3.36"


def physical_cores() -> int:
    """Physical CPU cores (llama.cpp gains nothing from hyper-threads), on Linux, macOS and Windows."""
    import psutil

    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


@dataclass(frozen=True, kw_only=True)
class RuntimeConfig:
    """How a model is loaded."""

    n_ctx: int = 4096  # context window in tokens (prompt + answer)
    n_threads: int = 0  # CPU threads; 0 = the number of physical cores
    n_gpu_layers: int = -1  # layers offloaded to a GPU; -1 = all when the build can offload, else none
    n_batch: int = 512  # prompt tokens evaluated per llama_decode call
    seed: int = 0  # default sampling seed
    vocab_only: bool = False  # load the tokenizer and chat template only (training data), no weights
    # llama.cpp's extra weight buffer types (AMX, repacked weights); None = on unless the build
    # reports AMX, whose matmul crashes on Q4_K weights (dca.runtime.build)
    extra_buffers: bool | None = None

    def __post_init__(self) -> None:
        if self.n_ctx < 256:
            raise ConfigError(f"n_ctx must be at least 256, got {self.n_ctx}")
        if self.n_threads < 0:
            raise ConfigError(f"n_threads must be 0 (auto) or positive, got {self.n_threads}")


_OPEN: weakref.WeakSet[LlamaRuntime] = weakref.WeakSet()


@atexit.register
def _close_open_runtimes() -> None:
    for runtime in list(_OPEN):
        runtime.close()


def reusable_prefix(cached: Iterable[int], tokens: list[int]) -> int:
    """How many leading ``tokens`` a context holding ``cached`` can keep: their common prefix,
    less the last token, which is evaluated again for its output.

    >>> reusable_prefix([1, 2, 3, 9], [1, 2, 3, 4]), reusable_prefix([1, 2], [1, 2])
    (3, 1)
    """
    common = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        common += 1
    return min(common, len(tokens) - 1)


class LlamaRuntime:
    """A loaded GGUF model. Thread-safe: requests run one at a time."""

    supports_adapters = True
    reads_hidden_states = True

    def __init__(self, model_path: Path, *, name: str, config: RuntimeConfig) -> None:
        from dca.models.gguf import read_gguf_info

        read_gguf_info(model_path)  # a clear error for a truncated or foreign file, before C code sees it
        import llama_cpp

        self.name = name
        self.path = model_path
        self.config = config
        self.n_threads = config.n_threads or physical_cores()
        build = read_build_info()
        if not build.has_cpu_backend and not config.vocab_only:
            raise GeneratorError(
                "llama.cpp loaded no CPU backend (its backend modules are missing: a build moved or half "
                "installed); rebuild it with `make rebuild-llama`"
            )
        self.extra_buffers = use_extra_buffers(config.extra_buffers, build)
        if not self.extra_buffers and config.extra_buffers is None:
            log.info("llama.cpp reports AMX: loading %s without extra weight buffers (AMX crash guard)", name)
        gpu_layers = config.n_gpu_layers
        if gpu_layers < 0:
            gpu_layers = -1 if llama_cpp.llama_supports_gpu_offload() else 0
        # A vocabulary alone has no training context, so llama.cpp warns that any context exceeds
        # it; its Python log callback prints that to sys.stderr whatever the log level (it resets
        # the level while loading). Nothing else is said there by a load that succeeds.
        hush = contextlib.redirect_stderr(io.StringIO()) if config.vocab_only else contextlib.nullcontext()
        try:
            with model_params(extra_buffers=self.extra_buffers), hush:
                self.llm = llama_cpp.Llama(
                    model_path=str(model_path),
                    n_ctx=config.n_ctx,
                    n_batch=config.n_batch,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    n_gpu_layers=gpu_layers,
                    vocab_only=config.vocab_only,
                    seed=config.seed,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise GeneratorError(f"could not load {model_path} ({exc}); check it with `dca doctor --deep`") from None
        except Exception as exc:  # llama-cpp-python compiles the chat template at load: jinja2 errors
            if not type(exc).__module__.startswith("jinja2"):
                raise
            raise GeneratorError(
                f"the chat template in {model_path.name} does not work ({type(exc).__name__}: {str(exc)[:120]}); "
                "use another GGUF of this model"
            ) from None
        if bool(self.llm.model_params.use_extra_bufts) != self.extra_buffers:
            self.llm.close()
            raise GeneratorError(
                "this llama-cpp-python does not take dca's setting for extra weight buffers (the AMX crash "
                f"guard); install the version dca is tested with ({_TESTED_LLAMA}) with `make rebuild-llama`"
            )
        self.n_ctx = self.llm.n_ctx()
        self.lock = threading.RLock()
        self._adapters: dict[str, Any] = {}  # name -> llama_adapter_lora_p
        self._active: tuple[str | None, float] = (None, 1.0)
        try:
            self._formatter = self._make_formatter()
        except GeneratorError:
            self.llm.close()  # free the model now, not at interpreter exit
            raise
        self._eog = self.llm._model.vocab
        _OPEN.add(self)

    def close(self) -> None:
        """Free the model now (also done for every open runtime when the interpreter exits,
        while llama_cpp can still free it: at teardown its functions are gone)."""
        _OPEN.discard(self)
        self.llm.close()

    @functools.cached_property
    def control_tokens(self) -> tuple[str, ...]:
        """The text of every control token of this model's vocabulary (<|im_start|>,
        <start_of_turn>, ...): quoted documents must not contain them verbatim."""
        import llama_cpp

        vocab = self.llm._model.vocab
        model = self.llm._model
        flags = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL | llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED
        found = set()
        for token in range(llama_cpp.llama_vocab_n_tokens(vocab)):
            if llama_cpp.llama_vocab_get_attr(vocab, token) & flags:
                text = model.token_get_text(token)
                if len(text) >= 3 and not text.isalnum():  # a marker, not a word a document may use
                    found.add(text)
        return tuple(sorted(found, key=len, reverse=True))

    # ---- prompts -----------------------------------------------------------------
    def _make_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            return None
        model = self.llm._model
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        probe = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
        try:  # a broken template fails here, at load, with one clear error (Jinja runs sandboxed)
            formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
            formatter(messages=probe)  # type: ignore[arg-type]
        except Exception as exc:
            raise GeneratorError(
                f"the chat template in {self.path.name} does not work ({type(exc).__name__}: {str(exc)[:120]}); "
                "use another GGUF of this model, or one whose template renders system and user turns"
            ) from None
        return formatter

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        """The model's own chat template applied to ``messages``, ready for the assistant's turn."""
        if self._formatter is None:
            return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        return str(self._formatter(messages=messages).prompt)

    def tokenize(self, prompt: str) -> list[int]:
        """Tokens of a templated prompt (special tokens of the template are parsed)."""
        model = self.llm._model
        bos = self.llm.token_bos()
        bos_text = model.token_get_text(bos) if bos != -1 else ""
        add_bos = model.add_bos_token() and not (bos_text and prompt.startswith(bos_text))
        return list(self.llm.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True))

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def token_bytes(self, token: int) -> bytes:
        """The bytes of one token (a character may span several tokens)."""
        return bytes(self.llm.detokenize([token]))

    def is_end_of_generation(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._eog, token))

    # ---- adapters ------------------------------------------------------------------
    @property
    def adapters(self) -> list[str]:
        return sorted(self._adapters)

    def load_adapter(self, name: str, path: Path) -> None:
        """Load a LoRA adapter GGUF next to the base model (no reload of the base)."""
        import llama_cpp

        if name in self._adapters:
            return
        if not path.is_file():
            raise GeneratorError(f"adapter file {path} does not exist")
        self._check_adapter(name, path)
        with self.lock, quiet_llama_log():
            handle = llama_cpp.llama_adapter_lora_init(self.llm._model.model, str(path).encode("utf-8"))
            if not handle:
                raise GeneratorError(
                    f"could not load adapter {path}: it must be a LoRA GGUF made for {self.name} "
                    f"({self.llm.metadata.get('general.architecture', '?')} architecture)"
                )
            self._adapters[name] = handle
            self.llm._stack.callback(llama_cpp.llama_adapter_lora_free, handle)

    def _check_adapter(self, name: str, path: Path) -> None:
        """Refuse an adapter made for another model, naming both (llama.cpp checks only the shapes)."""
        from dca.models.gguf import read_gguf_info

        info = read_gguf_info(path)
        meta = info.metadata
        if meta.get("general.type") != "adapter":
            raise GeneratorError(f"{path} is not a LoRA adapter (general.type is {meta.get('general.type')!r})")
        arch = str(self.llm.metadata.get("general.architecture", ""))
        if arch and info.architecture != arch:
            raise GeneratorError(
                f"adapter {name} is for the {info.architecture} architecture, but {self.name} is {arch}"
            )
        base = meta.get("dca.base_model")
        if base and base != self.name:
            raise GeneratorError(
                f"adapter {name} was trained on {base}, not on {self.name}; load it with --model {base}"
            )

    def new_context(self, purpose: str, **fields: Any) -> Any:
        """A second llama context on this model's weights (parallel samples, hidden states): the
        main context's parameters, so both compute alike, with ``fields`` changed."""
        import llama_cpp
        from llama_cpp._internals import LlamaContext

        params = llama_cpp.llama_context_params()
        ctypes.pointer(params)[0] = self.llm.context_params
        for field_name, value in fields.items():
            setattr(params, field_name, value)
        params.n_threads = params.n_threads_batch = self.n_threads
        try:
            return LlamaContext(model=self.llm._model, params=params, verbose=False)
        except ValueError as exc:
            raise GeneratorError(f"could not create a context for {purpose} ({exc})") from None

    def apply_adapter(self, ctx: Any, name: str | None, scale: float) -> None:
        """Set ``name`` (or none) on a llama context."""
        import llama_cpp

        if name is None:
            result = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            if name not in self._adapters:
                raise GeneratorError(f"adapter {name!r} is not loaded (loaded: {', '.join(self.adapters) or 'none'})")
            handles = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapters[name])
            scales = (ctypes.c_float * 1)(scale)
            result = llama_cpp.llama_set_adapters_lora(ctx, handles, 1, scales)
        if result != 0:
            raise GeneratorError(f"llama.cpp refused adapter {name!r} (code {result})")

    def _use_adapter(self, name: str | None, scale: float) -> None:
        if (name, scale) == self._active:
            return
        self.apply_adapter(self.llm._ctx.ctx, name, scale)
        # The cached KV was computed with the other weights: it must not be reused.
        self.llm.reset()
        self._active = (name, scale)

    # ---- generation -------------------------------------------------------------------
    def _cached_prefix(self, tokens: list[int]) -> int:
        return reusable_prefix(self.llm._input_ids[: self.llm.n_tokens], tokens)

    def stream(self, prompt: str, config: GenerationConfig, completion: Completion | None = None) -> Iterator[str]:
        """Yield the answer's text as it is generated; fills ``completion`` with counts and timings."""
        completion = completion if completion is not None else Completion()
        with self.lock:
            tokens = self.tokenize(prompt)
            if len(tokens) + 1 > self.n_ctx:
                raise GeneratorError(
                    f"the prompt has {len(tokens)} tokens but the context holds {self.n_ctx}; shorten it or raise n_ctx"
                )
            self._use_adapter(config.adapter, config.adapter_scale)
            completion.prompt_tokens = len(tokens)
            completion.cached_tokens = max(0, self._cached_prefix(tokens))
            budget = min(config.max_tokens, self.n_ctx - len(tokens))
            self.llm.set_seed(self.config.seed if config.seed is None else config.seed)
            sequence = TokenSequence(self, config, completion, budget)
            steps = _StepLogprobs() if config.logprobs else None
            started = time.perf_counter()
            first = None
            try:
                for token in self.llm.generate(
                    tokens,
                    temp=config.temperature,
                    top_p=config.top_p,
                    top_k=config.top_k,
                    min_p=config.min_p,
                    repeat_penalty=1.0,
                    logits_processor=steps.processors() if steps else None,
                ):
                    if first is None:
                        first = time.perf_counter()
                    if steps:
                        steps.record(token, completion)
                    piece, finished = sequence.accept(token)
                    if piece:
                        yield piece
                    if finished:
                        break
                rest = sequence.flush()
                if rest:
                    yield rest
            except GeneratorExit:
                completion.finish_reason = "interrupted"
                raise
            finally:
                ended = time.perf_counter()
                first = first or ended
                sequence.record()
                completion.prompt_seconds = first - started
                completion.decode_seconds = ended - first

    def sample(self, prompt: str, n: int, config: GenerationConfig) -> list[Completion]:
        """``n`` completions of ``prompt``: one streamed run (its KV cache is kept for a
        continuation), or ``n`` sequences decoded in one batch sharing the prompt's KV cache."""
        check_samples(n)
        if n == 1:
            completion = Completion()
            for _ in self.stream(prompt, config, completion):
                pass
            return [completion]
        from dca.runtime.sampling import sample_parallel

        return sample_parallel(self, prompt, n, config)

    def first_tokens(self, choices: Sequence[str]) -> list[int]:
        """The first token of each choice (what choice probabilities compare)."""
        first = []
        for choice in choices:
            ids = self.llm.tokenize(choice.encode("utf-8"), add_bos=False, special=False)
            if not ids:
                raise GeneratorError(f"choice {choice!r} has no tokens")
            first.append(ids[0])
        return first

    def choice_probabilities(self, prompt: str, choices: Sequence[str], config: GenerationConfig) -> list[float]:
        """Probability of each choice's first token right after ``prompt``, renormalized over the choices."""
        return self.choice_state(prompt, choices, config, hidden=False)[0]

    def choice_state(
        self,
        prompt: str,
        choices: Sequence[str],
        config: GenerationConfig,
        *,
        hidden: bool = True,
        at: Sequence[int] = (-1,),
    ) -> tuple[list[float], Any]:
        """:meth:`choice_probabilities`, and with ``hidden`` the final hidden states (after the
        last norm, float32, one row per position) at the prompt's token positions ``at`` (negative:
        from its end; -1 the last token), read from the same forward pass: embeddings are switched
        on in the main context for this call only, the cached prefix before the earliest position
        is reused, and the logits are the same (tested)."""
        import numpy as np

        first = self.first_tokens(choices)
        captured: list[np.ndarray] = []

        def capture(_ids: Any, scores: Any) -> Any:
            captured.append(np.array(scores, dtype=np.float64))
            return scores

        import llama_cpp

        states = None
        with self.lock:
            tokens = self.tokenize(prompt)
            positions = [p if p >= 0 else len(tokens) + p for p in at]
            if hidden and not all(0 <= p < len(tokens) for p in positions):
                raise GeneratorError(f"token positions {list(at)} are outside a prompt of {len(tokens)} tokens")
            self._use_adapter(config.adapter, config.adapter_scale)
            processors = llama_cpp.LogitsProcessorList([capture])
            ctx = self.llm._ctx.ctx
            if hidden:
                # Every position read must be evaluated now: the cache is used only before the first.
                self.llm.n_tokens = min(self.llm.n_tokens, min(positions))
                llama_cpp.llama_set_embeddings(ctx, True)
            try:
                for _ in self.llm.generate(tokens, temp=0.0, repeat_penalty=1.0, logits_processor=processors):
                    if hidden:
                        states = np.stack([_hidden_state_at(self, ctx, p - len(tokens)) for p in positions])
                    break  # the first token's logits are all that is needed
            finally:
                if hidden:
                    llama_cpp.llama_set_embeddings(ctx, False)
        logits = captured[0]
        picked = logits[first] - logits.max()
        weights = np.exp(picked)
        return [float(w) for w in weights / weights.sum()], states

    def prompt_state(self, prompt: str, config: GenerationConfig) -> Any:
        """The final hidden state (after the last norm, float32) at the last token of ``prompt``,
        read in the main context so that an answer generated next from the same prompt reuses
        its KV cache: the prompt is evaluated with embeddings off (the cached prefix kept), its
        last token with them on. It costs one token more than the answer alone."""
        import llama_cpp

        with self.lock:
            tokens = self.tokenize(prompt)
            if not tokens:
                raise GeneratorError("an empty prompt has no hidden state")
            if len(tokens) + 1 > self.n_ctx:
                raise GeneratorError(
                    f"the prompt has {len(tokens)} tokens but the context holds {self.n_ctx}; shorten it or raise n_ctx"
                )
            self._use_adapter(config.adapter, config.adapter_scale)
            self.llm.n_tokens = max(0, self._cached_prefix(tokens))
            if self.llm.n_tokens < len(tokens) - 1:
                self.llm.eval(tokens[self.llm.n_tokens : -1])
            ctx = self.llm._ctx.ctx
            llama_cpp.llama_set_embeddings(ctx, True)
            try:
                self.llm.eval(tokens[-1:])
                return _hidden_state_at(self, ctx, -1)
            finally:
                llama_cpp.llama_set_embeddings(ctx, False)

    def complete(
        self, prompt: str, config: GenerationConfig, on_text: Callable[[str], None] | None = None
    ) -> Completion:
        """Generate to the end; ``on_text`` receives each piece as it arrives."""
        completion = Completion()
        for piece in self.stream(prompt, config, completion):
            if on_text:
                on_text(piece)
        return completion


class _StepLogprobs:
    """A logits processor that reads each step's distribution (and changes nothing): the chosen
    token's log-probability and the step's confidence go into the completion."""

    def __init__(self) -> None:
        self.logprobs: Any = None
        self.confidence = 0.0

    def __call__(self, _ids: Any, scores: Any) -> Any:
        import numpy as np

        logits = np.asarray(scores, dtype=np.float64)
        top = logits.max()
        self.logprobs = logits - (top + np.log(np.exp(logits - top).sum()))
        best = np.partition(self.logprobs, -CONFIDENCE_TOP)[-CONFIDENCE_TOP:]
        self.confidence = float(-best.mean())
        return scores

    def processors(self) -> Any:
        import llama_cpp

        return llama_cpp.LogitsProcessorList([self])

    def record(self, token: int, completion: Completion) -> None:
        if self.logprobs is not None:
            completion.token_logprobs.append(float(self.logprobs[token]))
            completion.token_confidence.append(self.confidence)


_LOADED: dict[tuple[str, RuntimeConfig], LlamaRuntime] = {}
_LOAD_LOCK = threading.Lock()


def resolve_model(model: str | None, paths: Paths) -> tuple[str, Path]:
    """(name, path) of a catalog generator, a registered model, or a GGUF path."""
    from dca.models.catalog import Catalog
    from dca.models.verify import check_model

    if model is not None and not model.strip():
        raise ConfigError("--model is empty; give a model name (see `dca models list`) or leave it out")
    if model and (model.endswith(".gguf") or os.sep in model) and Path(model).expanduser().is_file():
        path = Path(model).expanduser().resolve()
        return path.stem, path
    catalog = Catalog.load(paths)
    entry = catalog.get(model) if model else catalog.default("generator")
    if entry.role != "generator":
        raise ConfigError(f"{entry.name} is an {entry.role}, not a generator; see `dca models list`")
    status = check_model(entry, paths)
    if not status.present:
        raise ModelNotFoundError(f"model {entry.name} is not on disk; run `dca pull {entry.name}`")
    if not status.verified:
        raise ModelNotFoundError(f"model {entry.name} failed verification ({status.detail})")
    return entry.name, entry.path(paths)


def load_runtime(
    model: str | None = None, *, paths: Paths | None = None, config: RuntimeConfig | None = None
) -> LlamaRuntime:
    """The runtime for ``model`` (default: the catalog's default generator), loaded once per process."""
    paths = paths or Paths.resolve()
    config = config or RuntimeConfig()
    name, path = resolve_model(model, paths)
    key = (str(path), config)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = LlamaRuntime(path, name=name, config=config)
        return _LOADED[key]


def _hidden_state_at(runtime: LlamaRuntime, ctx: Any, index: int) -> Any:
    """The hidden state of output ``index`` (negative: from the last) of the latest decode on
    ``ctx`` (embeddings on: every token it evaluated is an output)."""
    import llama_cpp

    return hidden_vector(
        runtime,
        llama_cpp.llama_get_embeddings_ith(ctx, index),
        f"llama.cpp has no hidden state for output {index} (outside the last batch evaluated?)",
    )


def hidden_vector(runtime: LlamaRuntime, pointer: Any, missing: str) -> Any:
    """A copy, as float32 of the model's embedding width, of the hidden state llama.cpp's
    ``pointer`` points at; a null pointer is a GeneratorError saying ``missing``."""
    import ctypes

    import llama_cpp
    import numpy as np

    if not pointer:
        raise GeneratorError(missing)
    width = llama_cpp.llama_model_n_embd(runtime.llm._model.model)
    array = np.ctypeslib.as_array(ctypes.cast(pointer, ctypes.POINTER(ctypes.c_float)), shape=(width,))
    return np.array(array, dtype=np.float32)
