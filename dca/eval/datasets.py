"""Readers for the evaluation datasets, with errors that name the bad line or field."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from dca.errors import DcaError


class DatasetError(DcaError):
    """A dataset file is missing or not in the expected format."""


@dataclass(frozen=True, kw_only=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # empty for unanswerable questions
    paragraph: int  # index into the pooled paragraph list


@dataclass(frozen=True, kw_only=True)
class SquadCorpus:
    paragraphs: tuple[str, ...]
    titles: tuple[str, ...]  # article title of each paragraph
    questions: tuple[SquadQuestion, ...]


def load_squad2(path: Path) -> SquadCorpus:
    """SQuAD 2.0 JSON: all paragraphs pooled, each question pointing at its own paragraph."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist; give the path of a SQuAD 2.0 JSON file") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is not SQuAD 2.0 JSON (top-level 'data' list expected: {exc})") from None
    paragraphs: list[str] = []
    titles: list[str] = []
    questions: list[SquadQuestion] = []
    for article in data:
        for paragraph in article.get("paragraphs", []):
            try:
                context = paragraph["context"]
                qas = paragraph["qas"]
            except KeyError as exc:
                raise DatasetError(f"{path}: a paragraph of {article.get('title', '?')!r} lacks {exc}") from None
            index = len(paragraphs)
            paragraphs.append(context)
            titles.append(str(article.get("title", "")))
            for qa in qas:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                questions.append(SquadQuestion(id=qa["id"], question=qa["question"], answers=answers, paragraph=index))
    return SquadCorpus(paragraphs=tuple(paragraphs), titles=tuple(titles), questions=tuple(questions))


def write_squad_corpus(corpus: SquadCorpus, folder: Path) -> list[Path]:
    """One text file per paragraph (``p00042.txt``), so a retrieved chunk names its paragraph."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for number, text in enumerate(corpus.paragraphs):
        file = folder / f"p{number:05d}.txt"
        if not file.exists() or file.read_text(encoding="utf-8") != text:
            file.write_text(text, encoding="utf-8")
        files.append(file)
    return files


def paragraph_of(path: str) -> int:
    """The paragraph number of a file written by :func:`write_squad_corpus`."""
    return int(Path(path).stem[1:])
