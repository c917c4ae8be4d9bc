"""Logic: answer extraction now; think-then-answer, budgets, voting and verification later."""

from dca.reasoning.answers import answers_match, extract_answer, normalize_answer

__all__ = ["answers_match", "extract_answer", "normalize_answer"]
