"""The openai backend against a real OpenAI-compatible server not written here: llama-cpp-python's
own server (``llama_cpp.server``) on smollm2-135m, started by the fixture. Greedy answers equal
the local backend's; a think strategy runs through it; every failure is one line and exit 1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import real_models_home

pytestmark = pytest.mark.slow
KEY = "remote-test-key-42"
TINY = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL, DCA_HOME) of a llama_cpp.server serving the tiny model with an API key."""
    pytest.importorskip("sse_starlette")
    tmp = tmp_path_factory.mktemp("remote")
    home = real_models_home(tmp)
    port = _free_port()
    log = (tmp / "server.log").open("w")
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(home / "models" / TINY), "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--n_ctx", "4096", "--api_key", KEY, "--model_alias", "tiny"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while True:
            if process.poll() is not None or time.time() > deadline:
                raise AssertionError((tmp / "server.log").read_text()[-2000:])
            try:
                if httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        yield url, home
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def remote_env(server: tuple[str, Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    url, home = server
    monkeypatch.setenv("DCA_HOME", str(home))
    for name, value in {"DCA_BACKEND": "openai", "DCA_BASE_URL": url, "DCA_API_KEY": KEY}.items():
        monkeypatch.setenv(name, value)
    return home


def _dca(home: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    base = {"DCA_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "dca", *args],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


PROMPTS = ["What is the capital of France?", "Write a Python function that adds two numbers.", "Name three colours."]


def test_greedy_text_samples_and_probabilities_equal_the_local_backend(remote_env: Path) -> None:
    from dca.config import Paths
    from dca.runtime.generation import Completion, GenerationConfig
    from dca.runtime.llama import RuntimeConfig, load_runtime
    from dca.runtime.remote import RemoteRuntime, load_generator

    paths = Paths.resolve()
    remote = load_generator("smollm2-135m", paths=paths)
    assert isinstance(remote, RemoteRuntime) and remote.model == "tiny"  # the server's only model
    local = load_runtime("smollm2-135m", paths=paths, config=RuntimeConfig())
    greedy = GenerationConfig(max_tokens=48)
    for question in PROMPTS:
        prompt = remote.chat_prompt([{"role": "user", "content": question}])
        assert prompt == local.chat_prompt([{"role": "user", "content": question}])
        got, want = Completion(), Completion()
        pieces = list(remote.stream(prompt, greedy, got))
        assert len(pieces) > 1  # streamed, not one block
        assert "".join(pieces) == got.text == "".join(local.stream(prompt, greedy, want)) == want.text
        assert got.prompt_tokens == want.prompt_tokens and got.finish_reason == want.finish_reason
    counting = GenerationConfig(max_tokens=48, stop=(" 6",))
    stopped = remote.complete("Count: 1, 2, 3,", counting)
    assert stopped.text == local.complete("Count: 1, 2, 3,", counting).text and stopped.finish_reason == "stop"
    assert "6" not in stopped.text and "5" in stopped.text
    prompt = remote.chat_prompt([{"role": "user", "content": "Count to five."}])
    # several samples: this server ignores n, so one request each, seed + s, reproducible
    hot = GenerationConfig(max_tokens=24, temperature=0.9, seed=7)
    first = [c.text for c in remote.sample(prompt, 3, hot)]
    assert len(first) == 3 and len(set(first)) > 1
    assert [c.text for c in remote.sample(prompt, 3, hot)] == first
    question = remote.chat_prompt([{"role": "user", "content": "Is Paris in France? Answer Yes or No."}])
    far, near = (
        remote.choice_probabilities(question, ["Yes", "No"], greedy),
        local.choice_probabilities(question, ["Yes", "No"], greedy),
    )
    assert far == pytest.approx(near, abs=1e-3)
    with pytest.raises(Exception, match="cannot run on the openai backend"):
        remote.load_adapter("x", Path("x.gguf"))


def test_cli_answers_equal_the_local_backend_and_thinking_runs_remotely(remote_env: Path) -> None:
    url = os.environ["DCA_BASE_URL"]
    question = ["ask", "-m", "smollm2-135m", "--no-retrieval", "--max-tokens", "40", "--json", "Who wrote Hamlet?"]
    local = _dca(remote_env, *question)
    remote = _dca(remote_env, *question, "--backend", "openai", "--base-url", url, DCA_API_KEY=KEY)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout)["answer"] == json.loads(local.stdout)["answer"]
    think = _dca(
        remote_env,
        *["ask", "-m", "smollm2-135m", "--no-retrieval", "--think", "--strategy", "vote", "--samples", "2"],
        *["--budget", "64", "--json", "What is 3 + 4?"],
        DCA_BACKEND="openai",
        DCA_BASE_URL=url,
        DCA_API_KEY=KEY,
    )
    assert think.returncode == 0, think.stderr
    answer = json.loads(think.stdout)
    assert answer["answer"] and answer["thinking"]["strategy"] == "vote"
    assert 1 <= len(answer["thinking"]["samples"]) <= 2
    doctor = _dca(remote_env, "doctor", "--json", DCA_BACKEND="openai", DCA_BASE_URL=url, DCA_API_KEY=KEY)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    assert checks["backend"]["ok"] and "serves tiny" in checks["backend"]["detail"]
    assert KEY not in doctor.stdout  # the key is never shown


def _silent_server() -> tuple[str, socket.socket]:
    """A TCP server that accepts connections and never answers (a hung model server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", listener


def _cut_stream_server() -> tuple[str, socket.socket]:
    """An HTTP server whose completions stream one token and then drops the connection (a
    server that dies mid-answer); /v1/models answers as a real one does."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            request = conn.recv(65536).decode("latin-1")
            if "/models" in request.split("\r\n", 1)[0]:
                body = json.dumps({"object": "list", "data": [{"id": "tiny", "object": "model"}]}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                    % len(body)
                )
                conn.sendall(body)
            else:
                chunk = {"id": "c", "object": "text_completion", "created": 0, "model": "tiny"}
                chunk["choices"] = [{"index": 0, "text": "Hello", "finish_reason": None, "logprobs": None}]
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                event = f"data: {json.dumps(chunk)}\n\n".encode()
                conn.sendall(b"%x\r\n%s\r\n" % (len(event), event))
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", listener


def test_every_failure_is_one_line_and_exit_1(remote_env: Path) -> None:
    url = os.environ["DCA_BASE_URL"]
    ask = ["ask", "-m", "smollm2-135m", "--no-retrieval", "--max-tokens", "8", "Hello?"]
    env = {"DCA_BACKEND": "openai", "DCA_BASE_URL": url}
    closed = _free_port()
    silent, silent_socket = _silent_server()
    cut, cut_socket = _cut_stream_server()
    try:
        cases = {
            "refused the API key (401)": {**env, "DCA_API_KEY": "wrong"},
            "cannot reach the model server": {**env, "DCA_BASE_URL": f"http://127.0.0.1:{closed}/v1"},
            "does not serve 'nope'": {**env, "DCA_API_KEY": KEY, "DCA_SERVED_MODEL": "nope"},
            "did not answer within 2 s": {**env, "DCA_BASE_URL": silent, "DCA_TIMEOUT": "2"},
            "broke mid-answer|stopped mid-stream": {**env, "DCA_BASE_URL": cut},
            "needs the server's URL": {"DCA_BACKEND": "openai"},
            "backend must be local or openai": {"DCA_BACKEND": "vllm"},
            "must not hold credentials": {**env, "DCA_BASE_URL": "http://me:secret@127.0.0.1:1/v1"},
        }
        for expected, extra in cases.items():
            result = _dca(remote_env, *ask, timeout=60, **extra)
            assert result.returncode == 1, (expected, result.stdout, result.stderr)
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert len(lines) == 1 and any(e in lines[0] for e in expected.split("|")), (expected, result.stderr)
            assert "Traceback" not in result.stderr and "secret" not in result.stderr
        adapter = _dca(remote_env, *ask, "--adapter", "some-adapter", **env, DCA_API_KEY=KEY)
        assert adapter.returncode == 1 and "cannot run on the openai backend" in adapter.stderr
    finally:
        silent_socket.close()
        cut_socket.close()
