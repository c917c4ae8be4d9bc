"""Verification: score candidate solutions and keep the best (best-of-N).

A ``Scorer`` maps (question, solution) to a score in [0, 1]. The first one asks the model
itself whether a solution is correct and reads the probability of "Yes" from its next-token
distribution; a trained verifier adapter plugs in through the same interface later.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from dca.reasoning.events import Sample
from dca.runtime.generation import GenerationConfig, Generator

JUDGE_SYSTEM = "You are a careful grader. You check solutions to problems and say whether they are correct."
JUDGE_USER = (
    "Problem:\n{question}\n\nProposed solution:\n{solution}\n\n"
    "Is the proposed solution correct, with the right final answer? Answer Yes or No."
)
MAX_SOLUTION_CHARS = 2400  # a long trace is cut from the front: its end holds the answer


def solution_text(sample: Sample) -> str:
    """What a verifier is shown of a candidate: a program and its output, or a thought and its answer.

    >>> solution_text(Sample(kind="program", reasoning="print(4)", answer="4", final="4"))
    '```python\\nprint(4)\\n```\\nOutput: 4'
    """
    if sample.kind == "program":
        return f"```python\n{sample.reasoning}\n```\nOutput: {sample.answer}"
    return f"{sample.reasoning}\n{sample.answer}"


def program_response(solution: str) -> str | None:
    """The response the model wrote for a program candidate's ``solution_text`` (its fenced
    code, without the output dca appended); None for a thought.

    >>> program_response(solution_text(Sample(kind="program", reasoning="print(4)", answer="4", final="4")))
    '```python\\nprint(4)\\n```'
    >>> program_response("I think it is 4.") is None
    True
    """
    head = "```python\n"
    if not solution.startswith(head):
        return None
    end = solution.rfind("\n```\nOutput:")
    body = solution[len(head) : end] if end >= 0 else solution[len(head) :].removesuffix("\n```")
    return f"{head}{body}\n```"


class Scorer(Protocol):
    """Scores how likely a solution is to be correct."""

    def score(self, question: str, solution: str) -> float: ...


class SelfJudge:
    """The model's own judgement: P("Yes") against P("No") as the next token."""

    def __init__(self, generator: Generator, gen: GenerationConfig) -> None:
        self.generator = generator
        self.gen = replace(gen, temperature=0.0, max_tokens=1, stop=())

    def score(self, question: str, solution: str) -> float:
        if len(solution) > MAX_SOLUTION_CHARS:
            solution = "..." + solution[-MAX_SOLUTION_CHARS:]
        messages = [
            {"role": "system", "content": JUDGE_SYSTEM},
            {"role": "user", "content": JUDGE_USER.format(question=question, solution=solution)},
        ]
        yes, _no = self.generator.choice_probabilities(self.generator.chat_prompt(messages), ["Yes", "No"], self.gen)
        return yes
