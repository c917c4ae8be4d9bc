"""The evaluation tasks: how each loads its data, asks its questions and scores the answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dca.answer import is_refusal
from dca.errors import ConfigError
from dca.eval.datasets import (
    Example,
    load_gsm8k,
    load_hotpotqa,
    load_math500,
    load_squad2,
    squad_examples,
)
from dca.eval.metrics import exact_match, f1_score, recall_at_k
from dca.reasoning.answers import answers_match, extract_answer

MATH_SYSTEM = (
    "Solve the problem step by step. Keep the reasoning short. "
    "End with a line of the form: The answer is <final answer>."
)
MATH500_SYSTEM = "Solve the problem step by step. Put the final answer in \\boxed{}."
SHORT_SYSTEM = "Answer the question with a short phrase: a name, a number, a date or yes/no. Do not explain."


@dataclass(frozen=True, kw_only=True)
class TaskData:
    examples: list[Example]
    paragraphs: tuple[str, ...] = ()  # the pooled corpus for retrieval tasks


def _squad2(path: Path) -> TaskData:
    corpus = load_squad2(path)
    return TaskData(examples=squad_examples(corpus), paragraphs=corpus.paragraphs)


def _hotpotqa(path: Path) -> TaskData:
    data = load_hotpotqa(path)
    return TaskData(examples=list(data.examples), paragraphs=data.paragraphs)


@dataclass(frozen=True)
class Task:
    """A benchmark: its data loader, default mode, prompt and scoring."""

    name: str
    modes: tuple[str, ...]  # first = default
    primary: str  # the headline metric in reports
    system: str  # closed-book system prompt
    load: Callable[[Path], TaskData]  # the dataset file -> examples (and the pooled corpus)

    def score(self, example: Example, prediction: str, retrieved: Sequence[int] | None, k: int) -> dict[str, float]:
        """Metrics of one answer (1.0/0.0 for correctness, fractions for F1 and recall).

        ``retrieved`` is None in closed-book mode: no retrieval recall is reported then.
        """
        if self.name in ("gsm8k", "math500"):
            return {
                "accuracy": float(answers_match(prediction, example.answers[0])),
                "extracted": 0.0 if not extract_answer(prediction) else 1.0,
            }
        if not example.answers:  # SQuAD 2.0 unanswerable: right only when the answer says so
            refused = float(is_refusal(prediction))
            return {"em": refused, "f1": refused, "correct": refused}
        scores = {"em": exact_match(prediction, example.answers), "f1": f1_score(prediction, example.answers)}
        scores["correct"] = float(scores["em"] or any(a.lower() in prediction.lower() for a in example.answers))
        if retrieved is not None and example.support:
            scores[f"recall@{k}"] = recall_at_k(list(retrieved), list(example.support), k)
        return scores


TASKS = {
    "gsm8k": Task("gsm8k", ("closed-book",), "accuracy", MATH_SYSTEM, lambda path: TaskData(examples=load_gsm8k(path))),
    "math500": Task(
        "math500", ("closed-book",), "accuracy", MATH500_SYSTEM, lambda path: TaskData(examples=load_math500(path))
    ),
    "squad2": Task("squad2", ("rag", "closed-book"), "f1", SHORT_SYSTEM, _squad2),
    "hotpotqa": Task("hotpotqa", ("rag", "closed-book"), "f1", SHORT_SYSTEM, _hotpotqa),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    return TASKS[name]
