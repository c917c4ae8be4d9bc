"""A real `dca serve` process (smollm2-135m, the real embedder) driven by the official openai
client and by langchain's ChatOpenAI; a public bind without a key refused at start."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import real_models_home, trickle_headers

pytestmark = pytest.mark.slow
KEY = "slow-test-key-0123"


def _env(home: Path) -> dict[str, str]:
    return {"DCA_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_OFFLINE": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("serve")
    home = real_models_home(tmp)
    corpus = tmp / "corpus"
    corpus.mkdir()
    (corpus / "paris.md").write_text("# Paris\n\nParis is the capital of France. It lies on the Seine.\n")
    (corpus / "rome.md").write_text("# Rome\n\nRome is the capital of Italy. It lies on the Tiber.\n")
    add = subprocess.run([sys.executable, "-m", "dca", "index", "add", str(corpus)], env=_env(home), check=False)
    assert add.returncode == 0
    port = _free_port()
    log = (tmp / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "dca", "serve", "-m", "smollm2-135m", "--port", str(port), "--api-key", KEY],
        env=_env(home),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if process.poll() is not None:
                raise AssertionError((tmp / "serve.log").read_text())
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_openai_client_chat_stream_reasoning_and_embeddings(server: str) -> None:
    from openai import OpenAI

    client = OpenAI(base_url=f"{server}/v1", api_key=KEY, max_retries=0)
    assert {m.id for m in client.models.list()} == {"smollm2-135m", "all-minilm-l6-v2"}
    reply = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=24,
        extra_body={"dca": {"index": "default", "k": 2}},
    )
    assert reply.choices[0].message.content and reply.usage and reply.usage.completion_tokens > 0
    sources = reply.choices[0].model_extra["dca"]["sources"]  # type: ignore[index]
    assert sources[0]["path"].endswith("paris.md")
    stream = client.chat.completions.create(
        model="smollm2-135m",
        messages=[{"role": "user", "content": "What is 6 times 7?"}],
        stream=True,
        extra_body={"dca": {"strategy": "cot", "budget": 24}},
        max_tokens=16,
    )
    reasoning, content = "", ""
    for chunk in stream:
        if chunk.choices:
            delta = chunk.choices[0].delta
            reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
            content += delta.content or ""
    assert reasoning.strip() and content.strip()
    vectors = client.embeddings.create(model="all-minilm-l6-v2", input=["cats purr", "dogs bark"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 384


def test_langchain_chat_openai(server: str) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(base_url=f"{server}/v1", api_key=KEY, model="smollm2-135m", max_tokens=16, max_retries=0)  # type: ignore[arg-type]
    message = chat.invoke("Say hello.")
    assert isinstance(message.content, str) and message.content.strip()
    assert "".join(str(c.content) for c in chat.stream("Say hello.")).strip()


def test_a_public_bind_without_a_key_is_refused_at_start(tmp_path: Path) -> None:
    home = real_models_home(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "dca", "serve", "--host", "0.0.0.0"],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and "--api-key" in result.stderr and "Traceback" not in result.stderr


def test_slow_clients_do_not_lock_the_real_server_out(server: str) -> None:
    """140 connections trickling a header (more than the 128 requests the server runs at once):
    /health and a real question are still answered while they go on, and the server closes
    them at its 10 s header deadline. Loopback only, about 15 s."""
    import threading

    port = int(server.rsplit(":", 1)[1])
    stop, closed = threading.Event(), []
    attack = threading.Thread(target=trickle_headers, args=(port, 140, stop, closed), daemon=True)
    attack.start()
    try:
        time.sleep(2)
        assert httpx.get(f"{server}/health", timeout=10).status_code == 200
        reply = httpx.post(
            f"{server}/v1/chat/completions",
            headers={"Authorization": f"Bearer {KEY}"},
            json={
                "model": "smollm2-135m",
                "max_tokens": 16,
                "messages": [{"role": "user", "content": "What is the capital of France?"}],
            },
            timeout=60,
        )
        assert reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"]
        deadline = time.time() + 15
        while len(closed) < 140 and time.time() < deadline:
            time.sleep(0.5)
        assert len(closed) == 140
    finally:
        stop.set()
        attack.join(timeout=15)
