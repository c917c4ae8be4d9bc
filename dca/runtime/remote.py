"""Generation on an OpenAI-compatible server (llama.cpp's llama-server or llama_cpp.server, vLLM,
Ollama, ...), through the official ``openai`` client: the ``openai`` backend.

dca writes its own prompts: the reasoning strategies continue the assistant's turn (a program
after its opening fence, thinking after a search result), which a chat endpoint cannot do. So
prompts are templated here, with the model's own chat template and tokenizer read from its GGUF
file (vocabulary only: no weights are loaded), and sent raw to the server's ``/v1/completions``.

What the server does not do is said once and plainly: LoRA adapters (the server holds the
weights), KV reuse (the server's own prompt cache decides), several samples in one request
(``n``; sampled one by one where a server ignores it), log-probabilities (needed by the grounded
check and the self-judge).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dca.errors import ConfigError, GeneratorError
from dca.runtime.generation import Completion, GenerationConfig, check_samples
from dca.runtime.llama import LlamaRuntime

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 300.0  # seconds a request may take (a long answer on a slow server)


def check_base_url(url: str) -> str:
    """``url`` if it is an http(s) URL without credentials in it, else a one-line error."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"--base-url must be an http:// or https:// URL such as http://127.0.0.1:8080/v1, got {url!r}"
        )
    if parts.username or parts.password:
        raise ConfigError("--base-url must not hold credentials; give the API key in DCA_API_KEY instead")
    return url.strip().rstrip("/")


