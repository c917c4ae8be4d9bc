"""Readers for the evaluation datasets, with errors that name the bad line or field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dca.errors import DatasetError
from dca.files import jsonl_objects


@dataclass(frozen=True, kw_only=True)
class SquadQuestion:
    id: str
    question: str
    answers: tuple[str, ...]  # empty for unanswerable questions
    paragraph: int  # index into the pooled paragraph list


@dataclass(frozen=True, kw_only=True)
class SquadCorpus:
    paragraphs: tuple[str, ...]
    questions: tuple[SquadQuestion, ...]


def _read(path: Path, what: str) -> str:
    """The dataset file's text; a missing file, a folder or bytes that are not UTF-8 are one clear error."""
    if path.is_dir():
        raise DatasetError(f"{path} is a folder; give the {what} file itself with --data")
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist; give the path of the {what} file with --data") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path} is not UTF-8 text (byte {exc.start}); is it the right file?") from None
    except OSError as exc:
        raise DatasetError(f"{path} cannot be read ({exc.strerror or exc})") from None


def _json(path: Path, what: str) -> object:
    try:
        return json.loads(_read(path, what))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not JSON ({exc.msg}, line {exc.lineno}); give a {what} file") from None


def load_squad2(path: Path) -> SquadCorpus:
    """SQuAD 2.0 JSON: all paragraphs pooled, each question pointing at its own paragraph."""
    top = _json(path, "SQuAD 2.0 JSON")
    data = top.get("data") if isinstance(top, dict) else None
    if not isinstance(data, list):
        raise DatasetError(f"{path} is not SQuAD 2.0 JSON (a top-level 'data' list is expected)")
    paragraphs: list[str] = []
    questions: list[SquadQuestion] = []
    for number, article in enumerate(data, start=1):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs", []), list):
            raise DatasetError(f"{path}: article {number} is not an object with a 'paragraphs' list")
        for paragraph in article.get("paragraphs", []):
            try:
                context = str(paragraph["context"])
                qas = list(paragraph["qas"])
                index = len(paragraphs)
                parsed = [
                    SquadQuestion(
                        id=str(qa["id"]),
                        question=str(qa["question"]),
                        answers=tuple(dict.fromkeys(str(a["text"]) for a in qa.get("answers", []))),
                        paragraph=index,
                    )
                    for qa in qas
                ]
            except (KeyError, TypeError, AttributeError) as exc:
                raise DatasetError(
                    f"{path}: a paragraph or question of article {number} ({article.get('title', '?')!r}) "
                    f"is malformed (missing or wrong {exc})"
                ) from None
            paragraphs.append(context)
            questions.extend(parsed)
    if not questions:
        raise DatasetError(f"{path} holds no SQuAD questions")
    return SquadCorpus(paragraphs=tuple(paragraphs), questions=tuple(questions))


def write_squad_corpus(corpus: SquadCorpus, folder: Path) -> list[Path]:
    """:func:`write_paragraphs` for a SQuAD corpus; returns the files (the benchmarks ingest them)."""
    write_paragraphs(corpus.paragraphs, folder)
    return [folder / f"p{number:05d}.txt" for number in range(len(corpus.paragraphs))]


def paragraph_of(path: str) -> int:
    """The paragraph number of a file written by :func:`write_paragraphs`."""
    return int(Path(path).stem[1:])


@dataclass(frozen=True, kw_only=True)
class Example:
    """One evaluation question."""

    id: str
    question: str
    answers: tuple[str, ...]  # acceptable answers; empty = unanswerable (SQuAD 2.0)
    support: tuple[int, ...] = ()  # corpus paragraphs that hold the answer
    solution: str = ""  # a reference solution, where the dataset has one (GSM8K)


def _jsonl(path: Path, fields: tuple[str, ...]) -> list[dict[str, object]]:
    rows = []
    for number, row in jsonl_objects(path, _read(path, "dataset"), DatasetError):
        missing = [f for f in fields if f not in row]
        if missing:
            raise DatasetError(f"{path} line {number} has no field {missing[0]!r} (expected {', '.join(fields)})")
        rows.append(row)
    if not rows:
        raise DatasetError(f"{path} holds no examples")
    return rows


def load_gsm8k(path: Path) -> list[Example]:
    """GSM8K JSONL: question, answer ("... #### 72")."""
    out = []
    for number, row in enumerate(_jsonl(path, ("question", "answer")), start=1):
        answer = str(row["answer"])
        if "####" not in answer:
            raise DatasetError(f"{path} line {number}: the answer has no '####' final number")
        out.append(
            Example(
                id=f"gsm8k-{number}",
                question=str(row["question"]),
                answers=(answer.rsplit("####", 1)[1].strip(),),
                solution=answer,
            )
        )
    return out


def load_math500(path: Path) -> list[Example]:
    """MATH-500 JSONL: problem, answer (and unique_id)."""
    return [
        Example(id=str(row.get("unique_id", f"math-{n}")), question=str(row["problem"]), answers=(str(row["answer"]),))
        for n, row in enumerate(_jsonl(path, ("problem", "answer")), start=1)
    ]


def squad_examples(corpus: SquadCorpus) -> list[Example]:
    return [Example(id=q.id, question=q.question, answers=q.answers, support=(q.paragraph,)) for q in corpus.questions]


@dataclass(frozen=True, kw_only=True)
class HotpotData:
    paragraphs: tuple[str, ...]  # "Title\nsentence sentence ...", pooled and deduplicated by title
    examples: tuple[Example, ...]


def load_hotpotqa(path: Path) -> HotpotData:
    """HotpotQA (distractor) JSON: question, answer, supporting_facts, context."""
    data = _json(path, "HotpotQA JSON")
    titles: dict[str, int] = {}
    paragraphs: list[str] = []
    examples = []
    for number, item in enumerate(data if isinstance(data, list) else [], start=1):
        if not isinstance(item, dict):
            raise DatasetError(f"{path} item {number} is not a JSON object")
        for field in ("question", "answer", "supporting_facts", "context"):
            if field not in item:
                raise DatasetError(f"{path} item {number} has no field {field!r}")
        try:
            context = item["context"]
            pairs = zip(context["title"], context["sentences"], strict=True) if isinstance(context, dict) else context
            found = [(str(title), "".join(map(str, sentences)).strip()) for title, sentences in pairs]
            facts = item["supporting_facts"]
            support_titles = [str(t) for t in (facts["title"] if isinstance(facts, dict) else [f[0] for f in facts])]
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise DatasetError(
                f"{path} item {number}: malformed context or supporting_facts ({type(exc).__name__}: {exc}); "
                "expected [title, [sentences]] pairs"
            ) from None
        for title, text in found:
            if title not in titles:
                titles[title] = len(paragraphs)
                paragraphs.append(f"{title}\n{text}")
        support = tuple(sorted({titles[t] for t in support_titles if t in titles}))
        examples.append(
            Example(
                id=str(item.get("_id", item.get("id", f"hotpot-{number}"))),
                question=str(item["question"]),
                answers=(str(item["answer"]),),
                support=support,
            )
        )
    if not examples:
        raise DatasetError(f"{path} holds no HotpotQA items (a JSON list of objects is expected)")
    return HotpotData(paragraphs=tuple(paragraphs), examples=tuple(examples))


def write_paragraphs(paragraphs: Sequence[str], folder: Path) -> None:
    """One text file per paragraph (``p00042.txt``): a retrieved chunk names its paragraph."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, text in enumerate(paragraphs):
        file = folder / f"p{number:05d}.txt"
        if not file.exists() or file.read_text(encoding="utf-8") != text:
            file.write_text(text, encoding="utf-8")
