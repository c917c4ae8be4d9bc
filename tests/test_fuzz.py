"""Fuzzing: the document loaders, the chunker and the GGUF header reader, fed random
bytes and structured mutations of valid input, each end in a result or in one DcaError, never
in another exception or a hang. Bounded: a fixed number of examples, each under a deadline."""

from __future__ import annotations

import struct
import tempfile
from pathlib import Path

import pytest
from conftest import HashEmbedder, write_gguf

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from dca.errors import DcaError  # noqa: E402
from dca.knowledge import ChunkConfig, LoadConfig, load_sections, split_sections  # noqa: E402
from dca.models.gguf import read_gguf_info  # noqa: E402

BOUNDED = settings(
    max_examples=150, deadline=3000, suppress_health_check=[HealthCheck.function_scoped_fixture], derandomize=True
)
SUFFIXES = [".txt", ".md", ".rst", ".html", ".json", ".jsonl", ".py", ".pdf"]
_FOLDER = Path(tempfile.mkdtemp(prefix="dca-fuzz-"))


def _valid_gguf() -> bytes:
    return write_gguf(_FOLDER / "seed.gguf").read_bytes()


def _valid_document(suffix: str) -> bytes:
    return {
        ".md": b"# Title\n\nSome text.\n\n## Part\n\n```\n# not a heading\n```\nmore\n",
        ".rst": b"Title\n=====\n\nText under it.\n\nPart\n----\n\nMore.\n",
        ".html": b"<html><body><h1>T</h1><p>Text &amp; more</p><script>x()</script></body></html>",
        ".json": b'[{"text": "one"}, {"text": "two"}]',
        ".jsonl": b'{"text": "one"}\n{"text": "two"}\n',
        ".pdf": b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    }.get(suffix, b"plain text\nwith lines\n")


def _mutate(data: bytes, edits: list[tuple[int, int]], cut: int | None) -> bytes:
    buffer = bytearray(data)
    for position, value in edits:
        if buffer:
            buffer[position % len(buffer)] = value
    return bytes(buffer[: cut % (len(buffer) + 1)] if cut is not None else buffer)


EDITS = st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=12)
CUTS = st.none() | st.integers(0, 1 << 20)


def _load(suffix: str, data: bytes, n: int) -> None:
    path = _FOLDER / f"f{n}{suffix}"
    path.write_bytes(data)
    try:
        sections = list(load_sections(path, LoadConfig()))
        chunks = list(split_sections(iter(sections), HashEmbedder(), ChunkConfig()))
        assert all(c.text for c in chunks)
    except DcaError:
        pass  # a skipped file, with its reason
    finally:
        path.unlink(missing_ok=True)


@BOUNDED
@given(st.sampled_from(SUFFIXES), st.binary(max_size=4096))
def test_loaders_on_random_bytes(suffix: str, data: bytes) -> None:
    _load(suffix, data, 0)


@BOUNDED
@given(st.sampled_from(SUFFIXES), EDITS, CUTS)
def test_loaders_on_mutated_documents(suffix: str, edits: list[tuple[int, int]], cut: int | None) -> None:
    _load(suffix, _mutate(_valid_document(suffix), edits, cut), 1)


@BOUNDED
@given(st.text(max_size=3000), st.integers(16, 300))
def test_the_chunker_on_any_text(text: str, chunk_tokens: int) -> None:
    from dca.knowledge.sections import Section

    config = ChunkConfig(chunk_tokens=chunk_tokens, overlap_tokens=min(8, chunk_tokens // 2 - 1))
    chunks = list(split_sections(iter([Section(text=text, start=0)]), HashEmbedder(), config))
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text  # offsets point at the text


def _read_gguf(data: bytes) -> None:
    path = _FOLDER / "fuzz.gguf"
    path.write_bytes(data)
    try:
        info = read_gguf_info(path)
        assert info.architecture and info.n_tensors > 0
    except DcaError:
        pass


@BOUNDED
@given(st.binary(max_size=2048))
def test_the_gguf_reader_on_random_bytes(data: bytes) -> None:
    _read_gguf(b"GGUF" + data)


@BOUNDED
@given(EDITS, CUTS)
def test_the_gguf_reader_on_mutated_headers(edits: list[tuple[int, int]], cut: int | None) -> None:
    _read_gguf(_mutate(_valid_gguf(), edits, cut))


@BOUNDED
@given(st.integers(0, 12), st.integers(0, (1 << 64) - 1), st.integers(0, 6))
def test_the_gguf_reader_on_hostile_counts_and_types(type_id: int, count: int, where: int) -> None:
    # a key whose value claims any type and any length: big counts must not allocate or loop forever
    header = b"GGUF" + struct.pack("<IQQ", 3, 1, 2) + struct.pack("<Q", 20) + b"general.architecture"
    header += struct.pack("<I", 8) + struct.pack("<Q", 5) + b"llama"
    header += struct.pack("<Q", 3) + b"k" * 3 + struct.pack("<I", type_id) + struct.pack("<IQ", type_id, count)
    _read_gguf(header + b"\0" * (where * 8))
