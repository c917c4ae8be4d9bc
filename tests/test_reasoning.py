"""Reasoning strategies with a scripted generator: think protocol, budget cap and extension,
votes and early stop, programs and repair, verification, search during reasoning, fallback,
and pause / add context / resume."""

from __future__ import annotations

import pytest
from conftest import ScriptedGenerator

from dca.errors import ConfigError, ReasoningError
from dca.knowledge.retrieval import Hit
from dca.knowledge.store import StoredChunk
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import (
    AnswerText,
    ContextAdded,
    Finished,
    ProgramRan,
    ReasoningResult,
    SampleFinished,
    SearchIssued,
    SearchResults,
    Thinking,
    VoteTally,
)
from dca.reasoning.run import reason
from dca.reasoning.think import CUE, FORCED, OPEN
from dca.runtime.generation import GenerationConfig

MESSAGES = [{"role": "system", "content": "Solve it."}, {"role": "user", "content": "What is 2 + 2?"}]


def _run(generator: ScriptedGenerator, **config: object) -> tuple[ReasoningResult, list[object]]:
    run = reason(generator, MESSAGES, ReasoningConfig(**config), question="What is 2 + 2?")  # type: ignore[arg-type]
    events = list(run)
    assert isinstance(events[-1], Finished)
    return events[-1].result, events


def test_cot_thinks_in_a_delimited_span_then_answers() -> None:
    generator = ScriptedGenerator(["two plus two makes four </think> ignored", "The answer is 4."])
    result, events = _run(generator, strategy="cot")
    assert generator.prompts[0].endswith(OPEN) and "Think step by step inside <think>" in generator.prompts[0]
    assert generator.prompts[1] == generator.prompts[0] + "two plus two makes four\n</think>\n\n"
    assert result.reasoning == "two plus two makes four" and result.answer == "The answer is 4."
    assert result.final == "4" and result.reasoning_tokens == 5 and result.answer_tokens == 4
    assert not result.forced and result.confidence == 1.0
    assert "".join(e.text for e in events if isinstance(e, Thinking)) == "two plus two makes four"
    assert "".join(e.text for e in events if isinstance(e, AnswerText)) == "The answer is 4."


def test_the_budget_caps_thinking_and_forces_the_answer() -> None:
    never_closes = " ".join(["hmm"] * 50)  # a model that never closes its thinking
    generator = ScriptedGenerator([never_closes, " 4"])
    result, _ = _run(generator, strategy="cot", budget=10)
    assert result.reasoning_tokens == 10 and result.forced
    assert generator.configs[0].max_tokens == 10
    assert generator.prompts[1].endswith(FORCED)  # the span is closed and the answer demanded
    assert result.final == "4" and result.answer.startswith("Final answer:")


def test_min_thinking_extends_a_thought_that_stops_too_early() -> None:
    generator = ScriptedGenerator(["four </think>", "yes four, checked twice over </think>", "The answer is 4."])
    result, _ = _run(generator, strategy="cot", budget=64, min_thinking=5)
    sample = result.samples[0]
    assert sample.extended == 1 and sample.reasoning_tokens == 6
    assert generator.prompts[1].endswith("four" + CUE)  # the cue continues the same thought
    assert generator.configs[1].max_tokens == 63  # what is left of the budget
    assert result.final == "4"


def test_extension_stops_at_the_budget() -> None:
    generator = ScriptedGenerator(["a b c </think>"] * 6 + ["The answer is 4."])
    result, _ = _run(generator, strategy="cot", budget=7, min_thinking=7)
    assert result.reasoning_tokens <= 7 and result.forced


def test_fixed_vote_uses_the_batched_sampler_and_reports_the_share() -> None:
    generator = ScriptedGenerator(
        ["a </think>", "b </think>", "c </think>", "The answer is 4.", "The answer is 5.", "The answer is 4."]
    )
    result, events = _run(generator, strategy="vote", n_samples=3, adaptive=False, greedy_first=False)
    assert generator.sample_calls == [3]  # every first pass from one batched call
    assert result.votes == {"4": 2, "5": 1} and result.final == "4"
    assert result.confidence == pytest.approx(2 / 3)
    tallies = [e for e in events if isinstance(e, VoteTally)]
    assert [t.drawn for t in tallies] == [1, 2, 3] and tallies[-1].leader == "4"
    assert all(c.temperature == 0.7 for c in generator.configs)


