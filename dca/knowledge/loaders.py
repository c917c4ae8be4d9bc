"""Find the files to index and turn each into sections of text that know where they came from.

A section is a run of text under one heading (markdown, rst, HTML) or on one PDF page,
with its character offset in the extracted text of the document. Large text files are
read in blocks, so a 100 MB file never sits in memory whole.
"""

from __future__ import annotations

import codecs
import fnmatch
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dca.errors import SkipFile
from dca.knowledge.markup import html_sections, markdown_lines, parsed_markdown_lines, rst_sections
from dca.knowledge.sections import BLOCK_CHARS, PIECE_BYTES, Section, heading_sections

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".text", ".log", ".csv", ".tsv"}
MARKDOWN_SUFFIXES = {".md", ".markdown"}
RST_SUFFIXES = {".rst"}
HTML_SUFFIXES = {".html", ".htm"}
JSON_SUFFIXES = {".json", ".jsonl"}
CODE_SUFFIXES = {
    ".py",
    ".js",
    ".ts",
    ".tsx",
    ".jsx",
    ".java",
    ".c",
    ".h",
    ".cc",
    ".cpp",
    ".hpp",
    ".cs",
    ".go",
    ".rs",
    ".rb",
    ".php",
    ".swift",
    ".kt",
    ".scala",
    ".sh",
    ".bash",
    ".sql",
    ".r",
    ".m",
    ".lua",
    ".pl",
    ".toml",
    ".yaml",
    ".yml",
    ".ini",
    ".cfg",
    ".xml",
    ".css",
    ".tex",
}
OFFICE_SUFFIXES = {".docx", ".pptx", ".xlsx", ".epub"}  # read by dca.knowledge.office (the documents extra)
SUPPORTED_SUFFIXES = (
    TEXT_SUFFIXES
    | MARKDOWN_SUFFIXES
    | RST_SUFFIXES
    | HTML_SUFFIXES
    | JSON_SUFFIXES
    | CODE_SUFFIXES
    | OFFICE_SUFFIXES
    | {".pdf"}
)
_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__", "node_modules", ".venv", "venv", ".mypy_cache", ".pytest_cache"}


@dataclass(frozen=True, kw_only=True)
class LoadConfig:
    """What to pick up and how to read it."""

    include: tuple[str, ...] = ()  # globs a file must match (any); empty = all supported files
    exclude: tuple[str, ...] = ()  # globs that drop a file
    json_field: str = "text"  # the field holding the text in .json / .jsonl records
    # symlinks inside the given folders that lead outside them: followed (True) or skipped
    follow_symlinks: bool = False


def _matches(path: Path, root: Path, patterns: tuple[str, ...]) -> bool:
    relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
    return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(path.name, p) for p in patterns)


def normal_path(path: Path) -> Path:
    """The absolute path as the user gave it: ``..`` folded, symlinks not resolved. Documents
    are recorded under it, so --exclude, `index remove` and sync see the names the user sees."""
    return Path(os.path.abspath(path.expanduser()))


def printable(path: Path | str) -> str:
    """A path for messages and the index: a name that is not valid UTF-8 shows its bytes escaped."""
    return os.fsencode(str(path)).decode("utf-8", "backslashreplace")


