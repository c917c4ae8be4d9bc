"""Training examples from a traces file: tokens of prompt + response, loss on the response only,
packed into fixed-length sequences.

Tokens come from llama.cpp's own tokenizer and chat template (the runtime loaded with
``vocab_only``), so the adapter is trained on exactly the tokens it sees at inference.
The prefix dca forces at inference (``<think>\\n`` for thoughts, the code fence for
programs) belongs to the prompt: it is never a training target.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dca.errors import TrainError
from dca.files import jsonl_objects
from dca.reasoning.program import FENCE
from dca.reasoning.think import OPEN

IGNORE = -100  # label of a token that is not a training target


@dataclass(frozen=True)
class Example:
    tokens: list[int]
    labels: list[int]  # IGNORE on the prompt


EASY_SHARE = 0.75  # a question whose samples were right at least this often is "easy"


def jsonl_rows(path: Path, *, made_by: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of every non-empty line of a JSONL file that ``made_by`` writes;
    a missing file, or a line that is not a JSON object, is one TrainError naming it."""
    if not path.is_file():
        raise TrainError(f"{path} does not exist; make it with `{made_by}`")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TrainError(f"{path} is not UTF-8 text (byte {exc.start}); is it a file of `{made_by}`?") from None
    yield from jsonl_objects(path, text, TrainError, f"; is it a file of `{made_by}`?")


# What every reader of judged samples needs of a collected question and of each sample; pairs
# need more (PAIR_FIELDS).
JUDGED_FIELDS: tuple[dict[str, type], dict[str, type]] = (
    {"question": str, "samples": list},
    {"response": str, "final": str, "correct": bool},
)


def read_judged(path: Path, fields: tuple[dict[str, type], dict[str, type]] = JUDGED_FIELDS) -> list[dict[str, Any]]:
    """The questions of a ``dca train collect`` file with every judged sample (pairs, probe); a
    line lacking one of ``fields`` (the question's, each sample's) is refused in one line."""
    rows = []
    for number, row in jsonl_rows(path, made_by="dca train collect"):
        if "samples" not in row:
            raise TrainError(
                f"{path} line {number} has no judged samples: it was collected before `dca train collect` kept "
                "every sample; collect again into a new --out"
            )
        _check_judged(path, number, row, fields)
        rows.append(row)
    return rows


def _check_judged(
    path: Path, number: int, row: dict[str, Any], fields: tuple[dict[str, type], dict[str, type]]
) -> None:
    """One line naming what a hand-edited or foreign traces line lacks, instead of a KeyError later."""
    question, sample_fields = fields
    for key, kind in question.items():
        if not isinstance(row.get(key), kind):
            raise TrainError(
                f"{path} line {number}: '{key}' is missing or not a {kind.__name__} "
                "(expected `dca train collect` output)"
            )
    for at, sample in enumerate(row["samples"], 1):
        bad = [
            k
            for k, kind in sample_fields.items()
            if not isinstance(sample, dict) or not isinstance(sample.get(k), kind)
        ]
        if bad:
            raise TrainError(
                f"{path} line {number}, sample {at}: {', '.join(repr(k) for k in bad)} missing or of the wrong type "
                "(expected `dca train collect` output)"
            )


def read_traces(path: Path, *, max_easy: int = 0) -> list[dict[str, Any]]:
    """The kept traces of a ``dca train collect`` file; errors name the line. ``max_easy`` > 0
    keeps at most that many (the shortest) of an easy question's traces: most of what they
    teach, greedy decoding already does, and the hard questions are where the signal is."""
    traces = []
    for number, row in jsonl_rows(path, made_by="dca train collect"):
        if not isinstance(row.get("traces"), list):
            raise TrainError(f"{path} line {number} has no 'traces' list (expected `dca train collect` output)")
        kept = row["traces"]
        drawn, correct = row.get("drawn"), row.get("correct")
        if max_easy and isinstance(drawn, int) and isinstance(correct, int) and drawn > 1:
            kept = kept[:max_easy] if correct >= EASY_SHARE * drawn else kept
        for trace in kept:
            if not isinstance(trace, dict) or not {"messages", "response"} <= set(trace):
                raise TrainError(f"{path} line {number}: a trace lacks 'messages' or 'response'")
            traces.append(trace)
    if not traces:
        raise TrainError(f"{path} holds no traces; collect some with `dca train collect`")
    return traces


def _forced_prefix(response: str) -> str:
    for prefix in (OPEN, FENCE):
        if response.startswith(prefix):
            return prefix
    return ""


def encode(tokenizer: Any, trace: dict[str, Any], max_len: int) -> Example:
    """Prompt tokens (ignored) + response tokens + end of turn (targets), cut to ``max_len``."""
    response = str(trace["response"])
    prefix = _forced_prefix(response)
    prompt = tokenizer.chat_prompt(trace["messages"]) + prefix
    prompt_tokens = tokenizer.tokenize(prompt)
    full = tokenizer.tokenize(prompt + response[len(prefix) :])
    cut = len(prompt_tokens)
    if full[:cut] != prompt_tokens:  # a token merged across the boundary: keep the prompt's own split
        full = prompt_tokens + full[cut:]
    full = [*full, tokenizer.llm.token_eos()]
    labels = [IGNORE] * cut + full[cut:]
    return Example(tokens=full[:max_len], labels=labels[:max_len])


def pack(examples: list[Example], seq_len: int, seed: int) -> list[Example]:
    """Shuffle (seeded) and pack whole examples into sequences of at most ``seq_len`` tokens."""
    order = list(examples)
    random.Random(seed).shuffle(order)
    packed: list[Example] = []
    tokens: list[int] = []
    labels: list[int] = []
    for example in order:
        if tokens and len(tokens) + len(example.tokens) > seq_len:
            packed.append(Example(tokens, labels))
            tokens, labels = [], []
        tokens = tokens + example.tokens
        labels = labels + example.labels
    if tokens:
        packed.append(Example(tokens, labels))
    return packed