def test_the_first_sample_of_each_kind_is_greedy_and_the_rest_are_batched() -> None:
    generator = ScriptedGenerator(
        ["b </think>", "c </think>", "a </think>", "The answer is 4.", "The answer is 5.", "The answer is 4."]
    )
    result, _ = _run(generator, strategy="vote", n_samples=3, adaptive=False)
    assert generator.sample_calls == [2]  # the greedy first pass alone, the other two batched
    temperatures = [c.temperature for c in generator.configs]  # type: ignore[attr-defined]
    assert temperatures.count(0.0) == 2  # the greedy sample's thought and its answer
    assert result.votes == {"4": 2, "5": 1}
    generator = ScriptedGenerator(["x = 4\nprint(x)\n```", "y </think>", "The answer is 4."])
    result, _ = _run(generator, strategy="mix", n_samples=5)
    assert [s.kind for s in result.samples] == ["program", "cot"]  # both greedy, agreeing: decided
    assert [c.temperature for c in generator.configs] == [0.0, 0.0, 0.0]


def test_adaptive_vote_stops_once_the_leader_cannot_be_overtaken() -> None:
    generator = ScriptedGenerator(["x </think>", "The answer is 4."] * 10)
    result, events = _run(generator, strategy="vote", n_samples=5, adaptive=True, threshold=1.0, min_samples=5)
    assert len(result.samples) == 3  # 3 votes for "4" with 2 left: decided
    assert [e.decided for e in events if isinstance(e, VoteTally)] == [False, False, True]
    assert [e.sample for e in events if isinstance(e, SampleFinished)] == [0, 1, 2]


def test_adaptive_vote_stops_at_the_share_threshold() -> None:
    generator = ScriptedGenerator(["x </think>", "The answer is 4."] * 10)
    result, _ = _run(generator, strategy="vote", n_samples=8, threshold=0.75, min_samples=2)
    assert len(result.samples) == 2 and result.confidence == 1.0


def test_samples_without_an_answer_do_not_vote() -> None:
    generator = ScriptedGenerator(["hmm, no idea </think>", "I am not sure.", "y </think>", "The answer is 7."])
    result, _ = _run(generator, strategy="vote", n_samples=2, adaptive=True)
    assert result.votes == {"7": 1} and result.final == "7" and result.confidence == 0.5


def test_program_strategy_runs_the_program_and_reads_its_output() -> None:
    generator = ScriptedGenerator(["total = 2 + 2\nprint(total)\n```"])
    result, events = _run(generator, strategy="program")
    assert generator.prompts[0].endswith("```python\n") and "Python program" in generator.prompts[0]
    ran = [e for e in events if isinstance(e, ProgramRan)]
    assert len(ran) == 1 and ran[0].result.ok
    assert result.final == "4" and result.answer == "The answer is 4." and "print(total)" in result.reasoning


def test_a_failed_program_is_repaired_once_with_its_error() -> None:
    generator = ScriptedGenerator(["print(totl)\n```", "total = 4\nprint(total)\n```"])
    result, events = _run(generator, strategy="program")
    assert "NameError: name 'totl' is not defined" in generator.prompts[1]
    assert [e.repair for e in events if isinstance(e, ProgramRan)] == [False, True]
    assert result.final == "4" and result.samples[0].attempts == 2


def test_the_program_prompt_replaces_the_system_prompt() -> None:
    from dca.reasoning.program import PROGRAM_SYSTEM, program_messages

    plain = program_messages([{"role": "system", "content": "be brief"}, *MESSAGES])
    assert [m["role"] for m in plain] == ["system", "user"] and plain[0]["content"] == PROGRAM_SYSTEM
    shown = program_messages([*MESSAGES, {"role": "assistant", "content": "4"}, *MESSAGES])
    assert [m["role"] for m in shown] == ["system", "user", "assistant", "user"]


def test_single_and_batched_programs_are_asked_with_the_program_instruction() -> None:
    from dca.reasoning.program import PROGRAM_SYSTEM

    generator = ScriptedGenerator(["total = 2 + 2\nprint(total)\n```"] * 3)
    result, _ = _run(generator, strategy="program")
    assert result.final == "4" and PROGRAM_SYSTEM in generator.prompts[0]
    _run(generator, strategy="program-vote", n_samples=2, adaptive=False)
    assert all(PROGRAM_SYSTEM in p for p in generator.prompts[1:])


def test_without_repair_a_failed_program_gives_no_answer() -> None:
    generator = ScriptedGenerator(["print(1/0)\n```"])
    result, _ = _run(generator, strategy="program", repair=False)
    assert result.final == "" and "ZeroDivisionError" in result.answer and len(generator.prompts) == 1


def test_a_hostile_program_is_stopped_and_reported() -> None:
    generator = ScriptedGenerator(["import os\nos.system('rm -rf /')\n```"])
    result, _ = _run(generator, strategy="program", repair=False)
    assert result.final == "" and "'os' is not allowed" in result.samples[0].program_error