class RemoteRuntime:
    """A ``Generator`` whose tokens come from an OpenAI-compatible server."""

    supports_adapters = False
    reads_hidden_states = False

    def __init__(
        self,
        vocab: LlamaRuntime,
        *,
        base_url: str,
        served_model: str | None = None,
        api_key: str | None = None,
        n_ctx: int = 4096,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        try:
            import openai
        except ImportError:
            raise GeneratorError(
                "the openai backend needs the openai package; install it with pip install 'dca[remote]'"
            ) from None
        self._openai = openai
        self.vocab = vocab
        self.name = vocab.name
        self.n_ctx = n_ctx
        self.base_url = check_base_url(base_url)
        self.timeout = timeout
        self.client = openai.OpenAI(base_url=self.base_url, api_key=api_key or "none", timeout=timeout, max_retries=0)
        self._said: set[str] = set()
        self._n_works: bool | None = None  # whether the server honours n (None: not yet seen)
        self.model = self._served_model(served_model)

    # ---- what the server serves ------------------------------------------------------------
    def _served_model(self, wanted: str | None) -> str:
        served = [m.id for m in self._call(lambda: self.client.models.list().data)]
        if wanted:
            if wanted not in served:
                raise GeneratorError(
                    f"the server at {self.base_url} does not serve {wanted!r} (it serves: "
                    f"{', '.join(served) or 'nothing'}); set served_model to one of them"
                )
            return wanted
        if len(served) == 1:
            return served[0]
        matching = [m for m in served if self.name in m]
        if len(matching) == 1:
            return matching[0]
        raise GeneratorError(
            f"the server at {self.base_url} serves {', '.join(served) or 'no model'}; say which one is "
            f"{self.name} with DCA_SERVED_MODEL (or served_model in settings.toml)"
        )

    def _call(self, request: Any) -> Any:
        """``request()``, its failures turned into one line each that names the fix."""
        import httpx

        openai = self._openai
        try:
            return request()
        except openai.APITimeoutError:
            raise GeneratorError(
                f"the server at {self.base_url} did not answer within {self.timeout:.0f} s; check that it is not "
                "overloaded, or raise the timeout (DCA_TIMEOUT)"
            ) from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            # httpx's or httpcore's own class (the client raises either): only a failed connect is "unreachable"
            if type(cause).__name__ not in ("ConnectError", "ConnectTimeout", "APIConnectionError"):
                raise GeneratorError(
                    f"the connection to the server at {self.base_url} broke mid-answer ({type(cause).__name__}); "
                    "check that the server is still running"
                ) from None
            raise GeneratorError(
                f"cannot reach the model server at {self.base_url} ({type(cause).__name__}); start it, or fix "
                "--base-url (DCA_BASE_URL)"
            ) from None
        except openai.AuthenticationError:
            raise GeneratorError(
                f"the server at {self.base_url} refused the API key (401); set the right one in DCA_API_KEY"
            ) from None
        except openai.NotFoundError as exc:
            raise GeneratorError(
                f"the server at {self.base_url} answered 404 ({_message(exc)}); check --base-url (it usually "
                "ends in /v1) and the served model's name"
            ) from None
        except openai.APIStatusError as exc:
            raise GeneratorError(f"the server at {self.base_url} answered {exc.status_code}: {_message(exc)}") from None
        except openai.APIError as exc:
            raise GeneratorError(f"the server at {self.base_url} failed: {_message(exc)}") from None
        except httpx.HTTPError as exc:  # the connection broke while an answer streamed
            raise GeneratorError(
                f"the connection to the server at {self.base_url} broke mid-answer ({type(exc).__name__}); "
                "check that the server is still running"
            ) from None
        except ValueError as exc:  # json.JSONDecodeError: a 200 whose body is not the API's JSON
            raise self._not_the_api(f"its answer is not JSON: {exc}") from None
        except (AttributeError, TypeError, KeyError) as exc:  # the SDK read a body that is not the API's shape
            log.debug("unexpected answer from %s", self.base_url, exc_info=True)
            raise self._not_the_api(f"its answer is not in the API's shape: {type(exc).__name__}") from None

    def _not_the_api(self, what: str) -> GeneratorError:
        return GeneratorError(
            f"the server at {self.base_url} does not answer as an OpenAI-compatible API ({what}); check --base-url "
            "(it usually ends in /v1) and that the server there is a model server"
        )

    def say_once(self, key: str, text: str) -> None:
        """Log ``text`` the first time ``key`` comes up in this process."""
        if key not in self._said:
            self._said.add(key)
            log.warning("%s", text)

    # ---- prompts (the model's own template and tokenizer, read locally) ---------------------
    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return self.vocab.chat_prompt(messages)

    def tokenize(self, prompt: str) -> list[int]:
        return self.vocab.tokenize(prompt)

    def count_tokens(self, text: str) -> int:
        return self.vocab.count_tokens(text)

    @property
    def control_tokens(self) -> tuple[str, ...]:
        return self.vocab.control_tokens

    # ---- adapters and side contexts: not on a server ------------------------------------------
    @property
    def adapters(self) -> list[str]:
        return []

    def load_adapter(self, name: str, path: Path) -> None:
        raise GeneratorError(
            f"adapter {name} cannot run on the openai backend: the server at {self.base_url} holds the weights; "
            "serve the adapter there (llama-server --lora FILE), answer with --adapter none, or use --backend local"
        )

    def new_context(self, purpose: str, **fields: Any) -> Any:
        raise GeneratorError(
            f"{purpose} needs the model's weights in this process (a learned verifier reads hidden states "
            "and log-probabilities); use --backend local for it"
        )

    # ---- generation ------------------------------------------------------------------------------
    def _request(self, prompt: str, config: GenerationConfig) -> tuple[dict[str, Any], int]:
        if config.adapter is not None:
            self.load_adapter(config.adapter, Path(config.adapter))
        tokens = self.tokenize(prompt)
        if len(tokens) + 1 > self.n_ctx:
            raise GeneratorError(
                f"the prompt has {len(tokens)} tokens but the context holds {self.n_ctx}; shorten it or raise n_ctx"
            )
        # sampling as the local backend does it (llama.cpp servers default to a repeat penalty of 1.1)
        extra: dict[str, Any] = {"top_k": config.top_k, "min_p": config.min_p, "repeat_penalty": 1.0}
        if config.ignore_eos:
            extra["ignore_eos"] = True
        request: dict[str, Any] = {
            "model": self.model,
            "prompt": prompt,
            "max_tokens": min(config.max_tokens, self.n_ctx - len(tokens)),
            "temperature": config.temperature,
            "top_p": config.top_p,
            "seed": config.seed if config.seed is not None else 0,
            "extra_body": extra,
        }
        if config.stop:
            request["stop"] = list(config.stop)
        return request, len(tokens)

    def stream(self, prompt: str, config: GenerationConfig, completion: Completion | None = None) -> Iterator[str]:
        """Yield the answer's text as the server sends it; fills ``completion`` (the server reports
        no cached tokens, so none are counted)."""
        completion = completion if completion is not None else Completion()
        request, prompt_tokens = self._request(prompt, config)
        completion.prompt_tokens = prompt_tokens
        started = time.perf_counter()
        first = None
        pieces: list[str] = []
        response = self._call(lambda: self.client.completions.create(stream=True, **request))
        try:
            chunks = iter(response)
            while True:
                chunk = self._call(lambda: next(chunks, None))
                if chunk is None:
                    break
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                if choice.text:
                    first = first or time.perf_counter()
                    pieces.append(choice.text)
                    yield choice.text
                if choice.finish_reason:
                    completion.finish_reason = "length" if choice.finish_reason == "length" else "stop"
            if not completion.finish_reason:
                raise GeneratorError(
                    f"the server at {self.base_url} ended the answer without saying why (it stopped mid-stream); "
                    "check its log"
                )
        except GeneratorExit:
            completion.finish_reason = "interrupted"
            raise
        finally:
            response.close()
            ended = time.perf_counter()
            first = first or ended
            completion.text = "".join(pieces)
            completion.completion_tokens = self.count_tokens(completion.text) if completion.text else 0
            completion.prompt_seconds = first - started
            completion.decode_seconds = ended - first

    def complete(self, prompt: str, config: GenerationConfig) -> Completion:
        """Generate to the end."""
        completion = Completion()
        for _ in self.stream(prompt, config, completion):
            pass
        return completion

    def sample(self, prompt: str, n: int, config: GenerationConfig) -> list[Completion]:
        """``n`` completions: one request with ``n`` where the server honours it, else one request
        per sample (sample ``s`` with seed ``config.seed + s``)."""
        from dataclasses import replace

        check_samples(n)
        if n == 1:
            return [self.complete(prompt, config)]
        seed = config.seed if config.seed is not None else 0
        done: list[Completion] = []
        if self._n_works is not False:
            request, prompt_tokens = self._request(prompt, config)
            started = time.perf_counter()
            response = self._call(lambda: self.client.completions.create(n=n, **request))
            seconds = time.perf_counter() - started
            for choice in response.choices:
                text = choice.text or ""
                done.append(
                    Completion(
                        text=text,
                        finish_reason="length" if choice.finish_reason == "length" else "stop",
                        prompt_tokens=prompt_tokens,
                        completion_tokens=self.count_tokens(text) if text else 0,
                        decode_seconds=seconds / max(1, len(response.choices)),
                    )
                )
            self._n_works = len(done) >= n
            if not self._n_works:
                self.say_once(
                    "n",
                    f"the server at {self.base_url} returns one sample per request (it ignores n): "
                    "samples are requested one at a time",
                )
        for s in range(len(done), n):
            done.append(self.complete(prompt, replace(config, seed=seed + s)))
        return done[:n]

    def choice_probabilities(self, prompt: str, choices: Sequence[str], config: GenerationConfig) -> list[float]:
        """Probability of each choice's first token after ``prompt``, from the server's top
        log-probabilities of one generated token (renormalized over the choices)."""
        import math

        first = [self.vocab.token_bytes(t).decode("utf-8", "replace") for t in self.vocab.first_tokens(choices)]
        request, _ = self._request(prompt, GenerationConfig(max_tokens=1, temperature=0.0, adapter=config.adapter))
        response = self._call(lambda: self.client.completions.create(logprobs=5, **request))
        logprobs = response.choices[0].logprobs if response.choices else None
        top = (logprobs.top_logprobs or [None])[0] if logprobs is not None else None
        if not top:
            raise GeneratorError(
                f"the server at {self.base_url} returns no log-probabilities, which this needs (the grounded check, "
                "the self-judge); use a server that does (llama-server, vLLM) or --backend local"
            )
        found = [top.get(text) for text in first]
        if all(value is None for value in found):
            return [1.0 / len(choices)] * len(choices)  # none of the choices among the likeliest tokens
        floor = min(v for v in found if v is not None) - 10.0  # a choice outside the top: far less likely
        weights = [math.exp(v if v is not None else floor) for v in found]
        total = sum(weights)
        return [w / total for w in weights]


def _message(exc: Any) -> str:
    """The server's own words for a failed request, on one line."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        detail = error.get("message") if isinstance(error, dict) else body.get("message") or body.get("detail")
        if detail:
            return " ".join(str(detail).split())[:200]
    return " ".join(str(getattr(exc, "message", exc)).split())[:200]


_LOADED: dict[tuple[Any, ...], RemoteRuntime] = {}
_LOAD_LOCK = threading.Lock()


def load_generator(model: str | None = None, *, paths: Any = None, config: Any = None) -> Any:
    """The generator for ``model`` on the configured backend (the ``backend`` setting): llama.cpp
    in this process, or an OpenAI-compatible server prompted with the model's own template.
    Loaded once per process."""
    from dca.config import Paths
    from dca.runtime.llama import RuntimeConfig, load_runtime
    from dca.settings import load_settings

    paths = paths or Paths.resolve()
    config = config or RuntimeConfig()
    chosen = load_settings(paths)
    if chosen["backend"] == "local":
        return load_runtime(model, paths=paths, config=config)
    if not chosen["base_url"]:
        raise ConfigError("the openai backend needs the server's URL: --base-url URL (or DCA_BASE_URL)")
    base_url = check_base_url(chosen["base_url"])
    vocab = load_runtime(model, paths=paths, config=RuntimeConfig(vocab_only=True, n_ctx=config.n_ctx))
    key = (vocab.name, base_url, chosen["served_model"], chosen["api_key"], config.n_ctx, chosen["timeout"])
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = RemoteRuntime(
                vocab,
                base_url=base_url,
                served_model=chosen["served_model"],
                api_key=chosen["api_key"],
                n_ctx=config.n_ctx,
                timeout=float(chosen["timeout"]),
            )
        return _LOADED[key]
