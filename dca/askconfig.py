"""``AskConfig``: how a question is answered (retrieval, generation, reasoning, checks), the one
declaration of every answer option (dca/options.py). Light to import: the CLI builds its flags
from it before any command runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dca import settings
from dca.choices import ANSWER_STYLES, RETRIEVAL_MODES
from dca.errors import ConfigError
from dca.options import ANSWERING, option, with_options
from dca.reasoning.config import ReasoningConfig


@dataclass(frozen=True, kw_only=True)
class AskConfig:
    """How a question is answered. Each field given with ``option(...)`` is a user option, declared
    here once: the flags of ask, chat and eval and the server's ``dca`` object derive from it
    (dca/options.py)."""

    # sources retrieved per question (the most, with k_cutoff); 3 reads 37 % fewer prompt tokens
    # than 5 and answered as well on SQuAD 2.0 and HotpotQA (lab/NOTEBOOK.md, issue 31)
    k: int = option(
        settings.FIELDS["k"][2],
        help="Sources to retrieve per question.",
        flags=("--k", "-k"),
        setting="k",
        commands=(*ANSWERING, "serve"),
    )
    k_cutoff: float = option(
        0.0,
        help="Adaptive k: drop the sources after the first whose retrieval score is below this fraction "
        "of the best one's (0: always k).",
    )
    mode: str = option(
        "hybrid",
        help="Retrieval: dense + BM25 (hybrid), or one of them.",
        choices=RETRIEVAL_MODES,
        record="retrieval_mode",
    )
    # move a citation whose source lacks its claim to the source that holds it (the model cites
    # the wrong source for 12-20 % of SQuAD answers: lab/NOTEBOOK.md, "Do cited answers cite the
    # right source?")
    repoint_citations: bool = True
    retrieval: bool = option(
        True,
        help="--no-retrieval: answer closed-book, without the index.",
        flags=("--retrieval/--no-retrieval",),
        commands=("ask", "chat", "serve"),
    )
    max_tokens: int = option(512, help="Most tokens in the answer.")
    temperature: float = option(0.0, help="Sampling temperature of the answer (0: greedy).", commands=("ask", "chat"))
    top_p: float = 0.95  # nucleus sampling (with temperature > 0)
    stop: tuple[str, ...] = ()  # strings that end the answer (not included); thinking is not cut by them
    seed: int | None = option(None, help="Sampling seed.", commands=("ask", "chat"))
    adapter: str | None = option(
        None,
        help="LoRA adapter: a catalog name, models/adapters/NAME.gguf or a path; none: the base model alone.",
        shown="the catalog's reasoning adapter when the strategy thinks, else none",
        commands=(*ANSWERING, "serve"),
    )
    adapter_scale: float = 1.0
    # "not in the sources" without asking the model when no retrieved source's cosine similarity
    # with the question reaches this (lab/NOTEBOOK.md, "Not in sources")
    min_similarity: float = option(
        0.0, help="Answer 'not in the sources' when no source is this similar to the question (0: off)."
    )
    style: str = option(
        "cited",
        help="cited: sentences ending in [n]; short: the answer alone (sources listed below it).",
        choices=ANSWER_STYLES,
        record="answer_style",
    )
    system: str | None = None  # replaces the default system prompt (eval: the task's instructions)
    reasoning: ReasoningConfig = field(default_factory=ReasoningConfig)  # strategy, budget, samples, search
    verifier: str | None = option(
        None,
        help="verify: the learned verifier that weighs each sample: a file (NAME.probe.json of `dca train "
        "probe`, NAME.verifier.json of `dca train dpo`), a verifier of `dca models list`, or none (execution "
        "facts alone).",
        shown="the catalog's verifier for the model, when it has one",
    )
    # the grounded check (dca/answer/support.py): after a grounded single-pass answer, the
    # model's P("Yes") that the sources state it
    # off by default: on the trust benchmark it refused half the retrieval gaps but also 15 % of
    # answerable questions, above the 5 % the issue allows (docs/RESULTS.md, "Trust")
    check: bool = option(
        False,
        help="Check that the sources hold the answer: the grounding judge says 'not in the sources' "
        "before answering when they do not seem to, and sentences whose words no source has are dropped.",
        flags=("--check/--no-check",),
        commands=("ask", "chat", "eval", "serve"),
    )
    min_support: float | None = option(
        None,
        help="Ask the model whether the sources state its answer; below this P(yes) answer 'not in the "
        "sources' (0: ask and report it, never refuse).",
        shown="unset: not asked",
    )

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"k must be at least 1, got {self.k}")
        if not 0 <= self.k_cutoff < 1:
            raise ConfigError(f"k_cutoff must be in [0, 1), got {self.k_cutoff}")
        if not 0 <= self.min_similarity <= 1:
            raise ConfigError(f"min_similarity must be between 0 and 1, got {self.min_similarity}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if any(not s for s in self.stop):
            raise ConfigError("a stop string is empty; give non-empty strings")
        if self.style not in ANSWER_STYLES:
            raise ConfigError(f"unknown answer style {self.style!r}; use one of: {', '.join(ANSWER_STYLES)}")
        if self.mode not in RETRIEVAL_MODES:
            raise ConfigError(f"unknown retrieval mode {self.mode!r}; use one of: {', '.join(RETRIEVAL_MODES)}")
        if self.min_support is not None and not 0 <= self.min_support <= 1:
            raise ConfigError(f"min_support must be between 0 and 1, got {self.min_support}")
        if _missing_file(self.verifier):  # a catalog name is checked later
            raise ConfigError(
                f"verifier {self.verifier} does not exist; train one with `dca train probe` or `dca train dpo`"
            )


def _missing_file(value: str | None) -> bool:
    """Whether ``value`` (a --verifier) names a file, not a catalog entry, and
    that file is not there."""
    named = value is not None and ("/" in value or value.endswith(".json"))
    return named and not Path(str(value)).expanduser().is_file()


def ask_config(given: dict[str, Any], *, think: bool = False) -> AskConfig:
    """The AskConfig of the options a user gave by name (``dca ask``'s flags, the server's ``dca``
    object, ``dca eval``'s flags), each checked by the configs. ``think`` (``--think``), or a
    strategy other than direct, starts from the measured reasoning default for the question
    (closed-book or over an index); a strategy named runs as named (ReasoningConfig.named), and
    the other options given change it."""
    from dca.reasoning.config import THINK_DEFAULT, THINK_DEFAULT_RAG

    strategy = given.get("strategy")
    measured = THINK_DEFAULT_RAG if given.get("retrieval", True) else THINK_DEFAULT
    reasoning = measured if think or (strategy not in (None, "direct")) else ReasoningConfig()
    if strategy is not None:
        reasoning = reasoning.named(strategy)
    rest = {name: value for name, value in given.items() if name != "strategy"}
    config: AskConfig = with_options(AskConfig(reasoning=reasoning), rest)
    return config
