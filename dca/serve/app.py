"""The HTTP app of ``dca serve``: OpenAI's /v1/models, /v1/chat/completions (streamed or not)
and /v1/embeddings, plus /health, over warm models.

This module imports FastAPI: import it only to make an app (``dca.serve.create_app`` does).

Every answer goes through the one pipeline (dca.api's Assistant, on the model's worker thread).
Safety: an API key checked in constant time when one is set, body size read up to a limit,
names (index, adapter) that are never paths, a timeout per request, and every error in
OpenAI's shape without a traceback.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException

from dca import __version__
from dca.config import Paths
from dca.errors import ConfigError, DcaError, IndexNotFoundError, RequestError
from dca.reasoning.events import AnswerText, Finished, Thinking, describe
from dca.runtime.generation import Generator
from dca.serve.config import ServeConfig, host_name, is_loopback
from dca.serve.schema import (
    chunk_body,
    completion_body,
    completion_id,
    dca_extra,
    error_body,
    finish_reason,
    parse_chat,
    parse_embeddings,
    usage_chunk,
)
from dca.serve.workers import ModelWorker, answer_work

log = logging.getLogger(__name__)


def create_app(
    config: ServeConfig,
    *,
    generators: dict[str, Generator],
    paths: Paths,
    embedder: Any = None,
) -> Any:
    """The FastAPI app serving ``generators`` (name -> loaded model; the first is the default)."""
    if not generators:
        raise ConfigError("dca serve needs at least one generator")
    workers = {
        name: ModelWorker(name, generator, paths=paths, max_queue=config.max_queue)
        for name, generator in generators.items()
    }
    embed_lock = asyncio.Lock()  # one embedding batch at a time, beside generation

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        yield
        for worker in workers.values():
            worker.close()

    app = FastAPI(title="dca", version=__version__, docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.workers = workers
    app.add_middleware(_Guard, config=config)

    def failure(exc: RequestError, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(error_body(str(exc), exc.kind, exc.param), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        return failure(exc)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(error_body(str(exc.detail), kind), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body("the request is malformed"), status_code=400)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body("internal error; see the server's log", "server_error"), status_code=500)

    async def read_json(request: Request) -> Any:
        body = bytearray()
        async for piece in request.stream():
            body += piece
            if len(body) > config.max_body_bytes:
                raise RequestError(
                    f"the request body is larger than this server takes ({config.max_body_bytes} bytes)", status=413
                )
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RequestError(f"the request body is not valid JSON ({exc})") from None
        except RecursionError:
            raise RequestError("the request body nests JSON too deeply for this server") from None

    def worker_for(model: str) -> ModelWorker:
        if model not in workers:
            raise RequestError(
                f"model {model!r} is not served here; use one of: {', '.join(workers)} (GET /v1/models)",
                status=404,
                kind="not_found_error",
                param="model",
            )
        return workers[model]

    @app.get("/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [_model_card(name, "generator") for name in workers]
        if embedder is not None:
            data.append(_model_card(embedder.name, "embedder"))
        return {"object": "list", "data": data}

    @app.get("/v1/models/{model_id:path}")
    async def model(model_id: str) -> dict[str, Any]:
        if model_id in workers:
            return _model_card(model_id, "generator")
        if embedder is not None and model_id == embedder.name:
            return _model_card(model_id, "embedder")
        raise RequestError(f"model {model_id!r} is not served here", status=404, kind="not_found_error", param="model")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> dict[str, Any]:
        body = await read_json(request)
        model_name, texts = parse_embeddings(body, config)
        if embedder is None or model_name != embedder.name:
            served = embedder.name if embedder is not None else "none"
            raise RequestError(
                f"model {model_name!r} is not an embedder served here (embedder: {served})", status=404, param="model"
            )
        async with embed_lock:
            # Four texts at a time keep torch on one thread (dca.knowledge.embedding), so the
            # cores stay with llama.cpp's decode of whatever is being generated meanwhile.
            vectors = []
            for start in range(0, len(texts), 4):
                vectors.extend(await asyncio.to_thread(embedder.embed, texts[start : start + 4]))
        tokens = sum(len(embedder.spans(t)) for t in texts)
        return {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": _encode(v, body.get("encoding_format"))}
                for i, v in enumerate(vectors)
            ],
            "model": embedder.name,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        chat_request = parse_chat(await read_json(request), config, default_index=config.index)
        worker = worker_for(chat_request.model)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + config.timeout_s
        work = answer_work(chat_request.question, chat_request.history, chat_request.index, chat_request.configs)
        try:
            job = worker.submit(work, loop)
        except RequestError as exc:
            if exc.status != 429:
                raise
            return failure(exc, headers={"Retry-After": str(worker.retry_after())})
        if chat_request.stream:
            return StreamingResponse(
                _stream(job, chat_request, deadline, request),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        watcher = asyncio.create_task(_watch_disconnect(request, job))
        try:
            answers: dict[int, Any] = {}
            async for choice, event in job.items(deadline):
                if isinstance(event, Finished):
                    answers[choice] = event.result
        except DcaError as exc:
            raise _as_request_error(exc) from None
        finally:
            watcher.cancel()
            job.cancel()
        return completion_body(completion_id(), chat_request.model, [answers[i] for i in sorted(answers)])

    async def _stream(job: Any, chat_request: Any, deadline: float, request: Request) -> AsyncIterator[str]:
        cid, created, model_name = completion_id(), int(time.time()), chat_request.model
        answers = []
        started: set[int] = set()
        streamed: dict[int, str] = {}
        try:
            async for choice, event in job.items(deadline):
                if choice not in started:
                    started.add(choice)
                    yield _sse(chunk_body(cid, model_name, created, choice, {"role": "assistant", "content": ""}))
                delta = _delta(event)
                if delta:
                    streamed[choice] = streamed.get(choice, "") + delta.get("content", "")
                    yield _sse(chunk_body(cid, model_name, created, choice, delta))
                if isinstance(event, Finished):
                    answer = event.result
                    answers.append(answer)
                    # Thinking strategies settle their answer at the end (a vote, a program's output):
                    # what was not streamed as content comes now, so the content is the answer's text.
                    sent = streamed.get(choice, "").strip()
                    rest = answer.text[len(sent) :]
                    if answer.text.startswith(sent) and rest.strip():
                        yield _sse(chunk_body(cid, model_name, created, choice, {"content": rest}))
                    yield _sse(
                        chunk_body(cid, model_name, created, choice, {}, finish_reason(answer), dca=dca_extra(answer))
                    )
            if chat_request.include_usage:
                yield _sse(usage_chunk(cid, model_name, created, answers))
            yield "data: [DONE]\n\n"
        except DcaError as exc:  # the status line is sent: the error goes in the stream
            error = _as_request_error(exc)
            yield _sse(error_body(str(error), error.kind, error.param))
            yield "data: [DONE]\n\n"
        finally:  # also when the client went away (the response task is cancelled)
            job.cancel()

    return app


class _Guard:
    """ASGI middleware: the number of requests in progress, the API key on /v1 and the declared
    body size, before any route runs."""

    def __init__(self, app: Any, *, config: ServeConfig) -> None:
        self.app = app
        self.config = config
        self.in_progress = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        problem = self._problem(scope["path"], headers)
        if problem is None and self.in_progress >= self.config.max_requests:
            message = f"the server is answering {self.in_progress} requests, its most; try again shortly"
            problem = 503, error_body(message, "server_error", code="overloaded"), [(b"retry-after", b"1")]
        if problem is None:
            self.in_progress += 1
            try:
                await self.app(scope, receive, send)
            finally:
                self.in_progress -= 1
            return
        status, body, extra = problem
        payload = json.dumps(body).encode()
        head = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": payload})

    def _problem(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, Any], list[Any]] | None:
        key = self.config.api_key
        if key is None and is_loopback(self.config.host):
            # Without a key, only this machine's own programs may call: a web page that rebinds
            # its name to 127.0.0.1 sends its own name as Host, and one on another site sends its
            # Origin. Both are refused (desktop apps send Host: localhost/127.0.0.1 and no web Origin).
            host = headers.get("host", "")
            if not is_loopback(host_name(host)):
                message = f"this server answers requests addressed to this machine only (Host: {host or 'none'})"
                return 403, error_body(message, code="forbidden_host"), []
            origin = headers.get("origin", "")
            if origin.startswith(("http://", "https://")) and not is_loopback(host_name(origin)):
                message = (
                    f"requests from web pages on other sites are refused (Origin: {origin}); "
                    "start the server with --api-key to serve them"
                )
                return 403, error_body(message, code="forbidden_origin"), []
        if path.startswith("/v1") and key is not None:
            given = headers.get("authorization", "")
            token = given[7:].strip() if given.lower().startswith("bearer ") else headers.get("x-api-key", "")
            if not hmac.compare_digest(token.encode(), key.encode()):
                message = "missing or wrong API key; send the header Authorization: Bearer KEY"
                return 401, error_body(message, code="invalid_api_key"), [(b"www-authenticate", b"Bearer")]
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.config.max_body_bytes):
            message = f"the request body is larger than this server takes ({self.config.max_body_bytes} bytes)"
            return 413, error_body(message), []
        return None


def _encode(vector: Any, encoding: str | None) -> Any:
    """A vector as a list of floats, or (OpenAI's base64) its little-endian float32 bytes."""
    if encoding == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()


def _model_card(name: str, role: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "dca", "dca": {"role": role}}


def _delta(event: Any) -> dict[str, Any] | None:
    """What a stream chunk carries for one event: thinking as reasoning_content, answer as content."""
    if isinstance(event, Thinking):
        return {"reasoning_content": event.text}
    if isinstance(event, AnswerText):
        return {"content": event.text}
    note = describe(event)
    return {"reasoning_content": f"\n[{note}]\n"} if note else None


def _sse(obj: dict[str, Any]) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _as_request_error(exc: DcaError) -> RequestError:
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, IndexNotFoundError):
        return RequestError(str(exc), status=404, kind="not_found_error", param="dca.index")
    return RequestError(str(exc))


async def _watch_disconnect(request: Any, job: Any) -> None:
    """Cancel ``job`` when the client of a non-streamed request goes away."""
    with contextlib.suppress(asyncio.CancelledError):
        while not await request.is_disconnected():
            await asyncio.sleep(0.25)
        job.cancel()
