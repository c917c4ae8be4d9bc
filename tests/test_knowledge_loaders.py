"""Loaders and chunking: structure, offsets, formats, bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from conftest import HashEmbedder

from dca.errors import ConfigError, SkipFile
from dca.knowledge import ChunkConfig, LoadConfig, discover_files, load_sections, split_sections


def _sections(path: Path, **kwargs: object) -> list:
    return list(load_sections(path, LoadConfig(**kwargs)))  # type: ignore[arg-type]


def test_markdown_headings_become_paths_and_fences_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("# Top\nintro\n## Sub\n```\n# not a heading\n```\nbody\n# Next\nend\n")
    sections = _sections(path)
    assert [s.heading for s in sections] == ["Top", "Top > Sub", "Next"]
    assert "# not a heading" in sections[1].text
    text = path.read_text()
    for section in sections:
        assert text[section.start : section.start + len(section.text)] == section.text


def test_html_text_skips_scripts_and_keeps_headings(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_text(
        "<html><head><style>x{}</style></head><body><h1>Title</h1><p>One &amp; two</p>"
        "<script>evil()</script><h2>Part</h2><p>three</p></body></html>"
    )
    sections = _sections(path)
    assert [s.heading for s in sections] == ["Title", "Title > Part"]
    joined = "".join(s.text for s in sections)
    assert "One & two" in joined and "evil" not in joined and "x{}" not in joined


def test_rst_headings(tmp_path: Path) -> None:
    path = tmp_path / "r.rst"
    path.write_text("Guide\n=====\n\nhello\n\nInstall\n-------\n\nrun it\n")
    assert [s.heading for s in _sections(path)] == ["Guide", "Guide > Install"]


def test_jsonl_uses_the_configured_field(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"body": "first"}\n{"body": "second"}\nnot json\n')
    assert [s.text.strip() for s in _sections(path, json_field="body")] == ["first", "second"]
    with pytest.raises(SkipFile, match="no record has a string field 'text'"):
        _sections(path)


def test_binary_and_unknown_files_are_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "b.txt").write_bytes(b"abc\0def")
    with pytest.raises(SkipFile, match="binary"):
        _sections(tmp_path / "b.txt")
    (tmp_path / "x.xyz").write_text("hi")
    with pytest.raises(SkipFile, match="unsupported type .xyz"):
        _sections(tmp_path / "x.xyz")


def test_non_utf8_is_decoded_with_replacement_and_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "latin.txt"
    path.write_bytes("café au lait\n".encode("latin-1"))
    with caplog.at_level(logging.WARNING):
        sections = _sections(path)
    assert "caf\ufffd au lait" in sections[0].text
    assert "not valid UTF-8" in caplog.text


def test_large_text_is_read_in_blocks_with_exact_offsets(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    line = "the quick brown fox jumps over the lazy dog\n"
    path.write_text(line * 60_000)  # 2.6 MB
    sections = _sections(path)
    assert len(sections) >= 2 and max(len(s.text) for s in sections) <= (1 << 20) + len(line)
    assert sections[1].start == len(sections[0].text)


def _pdf(pages: list[str]) -> bytes:
    """A minimal valid PDF with one text line per page."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", ""]
    kids = []
    for i, text in enumerate(pages):
        page_id, content_id = 4 + 2 * i, 5 + 2 * i
        kids.append(f"{page_id} 0 R")
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET"
        objects.extend(
            [
                f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
                "/Resources << /Font << /F1 3 0 R >> >> >>",
                f"<< /Length {len(stream)} >>\nstream\n{stream}\nendstream",
            ]
        )
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>"
    objects.insert(2, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


def test_pdf_pages_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "doc.pdf"
    path.write_bytes(_pdf(["Hello first page", "Second page text"]))
    sections = _sections(path)
    assert [s.page for s in sections] == [1, 2]
    assert "Second page text" in sections[1].text


def test_corrupt_pdf_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "bad.pdf"
    path.write_bytes(b"%PDF-1.4\n garbage garbage")
    with pytest.raises(SkipFile, match="PDF"):
        _sections(path)


def test_discover_respects_globs_and_skips_vcs_folders(tmp_path: Path) -> None:
    for name in ("a.md", "b.txt", "sub/c.md", ".git/x.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    found = {p.relative_to(tmp_path).as_posix() for p in discover_files([tmp_path], LoadConfig(include=("*.md",)))}
    assert found == {"a.md", "sub/c.md"}
    found = {p.name for p in discover_files([tmp_path], LoadConfig(exclude=("sub/*",)))}
    assert found == {"a.md", "b.txt"}


def test_chunks_respect_size_overlap_and_offsets(tmp_path: Path) -> None:
    path = tmp_path / "long.md"
    body = " ".join(f"word{i}." if i % 7 == 6 else f"word{i}" for i in range(500))
    path.write_text(f"# Long\n{body}\n")
    text = path.read_text()
    config = ChunkConfig(chunk_tokens=50, overlap_tokens=10)
    chunks = list(split_sections(load_sections(path, LoadConfig()), HashEmbedder(), config))
    assert len(chunks) > 10
    for chunk in chunks:
        assert chunk.n_tokens <= 50 and chunk.heading == "Long"
        assert text[chunk.start : chunk.end] == chunk.text
    assert chunks[1].start < chunks[0].end  # neighbours overlap
    assert all(c.text.rstrip().endswith(".") for c in chunks[:-1])  # cut at sentence ends


def test_chunk_config_quotes_bad_values() -> None:
    with pytest.raises(ConfigError, match="overlap_tokens must be between 0 and chunk_tokens/2 \\(50\\), got 60"):
        ChunkConfig(chunk_tokens=100, overlap_tokens=60)


def test_a_single_long_line_is_sectioned_in_bounded_pieces(tmp_path: Path) -> None:
    # a minified file is one line; it used to become one section as long as
    # the file (27 MB reached 4.6 GB RSS in the chunker). Sections now stay within the block size.
    from dca.knowledge.sections import BLOCK_CHARS, PIECE_BYTES

    text = ("é" + "abc def " * 50_000) * 8  # ~3.2 MB, no newline, a 2-byte character at piece edges
    path = tmp_path / "min.txt"
    path.write_text(text, encoding="utf-8")
    sections = list(load_sections(path, LoadConfig()))
    assert len(sections) >= 3 and max(len(s.text) for s in sections) <= BLOCK_CHARS + PIECE_BYTES
    assert "".join(s.text for s in sections) == text  # nothing lost or mangled at the cuts
    assert [s.start for s in sections] == [sum(len(t.text) for t in sections[:i]) for i in range(len(sections))]


def test_a_piece_of_a_long_markdown_line_is_not_a_heading(tmp_path: Path) -> None:
    from dca.knowledge.sections import PIECE_BYTES

    line = "x" * (PIECE_BYTES - 1) + "\n# Not a heading, the same line goes on\n"
    path = tmp_path / "long.md"
    path.write_text("# Real\n" + "y" * (PIECE_BYTES + 10) + "# glued\nrest\n" + line, encoding="utf-8")
    headings = {s.heading for s in load_sections(path, LoadConfig())}
    assert "Real" in headings and not any("glued" in h for h in headings)


def test_a_long_jsonl_record_is_still_read_whole(tmp_path: Path) -> None:
    import json

    path = tmp_path / "big.jsonl"
    path.write_text(json.dumps({"text": "word " * 40_000}) + "\n", encoding="utf-8")  # 200 kB on one line
    assert sum(len(s.text) for s in load_sections(path, LoadConfig())) == len("word " * 40_000) + 1  # + newline
