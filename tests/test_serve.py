"""dca serve with a scripted generator: the OpenAI shapes, streaming with reasoning, limits,
the API key, the queue (429), timeouts, cancellation on disconnect, and real HTTP clients."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from conftest import HashEmbedder, ScriptedGenerator, make_corpus, trickle_headers
from typer.testing import CliRunner

from dca.cli import app as cli_app
from dca.config import Paths
from dca.errors import ServeError
from dca.knowledge import add_paths
from dca.serve import ServeConfig, create_app

PROGRAM = "x = 6 * 7\nprint(x)\n```"


class SlowGenerator(ScriptedGenerator):
    """Yields one word every ``delay`` seconds; records how many words it gave before it was closed."""

    def __init__(self, answers: list[str], delay: float) -> None:
        super().__init__(answers)
        self.delay = delay
        self.given: list[int] = []
        self.closed = threading.Event()

    def stream(self, prompt: str, config: object, completion: object = None):  # type: ignore[override]
        count = 0
        try:
            for piece in super().stream(prompt, config, completion):
                time.sleep(self.delay)
                count += 1
                yield piece
        finally:
            self.given.append(count)
            self.closed.set()


@pytest.fixture
def indexed(home: Paths, tmp_path: Path, fake_embedder: HashEmbedder) -> Paths:
    add_paths(home, "docs", [make_corpus(tmp_path / "corpus")], embedder_name=fake_embedder.name,
              embedder_factory=lambda: fake_embedder)  # fmt: skip
    return home


def _client(home: Paths, generator: Any, embedder: Any = None, **config: Any) -> Any:
    from fastapi.testclient import TestClient

    app = create_app(ServeConfig(**config), generators={"scripted": generator}, paths=home, embedder=embedder)
    return TestClient(app, base_url="http://127.0.0.1:8000")  # as a local program addresses it


def _chat(**fields: Any) -> dict[str, Any]:
    return {"model": "scripted", "messages": [{"role": "user", "content": "What do cats do?"}], **fields}


def test_models_and_health(home: Paths, embedder: HashEmbedder) -> None:
    with _client(home, ScriptedGenerator(), embedder) as client:
        assert client.get("/health").json() == {"status": "ok"}
        ids = {m["id"]: m["dca"]["role"] for m in client.get("/v1/models").json()["data"]}
        assert ids == {"scripted": "generator", embedder.name: "embedder"}
        assert client.get("/v1/models/scripted").json()["id"] == "scripted"
        assert client.get("/v1/models/gpt-4").status_code == 404


def test_chat_answers_from_the_index_with_citations(indexed: Paths) -> None:
    generator = ScriptedGenerator(["Cats purr [1]."])
    with _client(indexed, generator, index="docs") as client:
        reply = client.post("/v1/chat/completions", json=_chat(max_tokens=64, temperature=0))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    choice = body["choices"][0]
    assert body["object"] == "chat.completion" and choice["message"]["content"] == "Cats purr [1]."
    assert choice["finish_reason"] == "stop" and choice["message"]["reasoning_content"] is None
    assert choice["dca"]["citations"] == [1] and choice["dca"]["grounded"]
    assert choice["dca"]["sources"][0]["path"].endswith("animals.md")
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"] > 0
    assert '<source id="1"' in generator.prompts[0]  # the sources were in the prompt


def test_a_bare_citation_is_never_streamed_and_is_answered_again(indexed: Paths) -> None:
    generator = ScriptedGenerator(["[1]", "purr and chase mice"])
    with (
        _client(indexed, generator, index="docs") as client,
        client.stream("POST", "/v1/chat/completions", json=_chat(stream=True)) as reply,
    ):
        lines = [line for line in reply.iter_lines() if line]
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    contents = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert "".join(x for x in contents if x) == "purr and chase mice [1]."
    assert "[1]" not in [x for x in contents if x]  # the bare marker never went out alone
    last = [c for c in chunks if c["choices"]][-1]["choices"][0]
    assert any("citation alone" in w for w in last["dca"]["warnings"])


def test_system_history_and_closed_book(indexed: Paths) -> None:
    generator = ScriptedGenerator(["Fine."])
    messages = [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
        {"role": "user", "content": "How are you?"},
    ]
    with _client(indexed, generator, index="docs") as client:
        body = client.post("/v1/chat/completions", json=_chat(messages=messages, dca={"index": None})).json()
    assert body["choices"][0]["dca"]["sources"] == [] and body["choices"][0]["dca"]["index"] is None
    prompt = generator.prompts[0]
    assert "Answer in French." in prompt and prompt.index("Hello!") < prompt.index("How are you?")
    assert "<source" not in prompt


def test_streaming_carries_reasoning_content_then_content(home: Paths) -> None:
    generator = ScriptedGenerator([PROGRAM])
    with _client(home, generator) as client:
        request = _chat(stream=True, reasoning_effort="low", stream_options={"include_usage": True})
        with client.stream("POST", "/v1/chat/completions", json=request) as reply:
            assert reply.status_code == 200
            assert reply.headers["content-type"].startswith("text/event-stream")
            lines = [line for line in reply.iter_lines() if line]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert "x = 6 * 7" in reasoning and "program printed '42'" in reasoning
    assert content == "The answer is 42."
    first_content = next(i for i, d in enumerate(deltas) if d.get("content"))
    assert any(d.get("reasoning_content") for d in deltas[:first_content])  # thinking comes first
    last = [c for c in chunks if c["choices"]][-1]["choices"][0]
    assert last["finish_reason"] == "stop" and last["dca"]["thinking"]["strategy"] == "verify"
    assert len(last["dca"]["thinking"]["samples"]) == 1  # a clean program answers alone (no probabilities here)
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_non_streamed_reasoning_and_options(home: Paths) -> None:
    generator = ScriptedGenerator(["6 times 7 is 42. </think>", "The answer is 42. END more"])
    with _client(home, generator) as client:
        body = client.post(
            "/v1/chat/completions", json=_chat(dca={"strategy": "cot", "budget": 64}, stop=["END"], seed=3)
        ).json()
    message = body["choices"][0]["message"]
    assert message["content"] == "The answer is 42." and "6 times 7" in message["reasoning_content"]
    assert body["choices"][0]["dca"]["thinking"]["budget"] == 64


def test_n_choices_use_successive_seeds(home: Paths) -> None:
    generator = ScriptedGenerator(["a", "b", "c"])
    with _client(home, generator) as client:
        body = client.post("/v1/chat/completions", json=_chat(n=3, seed=10, temperature=0.8)).json()
    assert [c["message"]["content"] for c in body["choices"]] == ["a", "b", "c"]
    assert [c.seed for c in generator.configs] == [10, 11, 12]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("request_body", "status", "fragment"),
    [
        ({"model": "scripted"}, 400, "messages must be a non-empty list"),
        (_chat(messages=[{"role": "assistant", "content": "hi"}]), 400, "must be the user's"),
        (_chat(messages=[{"role": "tool", "content": "x"}]), 400, "role 'tool' is not supported"),
        (_chat(messages=[{"role": "user", "content": [{"type": "image_url"}]}]), 400, "only text content"),
        (_chat(model="gpt-4"), 404, "not served here; use one of: scripted"),
        (_chat(max_tokens=0), 400, "max_tokens must be between 1"),
        (_chat(max_tokens=10**6), 400, "max_tokens must be between 1 and 4096"),
        (_chat(temperature="hot"), 400, "temperature must be a number"),
        (_chat(n=99), 400, "n must be between 1 and 8"),
        (_chat(stop=[""]), 400, "stop must be"),
        (_chat(reasoning_effort="extreme"), 400, "reasoning_effort must be one of"),
        (_chat(dca={"strategy": "magic"}), 400, "unknown strategy 'magic'"),
        (_chat(dca={"index": "../../etc"}), 400, "plain name"),
        (_chat(dca={"adapter": "/etc/passwd"}), 400, "plain name"),
        (_chat(dca={"adapter": "x.gguf"}), 400, "plain name"),
        (_chat(dca={"index": "nosuch"}), 404, "no index named 'nosuch'"),
        (_chat(dca={"colour": "red"}), 400, "unknown dca option 'colour'"),
        (_chat(tools=[{"type": "function"}]), 400, "tools and functions are not supported"),
        (_chat(logprobs=True), 400, "logprobs are not supported"),
        (_chat(top_logprobs=3), 400, "logprobs are not supported"),
        ([1, 2], 400, "must be a JSON object"),
    ],
)
def test_bad_requests_get_openai_errors(home: Paths, request_body: Any, status: int, fragment: str) -> None:
    with _client(home, ScriptedGenerator()) as client:
        reply = client.post("/v1/chat/completions", json=request_body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert fragment in error["message"] and error["type"] and "Traceback" not in reply.text


def test_malformed_json_oversized_body_and_unknown_routes(home: Paths) -> None:
    with _client(home, ScriptedGenerator(), max_body_bytes=2000) as client:
        bad = client.post("/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
        big = client.post("/v1/chat/completions", json=_chat(messages=[{"role": "user", "content": "x" * 5000}]))
        assert big.status_code == 413 and "larger than" in big.json()["error"]["message"]

        def chunks() -> Iterator[bytes]:  # no content-length: the limit holds while reading
            yield b'{"model": "scripted", "messages": [{"role": "user", "content": "'
            yield b"x" * 5000
            yield b'"}]}'

        streamed = client.post("/v1/chat/completions", content=chunks())
        assert streamed.status_code == 413
        assert client.get("/v1/nothing").status_code == 404 and "error" in client.get("/v1/nothing").json()
        too_many = _chat(messages=[{"role": "user", "content": "x"}] * 300)
        assert client.post("/v1/chat/completions", json=too_many).status_code == 413  # body limit first
    with _client(home, ScriptedGenerator(), max_messages=3) as client:
        reply = client.post("/v1/chat/completions", json=_chat(messages=[{"role": "user", "content": "x"}] * 4))
        assert reply.status_code == 400 and "more than this server takes (3)" in reply.json()["error"]["message"]


def test_api_key_is_required_when_set(home: Paths) -> None:
    with _client(home, ScriptedGenerator(), api_key="s3cret-key-123") as client:
        assert client.get("/v1/models").status_code == 401
        wrong = client.get("/v1/models", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
        assert client.get("/v1/models", headers={"Authorization": "Bearer s3cret-key-123"}).status_code == 200
        assert client.post("/v1/chat/completions", json=_chat()).status_code == 401
        assert client.get("/health").status_code == 200  # says only "ok"


def test_a_public_bind_without_a_key_is_refused() -> None:
    with pytest.raises(ServeError, match="--host 0.0.0.0 lets other machines"):
        ServeConfig(host="0.0.0.0")
    with pytest.raises(ServeError, match="shorter than 8"):
        ServeConfig(host="0.0.0.0", api_key="abc")
    assert ServeConfig(host="0.0.0.0", api_key="a-long-key").api_key
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0"], env={"DCA_API_KEY": ""})
    assert result.exit_code == 1 and "give it an --api-key" in result.output and "Traceback" not in result.output


def test_embeddings(home: Paths, embedder: HashEmbedder) -> None:
    with _client(home, ScriptedGenerator(), embedder) as client:
        body = client.post(
            "/v1/embeddings", json={"model": embedder.name, "input": ["cats", "dogs", "a", "b", "c"]}
        ).json()
        assert [d["index"] for d in body["data"]] == [0, 1, 2, 3, 4] and len(body["data"][0]["embedding"]) == 64
        assert embedder.calls == 2  # four texts at a time
        packed = client.post(
            "/v1/embeddings", json={"model": embedder.name, "input": "cats", "encoding_format": "base64"}
        )
        vector = np.frombuffer(base64.b64decode(packed.json()["data"][0]["embedding"]), dtype="<f4")
        assert np.allclose(vector, body["data"][0]["embedding"])
        assert client.post("/v1/embeddings", json={"model": "scripted", "input": "x"}).status_code == 404
        assert client.post("/v1/embeddings", json={"model": embedder.name, "input": [1, 2]}).status_code == 400


# ---- a live server: uvicorn in a thread, real HTTP ---------------------------------------------


@contextlib.contextmanager
def live_server(home: Paths, generator: Any, **config: Any) -> Iterator[str]:
    """The app served as `dca serve` serves it (dca's uvicorn settings and protocol), on a free port."""
    import uvicorn

    from dca.serve.server import uvicorn_config

    settings = ServeConfig(port=0, **config)
    app = create_app(settings, generators={"scripted": generator}, paths=home)
    server = uvicorn.Server(uvicorn_config(app, settings))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 10
    while not server.started and time.time() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_full_queue_gets_429_with_retry_after(home: Paths) -> None:
    generator = SlowGenerator(["one two three four five six"], delay=0.2)
    with live_server(home, generator, max_queue=1) as url:
        results: list[int] = []

        def call() -> None:
            results.append(httpx.post(f"{url}/v1/chat/completions", json=_chat(), timeout=30).status_code)

        threads = [threading.Thread(target=call) for _ in range(2)]
        for t in threads:
            t.start()
            time.sleep(0.1)  # the first runs, the second waits in the queue
        refused = httpx.post(f"{url}/v1/chat/completions", json=_chat(), timeout=30)
        for t in threads:
            t.join()
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert results == [200, 200]  # nothing lost


def test_a_request_past_the_timeout_is_stopped(home: Paths) -> None:
    generator = SlowGenerator(["word " * 200], delay=0.05)
    with live_server(home, generator, timeout_s=0.5) as url:
        reply = httpx.post(f"{url}/v1/chat/completions", json=_chat(), timeout=30)
        assert reply.status_code == 504 and reply.json()["error"]["type"] == "timeout"
        assert generator.closed.wait(5) and generator.given[0] < 100  # generation stopped early


def test_a_client_that_goes_away_cancels_its_generation(home: Paths) -> None:
    generator = SlowGenerator(["word " * 200], delay=0.05)
    with live_server(home, generator) as url:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=_chat(stream=True), timeout=30) as reply:
            for n, _line in enumerate(reply.iter_lines()):
                if n > 5:
                    break
        assert generator.closed.wait(5), "the generation went on after the client left"
        assert generator.given[0] < 100
        # and a non-streamed request whose client gives up
        generator.closed.clear()
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/chat/completions", json=_chat(), timeout=0.5)
        assert generator.closed.wait(5) and generator.given[1] < 100


