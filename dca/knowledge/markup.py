"""Headings of marked-up text: Markdown (a CommonMark parser, or ``#`` lines for files too big
to parse whole), reStructuredText underlines and HTML h1-h6 (with the page's main text only)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser

from dca.knowledge.sections import Heading, Section, heading_sections

_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def parsed_markdown_lines(text: str) -> Iterator[tuple[str, Heading | None]]:
    """Each line with its heading, found by a CommonMark parser: ``#`` headings and underlined
    (setext) ones, never a ``#`` inside code."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parse(text)
    headings: dict[int, Heading] = {}
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None and i + 1 < len(tokens):
            headings[token.map[0]] = (int(token.tag[1]), " ".join(tokens[i + 1].content.split()))
    pieces = text.split("\n")  # the parser counts lines at "\n" only
    for number, piece in enumerate(pieces):
        line = piece + "\n" if number < len(pieces) - 1 else piece
        if line:
            yield line, headings.get(number)


def markdown_lines(lines: Iterator[str]) -> Iterator[tuple[str, Heading | None]]:
    """Each line with its heading, ignoring '#' lines inside fenced code."""
    in_fence = False
    at_start = True  # a piece of a long line is not the start of a line
    for line in lines:
        if at_start and line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        match = None if in_fence or not at_start else _MD_HEADING.match(line)
        at_start = line.endswith("\n")
        yield line, ((len(match.group(1)), match.group(2)) if match else None)


_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+<>:.])\1{2,}\s*$")


def rst_sections(text: str) -> Iterator[Section]:
    lines = text.splitlines(keepends=True)
    levels: list[str] = []
    headings: dict[int, Heading] = {}
    for i in range(1, len(lines)):
        title = lines[i - 1].strip()
        match = _RST_UNDERLINE.match(lines[i])
        if match and title and not _RST_UNDERLINE.match(lines[i - 1]) and len(lines[i].strip()) >= len(title):
            char = match.group(1)
            if char not in levels:
                levels.append(char)
            headings[i - 1] = (levels.index(char) + 1, title)

    yield from heading_sections((line, headings.get(i)) for i, line in enumerate(lines))


class _HTMLText(HTMLParser):
    """Visible text of an HTML page, split at h1-h6 headings: the page's <title> is kept, and
    navigation, headers and footers of the page, asides and forms are left out; when the page
    marks its <main> content, only that is read."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "head", "nav", "footer", "aside", "form", "svg"})
    _BREAK = frozenset({"p", "div", "br", "li", "tr", "section", "article", "pre", "blockquote", "table"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[tuple[int, str, bool]] = []  # (heading level or 0, text, inside <main>)
        self.title = ""
        self.has_main = False
        self._skip = 0
        self._main = 0
        self._in_title = False
        self._heading: int = 0

    def _add(self, level: int, text: str) -> None:
        self.parts.append((level, text, self._main > 0))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag == "main" or (tag == "div" and ("role", "main") in attrs):
            self._main += 1
            self.has_main = True
        if tag in self._SKIP or (tag == "header" and not self._main):
            self._skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = int(tag[1])
            self._add(self._heading, "")
        elif tag in self._BREAK:
            self._add(0, "\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag == "main" and self._main:
            self._main -= 1
        if tag in self._SKIP or (tag == "header" and not self._main):
            self._skip = max(0, self._skip - 1)
        elif re.fullmatch(r"h[1-6]", tag):
            self._heading = 0
            self._add(0, "\n")
        elif tag in self._BREAK:
            self._add(0, "\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
            return
        if self._skip:
            return
        if self._heading and self.parts and self.parts[-1][0] == self._heading:
            level, text, main = self.parts[-1]
            self.parts[-1] = (level, text + data, main)
        else:
            self._add(0, data)


def html_lines(html: str) -> tuple[str, list[tuple[str, Heading | None]]]:
    """An HTML page's <title>, and the lines of its text, each with the heading it starts."""
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    lines: list[tuple[str, Heading | None]] = []
    for level, text, main in parser.parts:
        if not main and parser.has_main:
            continue
        if level:
            heading = " ".join(text.split())
            lines.append((f"{heading}\n", (level, heading)))
        else:
            lines.extend((line, None) for line in text.splitlines(keepends=True))
    return " ".join(parser.title.split()), lines


def html_sections(html: str) -> Iterator[Section]:
    title, lines = html_lines(html)
    first = next((heading[1] for _, heading in lines if heading), "")
    # the title heads every section (unless the first heading repeats it)
    yield from heading_sections(iter(lines), root=title if title != first else "")
