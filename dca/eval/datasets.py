"""Readers for the evaluation datasets, with errors that name the bad line or field."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from dca.errors import DatasetError


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


def load_squad2(path: Path) -> SquadCorpus:
    """SQuAD 2.0 JSON: all paragraphs pooled, each question pointing at its own paragraph."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist; give the path of a SQuAD 2.0 JSON file") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path} is not SQuAD 2.0 JSON (top-level 'data' list expected: {exc})") from None
    paragraphs: list[str] = []
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
            for qa in qas:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                questions.append(SquadQuestion(id=qa["id"], question=qa["question"], answers=answers, paragraph=index))
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
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; give the path of the dataset file with --data")
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path} line {number} is not JSON ({exc.msg})") from None
            missing = [f for f in fields if f not in row]
            if missing:
                raise DatasetError(f"{path} line {number} has no field {missing[0]!r} (expected {', '.join(fields)})")
            rows.append(row)
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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist; give the path of a HotpotQA JSON file") from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path} is not JSON ({exc.msg})") from None
    titles: dict[str, int] = {}
    paragraphs: list[str] = []
    examples = []
    for number, item in enumerate(data if isinstance(data, list) else [], start=1):
        for field in ("question", "answer", "supporting_facts", "context"):
            if field not in item:
                raise DatasetError(f"{path} item {number} has no field {field!r}")
        context = item["context"]
        pairs = zip(context["title"], context["sentences"], strict=True) if isinstance(context, dict) else context
        for title, sentences in pairs:
            if title not in titles:
                titles[title] = len(paragraphs)
                paragraphs.append(f"{title}\n{''.join(sentences).strip()}")
        facts = item["supporting_facts"]
        support_titles = facts["title"] if isinstance(facts, dict) else [f[0] for f in facts]
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