def test_openai_client_and_langchain_against_a_live_server(indexed: Paths) -> None:
    from langchain_openai import ChatOpenAI
    from openai import OpenAI

    generator = ScriptedGenerator(["Cats purr [1]."])
    with live_server(indexed, generator, index="docs", api_key="test-key-123") as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="test-key-123")
        assert [m.id for m in client.models.list()] == ["scripted"]
        reply = client.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "What do cats do?"}], extra_body={"dca": {"k": 2}}
        )
        assert reply.choices[0].message.content == "Cats purr [1]."
        assert reply.choices[0].model_extra["dca"]["citations"] == [1]  # type: ignore[index]
        pieces = client.chat.completions.create(
            model="scripted", messages=[{"role": "user", "content": "What do cats do?"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == "Cats purr [1]."
        chat = ChatOpenAI(base_url=f"{url}/v1", api_key="test-key-123", model="scripted", max_retries=0)  # type: ignore[arg-type]
        assert chat.invoke("What do cats do?").content == "Cats purr [1]."
        with pytest.raises(Exception, match="401|invalid_api_key"):
            OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()


def test_the_adapter_is_chosen_per_request(home: Paths) -> None:
    (home.models / "adapters").mkdir(parents=True)
    (home.models / "adapters" / "reasoning.gguf").write_bytes(b"GGUF")
    generator = ScriptedGenerator(["fine"])
    with _client(home, generator) as client:
        assert client.post("/v1/chat/completions", json=_chat(dca={"adapter": "reasoning"})).status_code == 200
        assert client.post("/v1/chat/completions", json=_chat(dca={"adapter": "none"})).status_code == 200
        missing = client.post("/v1/chat/completions", json=_chat(dca={"adapter": "nosuch"}))
    assert missing.status_code == 400 and "no adapter 'nosuch'" in missing.json()["error"]["message"]
    assert generator.adapters == {"reasoning": home.models / "adapters" / "reasoning.gguf"}
    assert [c.adapter for c in generator.configs] == ["reasoning", None]  # type: ignore[attr-defined]


def test_without_a_key_only_this_machine_may_call(home: Paths) -> None:
    # DNS rebinding: a web page whose name now resolves to 127.0.0.1 sends that name as Host
    with _client(home, ScriptedGenerator()) as client:
        for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000"):
            assert client.get("/v1/models", headers={"host": host}).status_code == 200
        rebound = client.post("/v1/chat/completions", json=_chat(), headers={"host": "evil.test:8000"})
        assert rebound.status_code == 403 and rebound.json()["error"]["code"] == "forbidden_host"
        assert "Host: evil.test:8000" in rebound.json()["error"]["message"]
        cross = client.post("/v1/chat/completions", json=_chat(), headers={"origin": "https://evil.test"})
        assert cross.status_code == 403 and "--api-key" in cross.json()["error"]["message"]
        local_page = client.post("/v1/chat/completions", json=_chat(), headers={"origin": "http://localhost:3000"})
        assert local_page.status_code == 200
        assert client.post("/v1/chat/completions", json=_chat(), headers={"origin": "null"}).status_code == 200
    with _client(home, ScriptedGenerator(), api_key="s3cret-key-123") as client:  # a key: the key decides
        keyed = {"host": "evil.test", "origin": "https://app.example", "authorization": "Bearer s3cret-key-123"}
        assert client.get("/v1/models", headers=keyed).status_code == 200


def test_effort_low_keeps_the_gate_and_a_named_strategy_drops_it() -> None:
    from dca.reasoning.config import SURE_ABOVE
    from dca.serve.schema import parse_chat

    def reasoning(**fields: Any) -> Any:
        return parse_chat(_chat(**fields), ServeConfig(), default_index=None).configs[0].reasoning

    assert reasoning(reasoning_effort="low").sure_above == SURE_ABOVE  # as `dca ask --think`
    named = reasoning(reasoning_effort="low", dca={"strategy": "verify"})  # as `dca ask --strategy verify`
    assert named.strategy == "verify" and named.sure_above is None
    assert reasoning().sure_above is None and not reasoning().thinks


def test_deeply_nested_json_is_a_400_not_a_500(home: Paths) -> None:
    client = _client(home, ScriptedGenerator(["x"]))
    reply = client.post("/v1/chat/completions", content=b"[" * 200_000, headers={"content-type": "application/json"})
    assert reply.status_code == 400 and "nests JSON too deeply" in reply.json()["error"]["message"]


def test_slow_clients_cannot_lock_out_other_requests(home: Paths) -> None:
    """140 connections trickling a header one byte at a time (more than the 128 requests the
    server runs at once): /health and a chat request are still answered, and the trickling
    connections are closed at the header deadline. Loopback only, bounded in time."""
    generator = ScriptedGenerator(["Cats purr."] * 3)
    with live_server(home, generator, header_timeout_s=2.0, max_waiting=32) as url:
        port = int(url.rsplit(":", 1)[1])
        stop, closed = threading.Event(), []
        attack = threading.Thread(target=trickle_headers, args=(port, 140, stop, closed), daemon=True)
        attack.start()
        try:
            time.sleep(1.0)  # all 140 connected and trickling
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
            reply = httpx.post(f"{url}/v1/chat/completions", json=_chat(), timeout=10)
            assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "Cats purr."
            deadline = time.time() + 6
            while len(closed) < 140 and time.time() < deadline:
                time.sleep(0.2)
            assert len(closed) == 140  # no trickle outlives the header deadline
            assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        finally:
            stop.set()
            attack.join(timeout=10)


def test_requests_beyond_the_limit_get_503_and_the_slots_come_back(home: Paths) -> None:
    generator = SlowGenerator(["one two three four"], delay=0.3)
    with live_server(home, generator, max_requests=1) as url:
        first = threading.Thread(target=lambda: httpx.post(f"{url}/v1/chat/completions", json=_chat(), timeout=30))
        first.start()
        time.sleep(0.3)
        busy = httpx.get(f"{url}/health", timeout=5)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "overloaded"
        first.join(timeout=30)
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200


def test_a_null_dca_option_means_not_given() -> None:
    from dca.pipeline import AskConfig
    from dca.serve.schema import parse_chat

    nulls = {"k": None, "strategy": None, "samples": None, "budget": None, "adapter": None, "retrieval": None}
    config = parse_chat(_chat(dca=nulls), ServeConfig(), default_index="notes").configs[0]
    assert config.k == AskConfig().k and config.retrieval and not config.reasoning.thinks and config.adapter is None
