"""The OpenAI request and response shapes: a chat request parsed into dca's configs, and
answers written back as completions, stream chunks, errors and usage.

Parsing is by hand rather than through a schema library so that every bad field is answered
in OpenAI's error shape with a sentence that names the field and says what to send.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from dca.errors import ConfigError, RequestError
from dca.options import declared, with_options
from dca.serve.config import ServeConfig

if TYPE_CHECKING:
    from dca.pipeline import Answer, AskConfig

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_SYSTEM_ROLES = ("system", "developer")
# Fields of OpenAI's chat request that dca accepts and ignores (they change nothing it can honour).
_IGNORED = {"frequency_penalty", "presence_penalty", "logit_bias", "user", "store", "metadata", "service_tier"}


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """A chat completion request, checked and turned into what the pipeline takes."""

    model: str
    question: str  # the last user message
    history: list[dict[str, str]]  # the user and assistant turns before it
    index: str | None  # knowledge index to answer from; None: closed-book
    configs: list[AskConfig]  # one per choice (n), differing only in their seed
    stream: bool
    include_usage: bool  # stream_options.include_usage: a last chunk with the usage


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None, code: str | None = None):
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def check_name(value: Any, param: str) -> str:
    """A plain name (index, adapter): never a path, so no request reaches files outside DCA_HOME."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value) or ".." in value or value.endswith(".gguf"):
        raise RequestError(
            f"{param} must be a plain name (letters, digits, '.', '_', '-'), not a path; got {value!r}", param=param
        )
    return value


