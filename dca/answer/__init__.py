"""Grounded answering: prompts that fit the context window, sources as data, citations."""

from dca.answer.citations import (
    WEAK_COVERAGE,
    cited_numbers,
    content_words,
    coverage,
    found_share,
    repoint_citations,
    says_nothing,
    sentences,
    strip_citations,
)
from dca.answer.prompt import (
    NO_ANSWER,
    STYLES,
    SYSTEM_CLOSED_BOOK,
    SYSTEM_GROUNDED,
    PromptParts,
    answer_instruction,
    build_prompt,
    escape_source_text,
    is_refusal,
    source_block,
)
from dca.answer.support import SUPPORT_QUESTION, support_messages

__all__ = [
    "NO_ANSWER",
    "STYLES",
    "SUPPORT_QUESTION",
    "SYSTEM_CLOSED_BOOK",
    "SYSTEM_GROUNDED",
    "WEAK_COVERAGE",
    "PromptParts",
    "answer_instruction",
    "build_prompt",
    "cited_numbers",
    "content_words",
    "coverage",
    "escape_source_text",
    "found_share",
    "is_refusal",
    "repoint_citations",
    "says_nothing",
    "sentences",
    "source_block",
    "strip_citations",
    "support_messages",
]
