"""The openai backend's configuration, without a server: URLs, settings, the CLI's one-liners."""

from __future__ import annotations

import pytest

from dca.config import Paths
from dca.errors import ConfigError
from dca.runtime.remote import check_base_url
from dca.settings import load_settings


def test_base_url_must_be_http_without_credentials() -> None:
    assert check_base_url(" http://127.0.0.1:8080/v1/ ") == "http://127.0.0.1:8080/v1"
    for bad in ("ftp://host/v1", "127.0.0.1:8080", "http://", "http://user:pw@host/v1"):
        with pytest.raises(ConfigError):
            check_base_url(bad)


def test_backend_settings(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    chosen = load_settings(home)
    assert chosen["backend"] == "local" and chosen["base_url"] is None and chosen["timeout"] == 300
    monkeypatch.setenv("DCA_BACKEND", "openai")
    monkeypatch.setenv("DCA_TIMEOUT", "5")
    chosen = load_settings(home)
    assert chosen["backend"] == "openai" and chosen["timeout"] == 5
    for name, value in (("DCA_BACKEND", "vllm"), ("DCA_TIMEOUT", "0")):
        monkeypatch.setenv(name, value)
        with pytest.raises(ConfigError):
            load_settings(home)
        monkeypatch.delenv(name)


def test_openai_backend_without_a_url_is_one_line(home: Paths, monkeypatch: pytest.MonkeyPatch) -> None:
    from dca.runtime.remote import load_generator

    monkeypatch.setenv("DCA_BACKEND", "openai")
    with pytest.raises(ConfigError, match="needs the server's URL"):
        load_generator(paths=home)


class _NotTheApi:
    """A local HTTP server that answers 200 with what an OpenAI-compatible API never sends:
    ``models`` decides whether /v1/models is the API's JSON (so a later call gets the garbage)."""

    def __init__(self, content_type: str, body: bytes, *, models: bool) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        listing = json.dumps({"object": "list", "data": [{"id": "m", "object": "model"}]}).encode()

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                models_call = self.path.endswith("/models") and models
                payload = listing if models_call else body
                self.send_response(200)
                self.send_header("content-type", "application/json" if models_call else content_type)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _reply

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"


class _Vocab:
    name = "m"

    def tokenize(self, prompt: str) -> list[int]:
        return [1] * len(prompt.split())

    def count_tokens(self, text: str) -> int:
        return len(text.split())


@pytest.mark.parametrize(
    ("content_type", "body", "models"),
    [
        ("application/json", b"<html>not an API</html>", False),
        ("text/html", b"<html>not an API</html>", False),
        ("text/event-stream", b"data: {not json\n\n", True),
    ],
)
def test_a_server_that_answers_200_with_something_else_is_one_line(
    content_type: str, body: bytes, models: bool
) -> None:
    from dca.errors import GeneratorError
    from dca.runtime.generation import GenerationConfig
    from dca.runtime.remote import RemoteRuntime

    fake = _NotTheApi(content_type, body, models=models)
    try:
        with pytest.raises(GeneratorError, match="does not answer as an OpenAI-compatible API") as caught:
            runtime = RemoteRuntime(_Vocab(), base_url=fake.url)  # type: ignore[arg-type]
            runtime.complete("What is two and two?", GenerationConfig(max_tokens=4))
        assert "\n" not in str(caught.value) and "--base-url" in str(caught.value)
    finally:
        fake.server.shutdown()
