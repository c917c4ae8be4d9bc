"""``ReasoningConfig``: which strategy answers, how long it may think, how many samples it draws."""

from __future__ import annotations

from dataclasses import dataclass, replace

from dca.choices import STRATEGIES, VERIFY_SAMPLES
from dca.errors import ConfigError
from dca.options import ANSWERING, option
from dca.runtime.generation import MAX_SAMPLES

MAX_BUDGET = 32_768  # thinking tokens; the context window bounds it further


@dataclass(frozen=True, kw_only=True)
class ReasoningConfig:
    """How a question is reasoned about. Fields given with ``option(...)`` are user options
    (dca/options.py): declared here once, the CLI flags and the server's keys derive from them."""

    strategy: str = option(
        "direct",
        help="How to reason (docs/reasoning.md); in ask and chat anything but direct implies --think.",
        choices=STRATEGIES,
        commands=(*ANSWERING, "serve"),
    )
    budget: int = option(
        512,
        help="Most thinking tokens per sample; then the answer is forced.",
        commands=(*ANSWERING, "serve"),
    )
    min_thinking: int = option(0, help="Thinking shorter than this many tokens is extended with a continuation cue.")
    n_samples: int = option(
        5, help="vote, program-vote, mix, verify: most samples.", name="samples", commands=(*ANSWERING, "serve")
    )
    adaptive: bool = option(
        True, help="votes and verify: stop sampling once the vote is decided.", flags=("--adaptive/--fixed",)
    )
    min_samples: int = 2  # adaptive: samples drawn before the share threshold may stop the vote
    threshold: float = 0.75  # adaptive: stop when the leader's share of the samples reaches this
    temperature: float = 0.7  # sampling temperature of the samples of votes (single passes are greedy)
    greedy_first: bool = option(
        True,
        help="votes: the first sample of each kind is greedy (the single pass).",
        flags=("--greedy-first/--all-sampled",),
    )
    repair: bool = option(
        True,
        help="programs: a failed program goes back to the model once, with its error.",
        flags=("--repair/--no-repair",),
    )
    answer_tokens: int = 256  # most tokens of the final answer after the thinking
    program_tokens: int = 400  # most tokens of one program
    # votes and verify, adaptive: stop after the greedy first sample when its execution facts are
    # clean and its certainty (dca.reasoning.certainty.STAT) is at least this (a generator without
    # token probabilities: the facts alone); None: never
    sure_above: float | None = option(
        None,
        help="votes and verify: answer with the greedy program alone when its mean step confidence is at "
        "least this and its execution facts are clean (higher: more votes).",
        shown="unset: never; --think uses 9.7158",
    )
    max_searches: int = option(
        0, help="With an index: most searches during reasoning (0: sources up front).", name="searches"
    )
    search_k: int = 2  # hits inserted per search
    snippet_chars: int = 400  # characters kept of each inserted hit (prefill costs on a CPU)
    fallback: bool = option(
        True, help="Searches: plain RAG when reasoning gives no answer.", flags=("--fallback/--no-fallback",)
    )
    min_confidence: float = 0.0  # fall back to plain RAG below this vote share (0 = only on no answer)
    # verify: the kind of samples drawn and weighed: thoughts, programs (what the shipped preference
    # verifier scores, and on GSM8K more accurate and faster than thoughts: lab/NOTEBOOK.md), or
    # both in turn as mix draws them
    verify_on: str = option(
        "program",
        help="verify: the samples drawn and weighed: thoughts, programs, or both in turn.",
        choices=VERIFY_SAMPLES,
    )
    seed: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy {self.strategy!r}; use one of: {', '.join(STRATEGIES)}")
        if self.verify_on not in VERIFY_SAMPLES:
            raise ConfigError(f"unknown verify samples {self.verify_on!r}; use one of: {', '.join(VERIFY_SAMPLES)}")
        if not 1 <= self.budget <= MAX_BUDGET:
            raise ConfigError(f"the thinking budget must be between 1 and {MAX_BUDGET} tokens, got {self.budget}")
        if not 0 <= self.min_thinking <= self.budget:
            raise ConfigError(
                f"min thinking must be between 0 and the budget ({self.budget} tokens), got {self.min_thinking}"
            )
        if not 1 <= self.n_samples <= MAX_SAMPLES:
            raise ConfigError(f"the number of samples must be between 1 and {MAX_SAMPLES}, got {self.n_samples}")
        if not self.min_samples >= 1:
            raise ConfigError(f"min samples must be at least 1, got {self.min_samples}")
        if not 0 < self.threshold <= 1:
            raise ConfigError(f"the vote threshold must be in (0, 1], got {self.threshold}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if self.answer_tokens < 1 or self.program_tokens < 16:
            raise ConfigError("answer_tokens must be at least 1 and program_tokens at least 16")
        if self.sure_above is not None and not 0 <= self.sure_above < 1000:
            raise ConfigError(f"--sure-above must be a certainty >= 0 (e.g. 9.7), got {self.sure_above}")
        if not 0 <= self.max_searches <= 16:
            raise ConfigError(f"max searches must be between 0 and 16, got {self.max_searches}")
        if self.search_k < 1 or self.snippet_chars < 50:
            raise ConfigError("search_k must be at least 1 and snippet_chars at least 50")

    @property
    def thinks(self) -> bool:
        """Does this strategy reason before answering (everything but ``direct``)?"""
        return self.strategy != "direct"

    def named(self, strategy: str) -> ReasoningConfig:
        """This config with a strategy the user asked for by name (``dca ask --strategy``, the
        server's ``dca.strategy``) runs as named: the certainty gate, which is ``--think``'s
        default, is dropped (``sure_above`` given as well turns it back on).

        >>> THINK_DEFAULT.named("verify").sure_above is None
        True
        """
        return replace(self, strategy=strategy, sure_above=None)


# The certainty above which a greedy program answers alone (mean step confidence, the dev
# split's 5 % quantile; with the execution facts it gated 10 % of the dev questions:
# lab/NOTEBOOK.md, "Does the model know when its program is wrong?").
SURE_ABOVE = 9.7158
# What `dca ask --think` uses: chosen by accuracy per second on GSM8K on a 2-core CPU
# (lab/NOTEBOOK.md; the trade-off is in docs/reasoning.md): the greedy program, trusted alone
# when it is sure and its execution facts are clean (87 % of questions), else verify's vote.
THINK_DEFAULT = ReasoningConfig(strategy="verify", budget=512, sure_above=SURE_ABOVE)
# ... and with an index (a question about the user's documents), from HotpotQA RAG: no thinking
# variant measured beats the direct answer over the retrieved sources (EM 0.31; thinking over the
# sources 0.20, 0.25 with the fallback; search during reasoning 0.21), so the direct answer it is.
THINK_DEFAULT_RAG = ReasoningConfig(strategy="direct")

# OpenAI's ``reasoning_effort`` (dca serve) as dca strategies: "low" is what `--think` does
# (the measured default: the program, a vote when unsure); "medium" and "high" spend more:
# closed-book, a vote over programs
# (GSM8K: 0.65 at 1.5x the direct pass, against the single program's 0.62 at 0.7x) and a vote
# over programs and thoughts; with an index, longer thinking with plain RAG as the fallback.
EFFORTS = ("none", "minimal", "low", "medium", "high")


def effort_config(effort: str, *, retrieval: bool) -> ReasoningConfig:
    """The reasoning config for a ``reasoning_effort``; ``retrieval``: the question has an index.

    >>> effort_config("low", retrieval=False).strategy, effort_config("low", retrieval=False).sure_above
    ('verify', 9.7158)
    >>> effort_config("high", retrieval=True).budget
    1024
    """
    if effort not in EFFORTS:
        raise ConfigError(f"unknown reasoning effort {effort!r}; use one of: {', '.join(EFFORTS)}")
    if effort in ("none", "minimal"):
        return ReasoningConfig()
    if effort == "low":
        return THINK_DEFAULT_RAG if retrieval else THINK_DEFAULT
    budget = 512 if effort == "medium" else 1024
    if retrieval:
        return ReasoningConfig(strategy="cot", budget=budget)
    if effort == "medium":
        return ReasoningConfig(strategy="program-vote", budget=budget, n_samples=5)
    return ReasoningConfig(strategy="mix", budget=budget, n_samples=5)