def test_mix_votes_over_programs_and_thoughts() -> None:
    # Batched first passes: the thought (sample 1), then both programs; then sample 1's answer.
    generator = ScriptedGenerator(["x </think>", "print(4)\n```", "print(5)\n```", "The answer is 4."])
    result, _ = _run(generator, strategy="mix", n_samples=3, adaptive=False, threshold=1.0, greedy_first=False)
    assert [s.kind for s in result.samples] == ["program", "cot", "program"]
    assert result.votes == {"4": 2, "5": 1} and result.final == "4"


def test_program_vote_votes_over_programs_greedy_first() -> None:
    programs = ["print(4)\n```", "print(5)\n```", "print(4)\n```", "print(4)\n```", "print(6)\n```"]
    generator = ScriptedGenerator(programs)
    result, events = _run(generator, strategy="program-vote", n_samples=5, threshold=1.0, min_samples=5)
    assert [s.kind for s in result.samples] == ["program"] * 4  # 4, 5, 4, 4: "4" can no longer lose
    assert [c.temperature for c in generator.configs] == [0.0, 0.7, 0.7, 0.7]  # the greedy program first
    assert result.votes == {"4": 3, "5": 1} and result.final == "4" and result.answer == "The answer is 4."
    assert [e.decided for e in events if isinstance(e, VoteTally)] == [False, False, False, True]


def test_fixed_program_vote_batches_the_sampled_programs() -> None:
    generator = ScriptedGenerator(["print(7)\n```", "print(8)\n```", "print(8)\n```"])
    result, _ = _run(generator, strategy="program-vote", n_samples=3, adaptive=False)
    assert generator.sample_calls == [2]  # the greedy program alone, the two sampled ones batched
    assert result.votes == {"7": 1, "8": 2} and result.final == "8" and result.confidence == pytest.approx(2 / 3)


def test_verify_weighs_votes_by_the_verifiers_score_and_records_the_majority() -> None:
    from dca.reasoning.verify import SelfJudge

    generator = ScriptedGenerator(
        ["a </think>", "b </think>", "c </think>", "The answer is 4.", "The answer is 5.", "The answer is 5."],
        yes=lambda prompt: 0.9 if "The answer is 4" in prompt else 0.2,
    )
    judge = SelfJudge(generator, GenerationConfig())
    run = reason(generator, MESSAGES, ReasoningConfig(strategy="verify", n_samples=3, adaptive=False, verify_on="cot"),
                 question="What is 2 + 2?", scorer=judge)  # fmt: skip
    result = next(e for e in run if isinstance(e, Finished)).result
    # "4": 0.9 against "5": 0.2 + 0.2: the verifier's sure minority beats a doubted majority
    assert result.majority == "5" and result.final == "4"
    assert [s.score for s in result.samples] == [0.9, 0.2, 0.2]


def test_verify_without_a_verifier_is_the_vote_weighed_by_execution_facts() -> None:
    question = "How many apples are left?"
    messages = [{"role": "user", "content": question}]
    # two samples say 2.5 apples (a fraction where the question counts), one says 3
    generator = ScriptedGenerator(
        ["a </think>", "b </think>", "c </think>", "The answer is 2.5.", "The answer is 2.5.", "The answer is 3."]
    )
    run = reason(generator, messages, ReasoningConfig(strategy="verify", n_samples=3, adaptive=False, verify_on="cot"),
                 question=question)  # fmt: skip
    result = next(e for e in run if isinstance(e, Finished)).result
    assert result.majority == "2.5" and result.final == "3"  # 2 x 0.3 = 0.6 against 1.0
    assert all(s.score is None for s in result.samples)  # no verifier, no self-judge


def test_weighted_verify_stops_early_on_an_easy_question() -> None:
    generator = ScriptedGenerator(["a </think>", "The answer is 4."] * 5)
    result, _ = _run(
        generator, strategy="verify", n_samples=5, adaptive=True, threshold=0.9, min_samples=2, verify_on="cot"
    )
    assert len(result.samples) == 2 and result.final == "4"


def test_verify_skips_the_judge_when_the_samples_agree() -> None:
    judged: list[str] = []

    def yes(prompt: str) -> float:
        judged.append(prompt)
        return 0.5

    generator = ScriptedGenerator(
        ["a </think>", "b </think>", "c </think>", "The answer is 4.", "The answer is 4.", "4"], yes=yes
    )
    result, _ = _run(generator, strategy="verify", n_samples=3, adaptive=False, verify_on="cot")
    assert result.final == "4" and result.majority == "4" and judged == []
    assert [s.score for s in result.samples] == [None, None, None]


def _hit(n: int, text: str) -> Hit:
    chunk = StoredChunk(id=n, path=f"doc{n}.md", text=text, heading="", page=None, char_start=0, char_end=len(text))
    return Hit(rank=1, score=1.0, chunk=chunk)


