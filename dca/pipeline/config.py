"""``AskConfig``: how a question is answered (retrieval, generation, reasoning, checks)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dca.answer import DEFAULT_SUPPORT_QUESTION, SUPPORT_QUESTIONS, answer_instruction
from dca.choices import FUSIONS
from dca.errors import ConfigError
from dca.reasoning.config import ReasoningConfig
from dca.runtime.adapters import NO_PROBE


@dataclass(frozen=True, kw_only=True)
class AskConfig:
    """How a question is answered; CLI flags map one-to-one."""

    # sources retrieved per question (the most, with k_cutoff); 3 reads 37 % fewer prompt tokens
    # than 5 and answered as well on SQuAD 2.0 and HotpotQA (lab/NOTEBOOK.md, issue 31)
    k: int = 3
    # adaptive k: drop the sources after the first whose retrieval score is below this fraction
    # of the best source's (0: always k; knowledge.retrieval.adaptive_k)
    k_cutoff: float = 0.0
    mode: str = "hybrid"  # retrieval mode: dense, bm25 or hybrid
    fusion: str = "convex"  # hybrid: how dense and keyword rankings are fused (SearchConfig.fusion)
    # move a citation whose source lacks its claim to the source that holds it (the model cites
    # the wrong source for 12-20 % of SQuAD answers: lab/NOTEBOOK.md, "Do cited answers cite the
    # right source?")
    repoint_citations: bool = True
    retrieval: bool = True  # False: answer closed-book, without the index
    max_tokens: int = 512  # room kept for the answer
    temperature: float = 0.0
    top_p: float = 0.95  # nucleus sampling (with temperature > 0)
    stop: tuple[str, ...] = ()  # strings that end the answer (not included); thinking is not cut by them
    seed: int | None = None
    # a LoRA adapter (catalog name, models/adapters/NAME.gguf or a path); None: the catalog's
    # reasoning adapter when the strategy thinks; "none": the base model alone
    adapter: str | None = None
    adapter_scale: float = 1.0
    # "not in the sources" without asking the model when no retrieved source's cosine similarity
    # with the question reaches this (0 = off; lab/NOTEBOOK.md, "Not in sources")
    min_similarity: float = 0.0
    style: str = "cited"  # grounded answers: "cited" sentences ending in [n], or "short" (the answer alone)
    system: str | None = None  # replaces the default system prompt (eval: the task's instructions)
    reasoning: ReasoningConfig = field(default_factory=ReasoningConfig)  # strategy, budget, samples, search
    # verify: a learned verifier that weighs each sample by its P(right): a probe file of `dca train
    # probe`, a NAME.verifier.json of `dca train dpo`, or a catalog verifier's name; "none": the
    # weighted vote on execution facts alone; None: the catalog's default verifier for the model
    verifier: str | None = None
    # Grounded or not: after a grounded single-pass answer, the model's P("Yes") that the sources
    # state it (dca/answer/support.py). None: not asked; below this value the answer becomes
    # "not in the sources" (0: asked and recorded, never refused).
    min_support: float | None = None
    support_question: str = DEFAULT_SUPPORT_QUESTION  # which wording asks it (measured in RESULTS)
    # the grounded check's probe: its P(the sources state the answer) from the model's hidden state,
    # read in the check's pass, is the support instead of P("Yes"): a probe file or a catalog
    # probe's name; "none": P("Yes"); None: the catalog's default probe for the model, if any
    grounded_probe: str | None = None

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")
        if not 0 <= self.k_cutoff < 1:
            raise ConfigError(f"k_cutoff must be in [0, 1), got {self.k_cutoff}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of {', '.join(FUSIONS)}, got {self.fusion!r}")
        if not 0 <= self.min_similarity <= 1:
            raise ConfigError(f"min_similarity must be between 0 and 1, got {self.min_similarity}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if any(not s for s in self.stop):
            raise ConfigError("a stop string is empty; give non-empty strings")
        answer_instruction(self.style)  # raises for an unknown style
        if self.min_support is not None and not 0 <= self.min_support <= 1:
            raise ConfigError(f"min_support must be between 0 and 1, got {self.min_support}")
        if _missing_file(self.verifier):  # a catalog name is checked later
            raise ConfigError(
                f"verifier {self.verifier} does not exist; train one with `dca train probe` or `dca train dpo`"
            )
        if _missing_file(self.grounded_probe):
            raise ConfigError(
                f"grounded-check probe {self.grounded_probe} does not exist; give a probe file, a probe of "
                "`dca models list`, or none"
            )
        if self.grounded_probe not in (None, NO_PROBE) and self.min_support is None:
            raise ConfigError(
                "a grounded-check probe is read by the grounded check: give --min-support (min_support) too"
            )
        if self.support_question not in SUPPORT_QUESTIONS:
            raise ConfigError(
                f"unknown support question {self.support_question!r}; use one of: {', '.join(SUPPORT_QUESTIONS)}"
            )


def _missing_file(value: str | None) -> bool:
    """Whether ``value`` (a --verifier or --grounded-probe) names a file, not a catalog entry, and
    that file is not there."""
    named = value is not None and ("/" in value or value.endswith(".json"))
    return named and not Path(str(value)).expanduser().is_file()
