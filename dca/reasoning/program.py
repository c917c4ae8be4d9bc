"""Program-aided reasoning: the model writes a short Python program, the sandbox runs it, and
the answer is what it prints. A failed program goes back to the model once, with its error."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from dca.reasoning.answers import extract_answer
from dca.reasoning.certainty import certainty
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import Event, ProgramRan, Sample, Thinking
from dca.reasoning.sandbox import ProgramResult, SandboxConfig, run_program
from dca.reasoning.think import Controls, generate
from dca.runtime.generation import Completion, GenerationConfig, Generator

FENCE = "```python\n"
_IMPORTS = "You may import only: math, fractions, decimal, itertools, statistics, datetime, re, collections. "
_REPLY = "Reply with one Python code block and nothing else."
PROGRAM_SYSTEM = (
    "You solve problems by writing a short Python program. Compute the answer step by step in "
    "variables with meaningful names, then print only the final answer (a number or a short phrase). "
    + _IMPORTS
    + _REPLY
)
REPAIR = "The program failed: {error}\nFix it. Reply with the corrected program only."


def program_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """The conversation with its system prompt replaced by the program-writing instruction
    (``PROGRAM_SYSTEM``, the one every adapter was trained with; three other wordings, and worked
    examples before the question, measured no better: lab/NOTEBOOK.md)."""
    return [{"role": "system", "content": PROGRAM_SYSTEM}, *(m for m in messages if m["role"] != "system")]


def _failure(result: ProgramResult) -> str:
    if not result.ok:
        return result.error
    return "" if result.last_line else "the program printed nothing; print the final answer"


def solve_with_program(
    generator: Generator,
    messages: list[dict[str, str]],
    config: ReasoningConfig,
    *,
    gen: GenerationConfig,
    sample: int = 0,
    controls: Controls | None = None,
    sandbox: SandboxConfig | None = None,
    draft: Completion | None = None,
) -> Iterator[Event | Sample]:
    """Write a program for the last question in ``messages``, run it, repair it once. Yields
    events and, last, the Sample (its reasoning is the program)."""
    conversation = program_messages(messages)
    code_config = replace(gen, max_tokens=config.program_tokens, stop=("```",), logprobs=True)
    tokens = prompt_tokens = 0
    code = error = ""
    sure: dict[str, float] | None = None
    result: ProgramResult | None = None
    for attempt in range(2 if config.repair else 1):
        prompt = generator.chat_prompt(conversation) + FENCE
        completion = draft if attempt == 0 and draft is not None else None
        if completion is None:
            completion = Completion()
            for item in generate(
                generator, prompt, code_config, controls=None, event=lambda piece: Thinking(piece, sample)
            ):
                if isinstance(item, Completion):
                    completion = item
                else:
                    yield item
        elif completion.text:
            yield Thinking(completion.text, sample)
        prompt_tokens = prompt_tokens or completion.prompt_tokens
        sure = certainty(completion)
        tokens += completion.completion_tokens
        code = completion.text.strip()
        result = run_program(code, sandbox)
        yield ProgramRan(sample, code, result, repair=attempt > 0)
        error = _failure(result)
        if not error:
            break
        conversation = [
            *conversation,
            {"role": "assistant", "content": f"{FENCE}{code}\n```"},
            {"role": "user", "content": REPAIR.format(error=error)},
        ]
    printed = result.last_line if result is not None and result.ok else ""
    return_final = extract_answer(printed) if printed else ""
    yield Sample(
        kind="program",
        reasoning=code,
        answer=printed,
        final=return_final,
        reasoning_tokens=tokens,
        answer_tokens=0,
        prompt_tokens=prompt_tokens,
        program_error=error,
        attempts=attempt + 1,
        certainty=sure,
    )
