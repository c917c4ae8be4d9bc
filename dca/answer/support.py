"""Is the answer stated in the sources? The question put to the model after a grounded answer.

The answer is followed by one more user turn asking whether the sources state it; the model's
P("Yes") against P("No") as the next token is the answer's support. The prompt up to the
answer is the one just generated from, so the runtime's KV cache holds it and the check reads
only the answer and the question below: a few dozen tokens. Where the support is below the
user's threshold, dca says the sources do not contain the answer (docs/answering.md).
"""

from __future__ import annotations

from collections.abc import Sequence

# A second wording ("Do the sources above answer the question exactly as it was asked?") was
# measured against this one on SQuAD 2.0 rows that are not the evaluation's and did no better
# (lab/NOTEBOOK.md, "Grounded or not").
SUPPORT_QUESTION = "Is that answer stated in the sources above? Reply Yes or No."


def support_messages(messages: Sequence[dict[str, str]], answer: str) -> list[dict[str, str]]:
    """The conversation that ends by asking whether the sources state ``answer``."""
    return [
        *messages,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": SUPPORT_QUESTION},
    ]
