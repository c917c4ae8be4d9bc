"""Hostile GGUF files give one clear error, never a hang or a traceback."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.errors import GGUFError
from dca.models.gguf import read_gguf_info

runner = CliRunner()


def _s(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("<Q", len(raw)) + raw


def _gguf(path: Path, kv: list[tuple[str, int, bytes]], n_tensors: int = 1) -> Path:
    """A GGUF v3 header with the given metadata and ``n_tensors`` small f32 tensors (data included)."""
    header = b"GGUF" + struct.pack("<IQQ", 3, n_tensors, len(kv))
    for key, type_id, value in kv:
        header += _s(key) + struct.pack("<I", type_id) + value
    for n in range(n_tensors):
        header += _s(f"t{n}.weight") + struct.pack("<I", 1) + struct.pack("<Q", 8) + struct.pack("<IQ", 0, 32 * n)
    header += b"\0" * (-len(header) % 32)
    path.write_bytes(header + b"\0" * (32 * n_tensors))
    return path


ARCH = ("general.architecture", 8, _s("llama"))


def test_a_sound_header_still_reads(tmp_path: Path) -> None:
    info = read_gguf_info(_gguf(tmp_path / "ok.gguf", [ARCH, ("llama.context_length", 4, struct.pack("<I", 2048))]))
    assert info.architecture == "llama" and info.context_length == 2048 and info.n_tensors == 1


@pytest.mark.parametrize(
    ("kv", "n_tensors", "message"),
    [
        ([ARCH], 0, "holds no tensors"),
        ([ARCH, ("general.alignment", 9, struct.pack("<IQ", 4, 2) + struct.pack("<2I", 32, 32))], 1, "alignment"),
        ([ARCH, ("llama.context_length", 8, _s("4096"))], 1, "context_length is '4096'"),
        ([ARCH, ("deep", 9, struct.pack("<IQ", 9, 1) * 200 + struct.pack("<IQ", 4, 0))], 1, "nested more than"),
        ([("general.architecture", 4, struct.pack("<I", 7))], 1, "no general.architecture"),
    ],
)
def test_hostile_headers(tmp_path: Path, kv: list[tuple[str, int, bytes]], n_tensors: int, message: str) -> None:
    with pytest.raises(GGUFError, match=message):
        read_gguf_info(_gguf(tmp_path / "bad.gguf", kv, n_tensors))


def test_a_symlink_loop_and_a_fifo_are_refused(home: Paths, tmp_path: Path) -> None:
    (tmp_path / "a.gguf").symlink_to(tmp_path / "b.gguf")
    (tmp_path / "b.gguf").symlink_to(tmp_path / "a.gguf")
    result = runner.invoke(app, ["models", "add", str(tmp_path / "a.gguf"), "--name", "loop"])
    assert result.exit_code == 1 and "cannot be resolved" in result.output, result.output
    fifo = tmp_path / "pipe.gguf"
    os.mkfifo(fifo)
    # a real process with a deadline: opening a FIFO for reading blocks until a writer comes
    done = subprocess.run(
        [sys.executable, "-m", "dca", "models", "add", str(fifo), "--name", "pipe"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "DCA_HOME": str(home.home)},
    )  # fmt: skip
    assert done.returncode == 1 and "not a regular file" in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{% for m in messages %}{{ m.content }", "does not work"),  # a syntax error
        ("{{ raise_exception('no system role') }}", "no system role"),
    ],
)
def test_a_broken_chat_template_is_one_error_at_load(tmp_path: Path, template: str, message: str) -> None:
    pytest.importorskip("torch")
    from tiny_models import tiny_qwen2, write_gguf

    from dca.errors import GeneratorError
    from dca.runtime.llama import LlamaRuntime, RuntimeConfig

    model, tokens = tiny_qwen2()
    path = write_gguf(model, tokens, tmp_path / "tiny.gguf", chat_template=template)
    with pytest.raises(GeneratorError, match=message):
        LlamaRuntime(path, name="tiny", config=RuntimeConfig(n_ctx=256, n_threads=1))
