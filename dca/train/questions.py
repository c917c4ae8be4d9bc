"""Question-answer pairs made from any index, for teaching the model when the sources hold an
answer and when they do not (``dca train questions``).

For a sample of an index's chunks, the model reads one chunk and writes a question the chunk
answers, with the answer as a short phrase copied from it. A pair is kept only when its answer
is a span of the chunk (checked word for word, no model judgement) and the question does not
give the answer away. Asked with the chunk among the sources, a kept pair is an
answer-and-cite example; asked with the chunk removed (the rest of its document kept), a
"not in the sources" example: any user corpus makes both, as many as it has chunks.

One JSONL line per chunk read (kept or not, and why), appended as each is done: a rerun of the
same command skips the chunks already read.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dca.config import Paths
from dca.errors import ConfigError, TrainError
from dca.files import complete_jsonl_lines

PROMPT = (
    "Read the passage and write one question that the passage answers, about a specific fact in "
    "it, and the answer: a short phrase (a name, a number, a date or a few words) copied exactly "
    "from the passage. Reply in exactly two lines:\nQuestion: ...\nAnswer: ...\n\nPassage:\n{text}"
)
_LINE = re.compile(r"^\s*(question|answer)\s*:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)
_WORD = re.compile(r"\w+")
MAX_ANSWER_WORDS = 12
ProgressFn = Callable[[int, int], None]  # (chunks read, chunks to read)


@dataclass(frozen=True, kw_only=True)
class QuestionsConfig:
    """Which chunks of which index are read, and by which model."""

    index: str
    limit: int = 100  # chunks read (a sample, the same for the same seed)
    min_chars: int = 200  # chunks shorter than this hold too little to ask about; skipped
    seed: int = 0
    model: str | None = None  # None: the default generator
    max_tokens: int = 96

    def __post_init__(self) -> None:
        if self.limit < 1 or self.min_chars < 1 or self.max_tokens < 16:
            raise ConfigError("limit and min_chars must be at least 1, max_tokens at least 16")


def parse_pair(text: str) -> tuple[str, str] | None:
    """(question, answer) from the model's two lines, or None when it did not write both.

    >>> parse_pair("Question: Who founded Rome?\\nAnswer: Romulus.")
    ('Who founded Rome?', 'Romulus')
    >>> parse_pair("Rome was founded by Romulus.") is None
    True
    """
    found = {key.lower(): value for key, value in _LINE.findall(text)}
    question, answer = found.get("question", ""), found.get("answer", "").strip().strip('"').rstrip(".").strip()
    return (question, answer) if question and answer else None


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def judge_pair(question: str, answer: str, chunk: str) -> str:
    """Why a pair is refused ("" when it is kept): its answer must be a span of the chunk's words
    and at most MAX_ANSWER_WORDS long, and the question must not contain the answer.

    >>> judge_pair("Who founded Rome?", "Romulus", "Rome was founded by Romulus in 753 BC.")
    ''
    >>> judge_pair("Who founded Rome?", "Remus", "Rome was founded by Romulus in 753 BC.")
    'the answer is not in the passage'
    """
    words, passage = _words(answer), _words(chunk)
    if not words:
        return "the answer has no words"
    if len(words) > MAX_ANSWER_WORDS:
        return "the answer is not a short phrase"
    if not any(passage[i : i + len(words)] == words for i in range(len(passage) - len(words) + 1)):
        return "the answer is not in the passage"
    asked = _words(question)
    if any(asked[i : i + len(words)] == words for i in range(len(asked) - len(words) + 1)):
        return "the question gives the answer away"
    return ""


def sample_chunks(store: Any, config: QuestionsConfig) -> list[dict[str, Any]]:
    """The chunks read: every chunk of at least ``min_chars`` characters, in a seeded order, the
    first ``limit``; a corpus with none is one clear error."""
    chunks = []
    for path in sorted(store.documents()):
        for number, chunk in enumerate(store.document_chunks(path)[0]):
            if len(chunk.text.strip()) >= config.min_chars:
                chunks.append(
                    {"id": f"{path}#{number}", "path": path, "start": chunk.start, "end": chunk.end, "text": chunk.text}
                )
    if not chunks:
        raise TrainError(
            f"index {config.index!r} has no chunk of {config.min_chars} characters or more to ask about; "
            "add documents, or lower --min-chars"
        )
    random.Random(config.seed).shuffle(chunks)
    return chunks[: config.limit]


def make_questions(
    config: QuestionsConfig,
    *,
    out: Path,
    paths: Paths | None = None,
    generator: Any = None,
    progress: ProgressFn | None = None,
) -> dict[str, int]:
    """Read the chunks (resuming ``out``), write one line each; returns the counts."""
    from dca.knowledge.stores import open_store
    from dca.runtime.generation import GenerationConfig

    paths = paths or Paths.resolve()
    store = open_store(paths, config.index)
    try:
        chunks = sample_chunks(store, config)
    finally:
        store.close()
    if out.exists() and not out.is_file():
        raise TrainError(f"--out {out} is a folder; give a file for the questions")
    done = {json.loads(line)["id"] for line in complete_jsonl_lines(out)}
    todo = [c for c in chunks if c["id"] not in done]
    if todo and generator is None:
        from dca.runtime.remote import load_generator

        generator = load_generator(config.model, paths=paths)
    gen = GenerationConfig(max_tokens=config.max_tokens, temperature=0.0, seed=config.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    already = len(chunks) - len(todo)
    for number, chunk in enumerate(todo, start=1):
        prompt = generator.chat_prompt([{"role": "user", "content": PROMPT.format(text=chunk["text"])}])
        reply = "".join(generator.stream(prompt, gen))
        pair = parse_pair(reply)
        why = judge_pair(*pair, chunk["text"]) if pair else "no question and answer in the reply"
        row = {**chunk, "question": pair[0] if pair else "", "answer": pair[1] if pair else "", "kept": not why}
        row["refused"] = why or None
        with out.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        if progress:
            progress(already + number, len(chunks))
    return {"chunks_read": len(chunks), "pairs_kept": _kept(out)}


def _kept(out: Path) -> int:
    return sum(json.loads(line)["kept"] for line in complete_jsonl_lines(out))