def _typed(body: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is not bool and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise RequestError(f"{key} must be {what}, got {value!r}", param=key)
    if not isinstance(value, kind):
        raise RequestError(f"{key} must be {what}, got {value!r}", param=key)
    return value


def _text(content: Any, where: str) -> str:
    """A message's content: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestError(f"{where}: only text content is supported, got a {kind!r} part", param="messages")
            texts.append(part["text"])
        return "\n".join(texts)
    raise RequestError(f"{where}: content must be a string or a list of text parts", param="messages")


def _messages(body: dict[str, Any], limits: ServeConfig) -> tuple[str, list[dict[str, str]], str | None]:
    """(question, history, system text) from ``messages``."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("messages must be a non-empty list of {role, content} objects", param="messages")
    if len(messages) > limits.max_messages:
        raise RequestError(
            f"{len(messages)} messages is more than this server takes ({limits.max_messages}); drop old turns",
            param="messages",
        )
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise RequestError(f"{where} must be an object with role and content", param="messages")
        role = message.get("role")
        if role in _SYSTEM_ROLES:
            system.append(_text(message.get("content"), where))
        elif role in ("user", "assistant"):
            if message.get("tool_calls") or message.get("function_call"):
                raise RequestError(f"{where}: tool calls are not supported", param="messages")
            turns.append({"role": role, "content": _text(message.get("content"), where)})
        else:
            raise RequestError(
                f"{where}: role {role!r} is not supported; use system, developer, user or assistant", param="messages"
            )
    if not turns or turns[-1]["role"] != "user":
        raise RequestError("the last message (after any system messages) must be the user's", param="messages")
    question = turns[-1]["content"]
    if not question.strip():
        raise RequestError("the last user message is empty; ask something", param="messages")
    return question, turns[:-1], "\n\n".join(system) if system else None


def _stop(body: dict[str, Any]) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise RequestError("stop must be a non-empty string or a list of at most 4 of them", param="stop")
    return tuple(stops)


def _number(body: dict[str, Any], key: str, low: float, high: float, *, integer: bool = False) -> Any:
    value = _typed(body, key, int if integer else (int, float), "an integer" if integer else "a number")
    if value is not None and not low <= value <= high:
        raise RequestError(f"{key} must be between {low:g} and {high:g}, got {value}", param=key)
    return value


def parse_chat(body: Any, limits: ServeConfig, *, default_index: str | None) -> ChatRequest:
    """Check a /v1/chat/completions body and turn it into a ``ChatRequest``."""
    from dca.pipeline import AskConfig
    from dca.reasoning.config import EFFORTS, ReasoningConfig, effort_config

    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    if body.get("tools") or body.get("functions"):
        raise RequestError("tools and functions are not supported by this server", param="tools")
    if body.get("logprobs") or body.get("top_logprobs"):
        # a client that asks for them reads them: refused, not answered with logprobs null
        raise RequestError(
            "logprobs are not supported by this server; leave logprobs and top_logprobs out", param="logprobs"
        )
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") not in (None, "text"):
        raise RequestError("only the text response_format is supported", param="response_format")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model is required: one of the ids GET /v1/models lists", param="model")
    question, history, system = _messages(body, limits)
    given, index_given, index_value = _dca_options(body.get("dca") or {}, limits)
    index = index_value if index_given else default_index
    if given.pop("retrieval", True) is False:
        index = None
    max_tokens = _number(body, "max_completion_tokens", 1, limits.max_tokens, integer=True)
    max_tokens = max_tokens or _number(body, "max_tokens", 1, limits.max_tokens, integer=True)
    temperature = _number(body, "temperature", 0, 2)
    top_p = _number(body, "top_p", 0, 1)
    seed = _number(body, "seed", -(2**63), 2**63 - 1, integer=True)
    n = _number(body, "n", 1, limits.max_choices, integer=True) or 1
    stream = _typed(body, "stream", bool, "true or false") or False
    options = _typed(body, "stream_options", dict, "an object") or {}

    # Reasoning: the dca object's strategy wins, then reasoning_effort (or reasoning.effort).
    effort = body.get("reasoning_effort")
    reasoning_obj = _typed(body, "reasoning", dict, "an object") or {}
    effort = effort if effort is not None else reasoning_obj.get("effort")
    if effort is not None and effort not in EFFORTS:
        raise RequestError(
            f"reasoning_effort must be one of {', '.join(EFFORTS)}; got {effort!r}", param="reasoning_effort"
        )
    if "budget" not in given and reasoning_obj.get("max_tokens") is not None:
        given["budget"] = _bounded_int(reasoning_obj["max_tokens"], "dca.budget", limits.max_tokens)
    try:
        reasoning = effort_config(effort, retrieval=index is not None) if effort else ReasoningConfig()
        if "strategy" in given:
            reasoning = reasoning.named(given.pop("strategy"))  # as `dca ask --strategy`
        elif "budget" in given and not reasoning.thinks:
            # a budget alone asks for thinking: the measured default, or a thought when that is direct
            reasoning = effort_config("low", retrieval=index is not None)
            reasoning = reasoning if reasoning.thinks else ReasoningConfig(strategy="cot")
        if system is not None and index is not None:
            # the grounding rules (cite sources, say when they do not answer) stay; the client's text follows
            from dca.answer import SYSTEM_GROUNDED

            system = f"{SYSTEM_GROUNDED}\n\n{system}"
        request = AskConfig(
            retrieval=index is not None,
            max_tokens=max_tokens or 512,
            temperature=0.0 if temperature is None else float(temperature),
            top_p=0.95 if top_p is None or top_p == 0 else float(top_p),
            stop=_stop(body),
            seed=seed,
            system=system,
            reasoning=reasoning,
        )
        base = with_options(request, given, "serve")  # k: `dca ask`'s default unless given
    except ConfigError as exc:
        raise RequestError(str(exc), param="dca") from None
    first = seed if seed is not None else (random.randrange(2**31) if n > 1 else None)
    configs = [base if first is None else replace(base, seed=first + i) for i in range(n)]
    return ChatRequest(
        model=model,
        question=question,
        history=history,
        index=index,
        configs=configs,
        stream=bool(stream),
        include_usage=bool(options.get("include_usage")),
    )


def _dca_options(extra: Any, limits: ServeConfig) -> tuple[dict[str, Any], bool, str | None]:
    """The request's ``dca`` object: the answer options the server takes (those declared for
    "serve", dca/options.py) typed and bounded, and the index (given or not, and its name)."""
    from dca.askconfig import AskConfig

    if not isinstance(extra, dict):
        raise RequestError("dca must be an object of dca's options (index, k, strategy, ...)", param="dca")
    items = {item.name: item for item in declared(AskConfig, "serve")}
    unknown = sorted(set(extra) - {"index", *items})
    if unknown:
        raise RequestError(
            f"unknown dca option {unknown[0]!r}; use one of: index, {', '.join(items)}", param=f"dca.{unknown[0]}"
        )
    index = None if extra.get("index") is None else check_name(extra["index"], "dca.index")
    highest = {"k": 50, "samples": limits.max_choices, "budget": limits.max_tokens}
    given: dict[str, Any] = {}
    for name, value in extra.items():
        if name == "index" or value is None:  # null: not given, as before
            continue
        param, item = f"dca.{name}", items[name]
        if item.kind is int:
            given[name] = _bounded_int(value, param, highest.get(name, 2**31))
        elif item.kind is bool:
            given[name] = _typed(extra, name, bool, "true or false")
        elif item.spec.choices:  # checked by the config, with the words it takes
            given[name] = _typed(extra, name, str, "a string")
        else:
            given[name] = check_name(value, param)
    return given, "index" in extra, index


def _bounded_int(value: Any, param: str, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise RequestError(f"{param} must be an integer between 1 and {high}, got {value!r}", param=param)
    return value


def parse_embeddings(body: Any, limits: ServeConfig) -> tuple[str, list[str]]:
    """(model, texts) of a /v1/embeddings body."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("model is required: the embedder's id from GET /v1/models", param="model")
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise RequestError(
            "input must be a string or a non-empty list of strings (token arrays are not taken)", param="input"
        )
    if len(texts) > limits.max_embedding_inputs:
        raise RequestError(
            f"{len(texts)} inputs is more than this server embeds at once ({limits.max_embedding_inputs})",
            param="input",
        )
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise RequestError("encoding_format must be 'float' or 'base64'", param="encoding_format")
    return model, texts


# ---- responses -----------------------------------------------------------------------------


def completion_id() -> str:
    return f"chatcmpl-{random.getrandbits(64):016x}"


def finish_reason(answer: Answer) -> str:
    return "length" if answer.finish_reason == "length" else "stop"


def dca_extra(answer: Answer) -> dict[str, Any]:
    """dca's own part of a choice: sources with citations, grounding, thinking accounting."""
    return {
        "sources": [s.to_json() for s in answer.sources],
        "citations": answer.citations,
        "citations_moved": [list(move) for move in answer.citations_moved],
        "grounded": answer.grounded,
        "support": answer.support,
        "judge": answer.judge,
        "index": answer.index,
        "adapter": answer.adapter,
        "verifier": answer.verifier,
        "thinking": answer.reasoning.to_json() if answer.reasoning else None,
        "warnings": answer.warnings,
        "timings": {k: round(v, 4) for k, v in answer.timings.items()},
    }


def usage(answers: list[Answer]) -> dict[str, Any]:
    prompt = sum(a.prompt_tokens for a in answers)
    completion = sum(a.completion_tokens for a in answers)
    reasoning = sum(a.reasoning.reasoning_tokens if a.reasoning else 0 for a in answers)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": sum(a.cached_tokens for a in answers)},
        "completion_tokens_details": {"reasoning_tokens": reasoning},
    }


def completion_body(cid: str, model: str, answers: list[Answer]) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {
                    "role": "assistant",
                    "content": answer.text,
                    "reasoning_content": answer.reasoning_text or None,
                },
                "finish_reason": finish_reason(answer),
                "logprobs": None,
                "dca": dca_extra(answer),
            }
            for i, answer in enumerate(answers)
        ],
        "usage": usage(answers),
    }


def chunk_body(
    cid: str, model: str, created: int, index: int, delta: dict[str, Any], finish: str | None = None, **extra: Any
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None, **extra}
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model, "choices": [choice]}


def usage_chunk(cid: str, model: str, created: int, answers: list[Answer]) -> dict[str, Any]:
    """The stream's last chunk under ``stream_options.include_usage``: no choices, the usage."""
    return {**chunk_body(cid, model, created, 0, {}), "choices": [], "usage": usage(answers)}
