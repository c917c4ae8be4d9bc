"""More document kinds: setext Markdown headings, .gitignore, HTML main text and title, and
docx, pptx, xlsx and epub files made here, indexed with their headings."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import HashEmbedder

from dca.config import Paths
from dca.knowledge import LoadConfig, add_paths, discover_files, load_sections
from dca.knowledge.store import KnowledgeIndex


def _sections(path: Path) -> list:
    return list(load_sections(path, LoadConfig()))


def test_setext_headings_are_found_and_offsets_stay_exact(tmp_path: Path) -> None:
    path = tmp_path / "a.md"
    path.write_text("Top\n===\nintro\n\nSub\n---\nbody\n\n    # indented code, not a heading\n\n## Atx\nend\n")
    sections = _sections(path)
    assert [s.heading for s in sections] == ["Top", "Top > Sub", "Top > Atx"]
    assert "# indented code" in sections[1].text
    text = path.read_text()
    assert all(text[s.start : s.start + len(s.text)] == s.text for s in sections)


def test_gitignored_files_and_folders_are_skipped(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "build").mkdir(parents=True)
    (root / "sub").mkdir()
    (root / ".gitignore").write_text("build/\n*.log\nsecret.md\n")
    (root / "sub" / ".gitignore").write_text("draft-*.md\n!draft-keep.md\n")
    for name in ("keep.md", "app.log", "secret.md", "build/out.md", "sub/draft-1.md", "sub/draft-keep.md"):
        (root / name).write_text("text\n")
    skipped: dict[str, str] = {}
    found = {p.relative_to(root).as_posix() for p in discover_files([root], LoadConfig(), skipped=skipped)}
    assert found - {".gitignore", "sub/.gitignore"} == {"keep.md", "sub/draft-keep.md"}
    assert skipped[str(root / "build")] == f"ignored by {root / '.gitignore'}"
    assert skipped[str(root / "sub" / "draft-1.md")] == f"ignored by {root / 'sub' / '.gitignore'}"
    # a file named on the command line is read even when ignored
    assert list(discover_files([root / "app.log"], LoadConfig())) == [root / "app.log"]


def test_a_dcaignore_drops_what_git_keeps(tmp_path: Path) -> None:
    root = tmp_path / "docs"
    root.mkdir()
    (root / ".dcaignore").write_text("# the results log is not documentation\nRESULTS.md\n")
    for name in ("guide.md", "RESULTS.md"):
        (root / name).write_text("text\n")
    skipped: dict[str, str] = {}
    found = {p.name for p in discover_files([root], LoadConfig(), skipped=skipped)}
    assert "guide.md" in found and "RESULTS.md" not in found
    assert skipped[str(root / "RESULTS.md")] == f"ignored by {root / '.dcaignore'}"


def test_html_keeps_the_title_and_main_text_without_navigation(tmp_path: Path) -> None:
    path = tmp_path / "p.html"
    path.write_text(
        "<html><head><title>Bread Guide</title></head><body>"
        "<header><a href='/'>Home</a> | <a href='/about'>About</a></header>"
        "<nav><ul><li>Menu item</li></ul></nav>"
        "<main><h1>Baking</h1><p>Bread needs flour.</p><aside>Sponsored</aside></main>"
        "<div>Sidebar junk</div><footer>Copyright 2026</footer></body></html>"
    )
    sections = _sections(path)
    joined = "".join(s.text for s in sections)
    assert [s.heading for s in sections] == ["Bread Guide > Baking"]
    assert "Bread needs flour." in joined
    for junk in ("Home", "Menu item", "Sponsored", "Sidebar junk", "Copyright"):
        assert junk not in joined


def _docx(path: Path) -> Path:
    docx = pytest.importorskip("docx")
    document = docx.Document()
    document.add_heading("Handbook", level=0)
    document.add_heading("Cats", level=1)
    document.add_paragraph("Cats purr when content.")
    document.add_heading("Feeding", level=2)
    document.add_paragraph("Feed cats twice a day.")
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text, table.rows[0].cells[1].text = "food", "tuna"
    document.save(str(path))
    return path


def _pptx(path: Path) -> Path:
    pptx = pytest.importorskip("pptx")
    from pptx.util import Inches

    deck = pptx.Presentation()
    for title, body in (("Quarterly plan", "Ship the server."), ("Risks", "The CPU is small.")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    slide.notes_slide.notes_text_frame.text = "Mention the GPU."
    box = slide.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1))
    box.text_frame.text = "Extra box"
    deck.save(str(path))
    return path


def _epub(path: Path) -> Path:
    epub = pytest.importorskip("ebooklib.epub")
    book = epub.EpubBook()
    book.set_identifier("id1")
    book.set_title("Sea Stories")
    book.set_language("en")
    chapters = []
    for n, (title, text) in enumerate((("Whales", "Whales sing."), ("Sharks", "Sharks swim.")), start=1):
        chapter = epub.EpubHtml(title=title, file_name=f"c{n}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{title}</h1><p>{text}</p></body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.spine = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    epub.write_epub(str(path), book)
    return path


def _xlsx(path: Path) -> Path:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Prices"
    sheet.append(["item", "price"])
    sheet.append(["tuna", 3.5])
    workbook.save(str(path))
    return path


def test_docx_pptx_xlsx_and_epub_are_read_with_headings(tmp_path: Path) -> None:
    docx = _sections(_docx(tmp_path / "h.docx"))
    assert [s.heading for s in docx] == ["Handbook", "Handbook > Cats", "Handbook > Cats > Feeding"]
    assert "Feed cats twice a day." in docx[2].text and "food\ttuna" in docx[2].text
    slides = _sections(_pptx(tmp_path / "d.pptx"))
    assert [(s.heading, s.page) for s in slides] == [("Quarterly plan", 1), ("Risks", 2)]
    assert "Ship the server." in slides[0].text
    assert "Notes: Mention the GPU." in slides[1].text and "Extra box" in slides[1].text
    sheets = _sections(_xlsx(tmp_path / "p.xlsx"))
    assert [s.heading for s in sheets] == ["Prices"] and "tuna\t3.5" in sheets[0].text
    book = _sections(_epub(tmp_path / "b.epub"))
    assert [s.heading for s in book] == ["Whales", "Sharks"] and "Sharks swim." in book[1].text


def test_office_files_are_indexed_and_a_damaged_one_is_skipped(
    home: Paths, tmp_path: Path, embedder: HashEmbedder
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    _docx(folder / "h.docx")
    _pptx(folder / "d.pptx")
    _epub(folder / "b.epub")
    (folder / "broken.docx").write_bytes(b"PK\x03\x04 not really a zip")
    report = add_paths(home, "office", [folder], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    assert len(report.added) == 3 and "broken.docx" in " ".join(report.skipped)
    index = KnowledgeIndex.open(home, "office")
    try:
        headings = {row[0] for row in index.db.execute("SELECT heading FROM chunks")}
    finally:
        index.close()
    assert {"Handbook > Cats > Feeding", "Risks", "Whales"} <= headings


def test_a_zip_bomb_is_skipped_before_it_is_unpacked(
    home: Paths, tmp_path: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    from dca.knowledge import office

    monkeypatch.setattr(office, "MAX_UNPACKED_BYTES", 1_000_000)  # the real limit is 1 GiB; same check
    folder = tmp_path / "docs"
    folder.mkdir()
    _docx(folder / "fine.docx")
    with zipfile.ZipFile(folder / "bomb.docx", "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b"\0" * 5_000_000)  # 5 MB of zeros: ~5 kB on disk
    assert (folder / "bomb.docx").stat().st_size < 50_000
    report = add_paths(home, "bombs", [folder], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    assert len(report.added) == 1
    reason = next(why for path, why in report.skipped.items() if path.endswith("bomb.docx"))
    assert reason.startswith("it would unpack to 5 MB") and "zip bomb" in reason
