"""Office documents and e-books as sections: .docx (headings from the paragraph styles),
.pptx (one section per slide, under its title, with the slide number as the page), .xlsx (one
section per sheet, rows as tab-separated lines) and .epub (chapters in reading order, headed
by their HTML headings).

The readers are python-docx, python-pptx, openpyxl and EbookLib: the ``documents`` extra
(``pip install 'dca[documents]'``). Without it these files are skipped with that advice.
"""

from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dca.errors import SkipFile
from dca.knowledge.markup import html_lines
from dca.knowledge.sections import BLOCK_CHARS, Heading, Section, heading_sections

_LIBRARY = {".docx": "docx", ".pptx": "pptx", ".xlsx": "openpyxl", ".epub": "ebooklib"}
# These files are zip archives, and the readers unpack whole members into memory: a small
# hostile file (a "zip bomb") could claim gigabytes. zipfile never unpacks a member past the
# size its header declares, so the declared sizes are checked first.
MAX_UNPACKED_BYTES = 1 << 30
MAX_MEMBERS = 20_000


def _check_archive(path: Path) -> None:
    """SkipFile for an archive that would unpack to more than this process should hold."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SkipFile(f"not a readable {path.suffix.lower()} file (zip: {exc})") from None
    unpacked = sum(m.file_size for m in members)
    if len(members) > MAX_MEMBERS or unpacked > MAX_UNPACKED_BYTES:
        raise SkipFile(
            f"it would unpack to {unpacked / 1e6:,.0f} MB in {len(members):,} parts (dca reads at most "
            f"{MAX_UNPACKED_BYTES / 1e6:,.0f} MB in {MAX_MEMBERS:,}): too large, or a zip bomb"
        )


def office_sections(path: Path) -> Iterator[Section]:
    """Sections of a .docx, .pptx, .xlsx or .epub file; SkipFile when it cannot be read."""
    suffix = path.suffix.lower()
    try:
        __import__(_LIBRARY[suffix])
    except ImportError:
        raise SkipFile(f"reading {suffix} files needs the documents extra: pip install 'dca[documents]'") from None
    reader = {".docx": _docx, ".pptx": _pptx, ".xlsx": _xlsx, ".epub": _epub}[suffix]
    _check_archive(path)
    try:
        sections = list(reader(path))  # the readers hold whole files in memory anyway
    except SkipFile:
        raise
    except Exception as exc:  # a damaged or foreign file: skipped with the reader's reason
        raise SkipFile(f"unreadable {suffix} ({type(exc).__name__}: {exc})") from None
    if not sections:
        raise SkipFile("no text in it")
    yield from sections


def _docx_level(style: str) -> int | None:
    """Heading level of a Word paragraph style: "Heading N" N, Title 0 (above them all), else None."""
    if style == "Title":
        return 0
    match = re.fullmatch(r"Heading (\d)", style)
    return int(match.group(1)) if match else None


def _docx(path: Path) -> Iterator[Section]:
    import docx
    from docx.table import Table

    document = docx.Document(str(path))
    lines: list[tuple[str, Heading | None]] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            for row in block.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                if any(cells):
                    lines.append(("\t".join(cells) + "\n", None))
            continue
        text = block.text
        level = _docx_level(block.style.name if block.style is not None else "")
        heading = (level, " ".join(text.split())) if level is not None and text.strip() else None
        lines.append((text + "\n", heading))
    yield from heading_sections(iter(lines))


def _pptx(path: Path) -> Iterator[Section]:
    from pptx import Presentation

    offset = 0
    for number, slide in enumerate(Presentation(str(path)).slides, start=1):
        title_shape = slide.shapes.title
        title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
        texts = [title] if title else []
        for shape in slide.shapes:
            if title_shape is not None and shape.shape_id == title_shape.shape_id:
                continue
            if shape.has_text_frame and shape.text_frame.text.strip():
                texts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False):
                for row in shape.table.rows:
                    texts.append("\t".join(" ".join(cell.text.split()) for cell in row.cells))
        if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
            notes = slide.notes_slide.notes_text_frame.text.strip()
            if notes:
                texts.append(f"Notes: {notes}")
        text = "\n".join(texts).strip()
        if text:
            text += "\n"
            yield Section(text=text, start=offset, heading=title or f"Slide {number}", page=number)
            offset += len(text)


def _xlsx(path: Path) -> Iterator[Section]:
    from openpyxl import load_workbook  # type: ignore[import-untyped]

    workbook = load_workbook(str(path), read_only=True, data_only=True)
    offset = 0
    try:
        for sheet in workbook.worksheets:
            rows = (
                "\t".join("" if value is None else str(value) for value in row).rstrip("\t")
                for row in sheet.iter_rows(values_only=True)
            )
            text = "".join(f"{row}\n" for row in rows if row.strip())
            for i in range(0, len(text), BLOCK_CHARS):
                yield Section(text=text[i : i + BLOCK_CHARS], start=offset + i, heading=sheet.title)
            offset += len(text)
    finally:
        workbook.close()


def _epub(path: Path) -> Iterator[Section]:
    import ebooklib  # type: ignore[import-untyped]
    from ebooklib import epub  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EbookLib warns about its own future defaults
        book = epub.read_epub(str(path), options={"ignore_ncx": True})
    lines: list[tuple[str, Heading | None]] = []
    for idref, _linear in book.spine:
        item: Any = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        html = item.get_content().decode("utf-8", errors="replace")
        _title, chapter = html_lines(html)  # a chapter's <title> is often the book's: its headings place a passage
        lines.extend(chapter)
    yield from heading_sections(iter(lines))