def discover_files(paths: list[Path], config: LoadConfig, *, skipped: dict[str, str] | None = None) -> Iterator[Path]:
    """Every file under ``paths`` (recursive) that passes include/exclude, once each, in a
    stable order, under the path the user gave (see docs/knowledge.md, "Symlinks").

    Inside a given folder, a symlink (to a file or a folder) whose target is also inside the
    given paths is an alias: skipped, its target is indexed under its own name. One whose
    target is outside is skipped unless ``config.follow_symlinks``; then it is read under the
    link's name (folders are walked once: a loop ends). A path given on the command line is
    always read. Names that are not valid UTF-8 are skipped (SQLite stores text as UTF-8).
    Every skip lands in ``skipped`` (path -> reason)."""
    skipped = skipped if skipped is not None else {}
    roots = [normal_path(p) for p in paths]
    real_roots = [r.resolve() for r in roots]
    seen: set[str] = set()
    walked: set[Path] = set()

    def inside(target: Path) -> bool:
        return any(target == r or target.is_relative_to(r) for r in real_roots)

    def valid(path: Path) -> bool:
        try:
            str(path).encode("utf-8")
        except UnicodeEncodeError:
            skipped[printable(path)] = "the name is not valid UTF-8; rename the file to index it"
            return False
        return True

    def wanted(path: Path, root: Path) -> bool:
        if config.include and not _matches(path, root, config.include):
            return False
        return not (config.exclude and _matches(path, root, config.exclude))

    def link_allowed(path: Path) -> Path | None:
        try:
            target = path.resolve(strict=True)
        except (OSError, RuntimeError):
            skipped[printable(path)] = "broken symlink or symlink loop"
            return None
        if inside(target):
            skipped[printable(path)] = f"symlink to {printable(target)}, indexed under that name"
            return None
        if not config.follow_symlinks:
            skipped[printable(path)] = "symlink to outside the given folders (pass --follow-symlinks to read it)"
            return None
        return target

    def walk(folder: Path, root: Path, ignores: tuple[tuple[Path, Any], ...] = ()) -> Iterator[Path]:
        real = folder.resolve()
        if real in walked:
            skipped[printable(folder)] = "folder already read (a symlink loop, or a second link to it)"
            return
        walked.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped[printable(folder)] = f"unreadable folder ({exc.strerror or exc})"
            return
        for name in IGNORE_FILES:
            if any(entry.name == name and entry.is_file() for entry in entries):
                ignores = (*ignores, (folder / name, _gitignore(folder / name)))
        for entry in entries:
            path = folder / entry.name
            if ignores and (rules := _ignored_by(path, entry.is_dir(), ignores)) is not None:
                skipped[printable(path)] = f"ignored by {printable(rules)}"
                continue
            if entry.is_symlink():
                if link_allowed(path) is None:
                    continue
                if path.is_dir():
                    yield from walk(path, root, ignores)
                    continue
            elif entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS:
                    yield from walk(path, root, ignores)
                continue
            if not path.is_file() or not wanted(path, root) or not valid(path) or str(path) in seen:
                continue
            seen.add(str(path))
            yield path

    for root in roots:
        if root.is_file():
            if valid(root) and str(root) not in seen:
                seen.add(str(root))
                yield root
        else:
            yield from walk(root, root)


# Ignore files honoured in every folder walked, with git's rules: .gitignore, and .dcaignore
# for what git keeps but the index should not (a results log beside the user docs, drafts).
IGNORE_FILES = (".gitignore", ".dcaignore")


def _gitignore(path: Path) -> Any:
    """The patterns of a .gitignore file (git's own matching rules, through pathspec)."""
    import pathspec

    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _ignored_by(path: Path, is_dir: bool, ignores: tuple[tuple[Path, Any], ...]) -> Path | None:
    """The ignore file (.gitignore or .dcaignore) that drops ``path``, or None."""
    for rules, spec in ignores:
        relative = path.relative_to(rules.parent).as_posix() + ("/" if is_dir else "")
        if spec.match_file(relative):
            return rules
    return None


