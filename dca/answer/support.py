"""Is the answer stated in the sources? The question put to the model after a grounded answer.

The answer is followed by one more user turn asking whether the sources state it; the model's
P("Yes") against P("No") as the next token is the answer's support. The prompt up to the
answer is the one just generated from, so the runtime's KV cache holds it and the check reads
only the answer and the question below: a few dozen tokens. Where the support is below the
user's threshold, dca says the sources do not contain the answer (docs/answering.md).
"""

from __future__ import annotations

from collections.abc import Sequence

# Two wordings, measured against each other on SQuAD 2.0 rows that are not the evaluation's
# (benchmarks/bench_grounded.py); "stated" is what the pipeline asks unless told otherwise.
SUPPORT_QUESTIONS = {
    "stated": "Is that answer stated in the sources above? Reply Yes or No.",
    "answers": "Do the sources above answer the question exactly as it was asked? Reply Yes or No.",
}
DEFAULT_SUPPORT_QUESTION = "stated"


def support_messages(
    messages: Sequence[dict[str, str]], answer: str, question: str = DEFAULT_SUPPORT_QUESTION
) -> list[dict[str, str]]:
    """The conversation that ends by asking whether the sources state ``answer``."""
    return [
        *messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": SUPPORT_QUESTIONS[question]},
    ]