def test_search_during_reasoning_inserts_quoted_results() -> None:
    queries: list[str] = []

    def retrieve(query: str) -> list[Hit]:
        queries.append(query)
        return [_hit(1, "Paris is the capital of France. " * 40), _hit(2, "Lyon is a city.")]

    generator = ScriptedGenerator(
        ["I should look it up <search>capital of France</search>", "so Paris </think>", "Paris"]
    )
    run = reason(generator, MESSAGES, ReasoningConfig(strategy="cot", max_searches=2), question="q", retrieve=retrieve)
    events = list(run)
    result = events[-1].result
    assert queries == ["capital of France"]
    assert [e.query for e in events if isinstance(e, SearchIssued)] == ["capital of France"]
    assert [e.numbers for e in events if isinstance(e, SearchResults)] == [[1, 2]]
    continued = generator.prompts[1]
    assert '<search>capital of France</search>\n<results>\n<source id="1" from="doc1.md">' in continued
    assert " ..." in continued and len(continued) < len(generator.prompts[0]) + 900  # snippets are kept short
    assert "</search>" in generator.configs[0].stop
    assert [h.chunk.path for h in result.sources] == ["doc1.md", "doc2.md"] and result.searches == ["capital of France"]


def test_a_search_loop_is_capped() -> None:
    calls: list[str] = []
    generator = ScriptedGenerator(["<search>again</search>"] * 5 + ["done </think>", "Paris"])
    run = reason(
        generator,
        MESSAGES,
        ReasoningConfig(strategy="cot", max_searches=2),
        question="q",
        retrieve=lambda q: calls.append(q) or [],
    )
    result = list(run)[-1].result
    assert len(calls) == 2 and result.searches == ["again", "again"]
    assert "No more searches" in generator.prompts[3]


def test_pause_add_context_and_resume_without_recomputing() -> None:
    generator = ScriptedGenerator(
        ["let me think about the numbers here </think>", "so five </think>", "The answer is 5."]
    )
    run = reason(generator, MESSAGES, ReasoningConfig(strategy="cot"), question="q")
    seen = []
    for event in run:
        seen.append(event)
        if isinstance(event, Thinking) and len(seen) == 3:
            break  # paused: nothing more is generated while we do not iterate
    calls_while_paused = len(generator.prompts)
    run.add_context("the user says 2 + 2 is 5 here")
    rest = list(run)
    assert calls_while_paused == 1
    assert any(isinstance(e, ContextAdded) for e in rest)
    resumed = generator.prompts[1]
    assert resumed.startswith(generator.prompts[0] + "let me think")
    assert "(Note from the user: the user says 2 + 2 is 5 here)" in resumed
    # Everything before the note was already computed: the runtime reuses it as a cached prefix.
    assert generator.cached[1] >= len(generator.prompts[0]) + len("let me think")
    assert rest[-1].result.final == "5"


def test_cancel_stops_the_run() -> None:
    generator = ScriptedGenerator([" ".join(["word"] * 100)])
    run = reason(generator, MESSAGES, ReasoningConfig(strategy="cot"), question="q")
    next(run)
    run.cancel()
    assert list(run) == [] and len(generator.prompts) == 1
    with pytest.raises(ReasoningError, match="empty"):
        run.add_context("  ")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"budget": 0}, "budget must be between 1"),
        ({"budget": -5}, "budget must be between 1"),
        ({"n_samples": 0}, "number of samples must be between 1 and 64"),
        ({"n_samples": 1000}, "number of samples must be between 1 and 64"),
        ({"strategy": "magic"}, "unknown strategy 'magic'"),
        ({"min_thinking": 600}, "min thinking must be between 0 and the budget"),
        ({"max_searches": 99}, "max searches"),
    ],
)
def test_bad_reasoning_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ReasoningConfig(**changes)  # type: ignore[arg-type]


def test_direct_is_not_a_reasoning_run() -> None:
    with pytest.raises(ReasoningError, match="direct strategy"):
        reason(ScriptedGenerator(), MESSAGES, ReasoningConfig(), question="q")


def test_greedy_single_passes_and_seeded_samples() -> None:
    generator = ScriptedGenerator(["x </think>", "The answer is 4."])
    reason_run = reason(
        generator, MESSAGES, ReasoningConfig(strategy="cot", seed=3), question="q", gen=GenerationConfig(adapter="a")
    )
    list(reason_run)
    assert generator.configs[0].temperature == 0.0 and generator.configs[0].adapter == "a"
    generator = ScriptedGenerator(["x </think>", "The answer is 4."] * 3)
    list(reason(generator, MESSAGES, ReasoningConfig(strategy="vote", n_samples=3, seed=3), question="q"))
    assert [c.seed for c in generator.configs[::2]] == [3, 4]  # stopped after 2 agreeing samples