def load_sections(path: Path, config: LoadConfig) -> Iterator[Section]:
    """Sections of ``path``'s text; raises SkipFile for unsupported, binary or broken files."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise SkipFile(f"unsupported type {suffix or '(no extension)'}")
    if suffix == ".pdf":
        yield from _pdf_sections(path)
        return
    if suffix in OFFICE_SUFFIXES:
        from dca.knowledge.office import office_sections

        yield from office_sections(path)
        return
    if _looks_binary(path):
        raise SkipFile("binary content")
    if suffix in HTML_SUFFIXES:
        yield from html_sections(_read_text(path))
    elif suffix in JSON_SUFFIXES:
        yield from _json_sections(path, config.json_field)
    elif suffix in MARKDOWN_SUFFIXES:
        if path.stat().st_size <= _PARSE_BYTES:
            yield from heading_sections(parsed_markdown_lines(_read_text(path)))
        else:  # too big to parse whole: ATX (#) headings line by line, memory bounded
            yield from heading_sections(markdown_lines(_read_blocks(path)))
    elif suffix in RST_SUFFIXES:
        yield from rst_sections(_read_text(path))
    else:
        yield from heading_sections((line, None) for line in _read_blocks(path))


def _looks_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(8192)


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        log.warning("%s is not valid UTF-8; undecodable bytes were replaced", path)
        return data.decode("utf-8", errors="replace")


def _read_text(path: Path) -> str:
    return _decode(path.read_bytes(), path)


def _read_blocks(path: Path) -> Iterator[str]:
    """Lines of a text file, a line longer than 64 kB in pieces: memory stays bounded whatever
    the line lengths (a minified .js or .json file is one line)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with path.open("rb") as handle:
        while raw := handle.readline(PIECE_BYTES):
            try:
                text = decoder.decode(raw)
            except UnicodeDecodeError:
                if decoder.errors == "strict":
                    log.warning("%s is not valid UTF-8; undecodable bytes were replaced", path)
                decoder = codecs.getincrementaldecoder("utf-8")("replace")
                text = decoder.decode(raw)
            if text:
                yield text
        try:
            tail = decoder.decode(b"", final=True)
        except UnicodeDecodeError:  # the file ends inside a character
            if decoder.errors == "strict":
                log.warning("%s is not valid UTF-8; undecodable bytes were replaced", path)
            tail = "\ufffd"
        if tail:
            yield tail


def _read_lines(path: Path) -> Iterator[str]:
    """Whole lines (a JSONL record must be parsed whole: memory follows the longest record)."""
    warned = False
    with path.open("rb") as handle:
        for raw in handle:
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                if not warned:
                    log.warning("%s is not valid UTF-8; undecodable bytes were replaced", path)
                    warned = True
                yield raw.decode("utf-8", errors="replace")


_PARSE_BYTES = 16 << 20  # Markdown files up to this size are parsed whole (setext headings too)


def _json_sections(path: Path, field: str) -> Iterator[Section]:
    offset = 0
    if path.suffix.lower() == ".jsonl":
        records: Iterator[tuple[int, object]] = (
            (n, _parse_json_line(line, path, n)) for n, line in enumerate(_read_lines(path), start=1) if line.strip()
        )
    else:
        try:
            data = json.loads(_read_text(path))
        except json.JSONDecodeError as exc:
            raise SkipFile(f"invalid JSON ({exc})") from None
        records = enumerate(data if isinstance(data, list) else [data], start=1)
    found = 0
    for number, record in records:
        if not isinstance(record, dict) or not isinstance(record.get(field), str):
            continue
        text = record[field] + "\n"
        found += 1
        for i in range(0, len(text), BLOCK_CHARS):  # a huge record in blocks, as other sections
            yield Section(text=text[i : i + BLOCK_CHARS], start=offset + i, heading=f"record {number}")
        offset += len(text)
    if not found:
        raise SkipFile(f"no record has a string field {field!r} (set --json-field)")


def _parse_json_line(line: str, path: Path, number: int) -> object:
    try:
        return json.loads(line)
    except json.JSONDecodeError:
        log.warning("%s line %d is not valid JSON; skipped", path, number)
        return None


def _pdf_sections(path: Path) -> Iterator[Section]:
    try:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        reader = PdfReader(str(path))
        pages = list(reader.pages)
    except Exception as exc:
        raise SkipFile(f"unreadable PDF ({type(exc).__name__}: {exc})") from None
    offset = 0
    for number, page in enumerate(pages, start=1):
        try:
            text = page.extract_text() or ""
        except (PyPdfError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s page %d could not be read (%s); skipped", path, number, exc)
            continue
        if text.strip():
            text += "\n"
            yield Section(text=text, start=offset, page=number)
            offset += len(text)
