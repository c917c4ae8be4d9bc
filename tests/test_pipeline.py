"""One pipeline for every answer: ask, chat and eval with reasoning strategies, the CLI's
thinking display and JSON, retrieval during reasoning with its fallback and citations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import HashEmbedder, ScriptedGenerator, make_corpus
from typer.testing import CliRunner

from dca.api import Answer, AskConfig, Assistant
from dca.cli import app
from dca.config import Paths
from dca.eval.runner import eval_config, run_eval
from dca.knowledge import add_paths
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import AnswerText, Finished, Thinking

runner = CliRunner()


@pytest.fixture
def indexed(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> Path:
    corpus = make_corpus(tmp_path / "corpus")
    add_paths(home, "default", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    return corpus


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> ScriptedGenerator:
    import dca.runtime.llama as llama_module

    generator = ScriptedGenerator(["17 minus 8 die leaves 9 </think>", "The answer is 9."])
    monkeypatch.setattr(llama_module, "load_runtime", lambda model=None, paths=None, config=None: generator)
    return generator


def test_ask_think_shows_thinking_and_the_answer(home: Paths, scripted: ScriptedGenerator) -> None:
    result = runner.invoke(app, ["ask", "A farmer has 17 sheep...", "--no-retrieval", "--strategy", "cot"])
    assert result.exit_code == 0, result.output
    assert "[thinking]" in result.stdout and "17 minus 8 die leaves 9" in result.stdout
    assert result.stdout.rstrip().endswith("The answer is 9.")
    scripted.prompts.clear()  # the script starts over
    hidden = runner.invoke(app, ["ask", "sheep?", "--no-retrieval", "--strategy", "cot", "--thinking", "hide"])
    assert "17 minus" not in hidden.stdout and "The answer is 9." in hidden.stdout
    scripted.prompts.clear()
    summary = runner.invoke(app, ["ask", "sheep?", "--no-retrieval", "--strategy", "cot", "--thinking", "summary"])
    assert "17 minus" not in summary.stdout and "thought 6 tokens over 1 sample(s)" in summary.stderr
    assert "17 minus 8 die leaves 9" in summary.stderr  # the last lines of the thinking


def test_ask_think_json_keeps_reasoning_apart_with_token_counts(home: Paths, scripted: ScriptedGenerator) -> None:
    result = runner.invoke(app, ["ask", "sheep?", "--no-retrieval", "--strategy", "cot", "--budget", "64", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["answer"] == "The answer is 9." and data["reasoning"] == "17 minus 8 die leaves 9"
    assert data["usage"]["reasoning_tokens"] == 6 and data["usage"]["answer_tokens"] == 4
    assert data["usage"]["completion_tokens"] == 10
    thinking = data["thinking"]
    assert thinking["budget"] == 64 and thinking["forced"] is False and thinking["strategy"] == "cot"


def test_ask_think_uses_the_measured_default(home: Paths, scripted: ScriptedGenerator) -> None:
    from dca.askconfig import ask_config
    from dca.reasoning.config import SURE_ABOVE, THINK_DEFAULT

    scripted.answers = ["print(17 - 8)\n```"]
    result = runner.invoke(app, ["ask", "A farmer has 17 sheep; all but 9 die.", "--no-retrieval", "--think", "--json"])
    assert result.exit_code == 0, result.output
    thinking = json.loads(result.stdout)["thinking"]
    assert thinking["strategy"] == THINK_DEFAULT.strategy == "verify" and thinking["final"] == "9"
    closed = {"retrieval": False}  # closed-book --think, nothing else
    assert ask_config(closed, think=True).reasoning.sure_above == SURE_ABOVE
    assert ask_config({**closed, "strategy": "verify"}, think=True).reasoning.sure_above is None  # by name: votes
    assert ask_config({**closed, "strategy": "verify", "sure_above": 11.0}).reasoning.sure_above == 11.0
    assert ask_config({}, think=True).reasoning.strategy == "direct"  # over an index: the direct answer


def test_ask_think_with_a_program_prints_the_answer_after_the_program(home: Paths, scripted: ScriptedGenerator) -> None:
    scripted.answers = ["print(17 - 8)\n```"]
    result = runner.invoke(
        app, ["ask", "A farmer has 17 sheep; all but 9 die.", "--no-retrieval", "--strategy", "program"]
    )
    assert result.exit_code == 0, result.output
    assert "[program printed '9']" in result.stdout
    assert result.stdout.rstrip().splitlines()[-1].strip() == "The answer is 9."


def test_a_vote_streams_the_settled_answer_once_and_each_samples_answer_as_thinking(home: Paths) -> None:
    generator = ScriptedGenerator(["two and two </think>", "The answer is 4."])
    assistant = Assistant(index=None, home=home.home, generator=generator)
    config = AskConfig(retrieval=False, reasoning=ReasoningConfig(strategy="vote", n_samples=3, adaptive=False))
    events = list(assistant.start("2+2?", config=config))
    answer = events[-1].result
    streamed = "".join(e.text for e in events if isinstance(e, AnswerText))
    assert answer.text == "The answer is 4." and streamed == answer.text
    assert "[answer] The answer is 4." in "".join(e.text for e in events if isinstance(e, Thinking))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0"], "budget must be between 1"),
        (["--budget", "-3"], "budget must be between 1"),
        (["--samples", "0"], "number of samples must be between 1 and 64"),
        (["--samples", "500"], "number of samples must be between 1 and 64"),
        (["--strategy", "telepathy"], "'telepathy' is not one of 'direct'"),
        (["--thinking", "loud"], "'loud' is not one of 'show', 'hide', 'summary'"),
    ],
)
def test_bad_reasoning_flags_are_one_line(
    home: Paths, scripted: ScriptedGenerator, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["ask", "q", "--no-retrieval", *args])
    assert result.exit_code in (1, 2) and message in result.output
    assert "Traceback" not in result.output and not scripted.prompts  # refused before any generation


def test_eval_with_a_strategy_records_it_and_resumes(home: Paths, tmp_path: Path) -> None:
    data = tmp_path / "gsm.jsonl"
    data.write_text(
        '{"question": "2+2?", "answer": "#### 4"}\n{"question": "3+3?", "answer": "#### 6"}\n', encoding="utf-8"
    )
    generator = ScriptedGenerator(["print(4)\n```", "print(7)\n```"])
    out = tmp_path / "run"
    summary = run_eval(
        eval_config(task="gsm8k", data=str(data), strategy="program", limit=1), out=out, paths=home, generator=generator
    )
    config = json.loads((out / "config.json").read_text())
    assert config["strategy"] == "program" and config["budget"] == 512 and config["samples"] == 5
    assert summary["metrics"]["accuracy"] == 1.0
    row = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert row["reasoning"]["strategy"] == "program" and row["reasoning"]["samples"][0]["attempts"] == 1
    summary = run_eval(
        eval_config(task="gsm8k", data=str(data), strategy="program"), out=out, paths=home, generator=generator
    )
    assert summary["n"] == 2 and summary["metrics"]["accuracy"] == 0.5
    with pytest.raises(Exception, match="strategy: 'program' -> 'cot'"):
        run_eval(eval_config(task="gsm8k", data=str(data), strategy="cot"), out=out, paths=home, generator=generator)
    with pytest.raises(Exception, match="number of samples"):
        eval_config(task="gsm8k", data=str(data), strategy="vote", samples=0)


def test_eval_closed_book_goes_through_the_pipeline_with_the_task_prompt(home: Paths, tmp_path: Path) -> None:
    data = tmp_path / "gsm.jsonl"
    data.write_text('{"question": "2+2?", "answer": "#### 4"}\n', encoding="utf-8")
    generator = ScriptedGenerator(["The answer is 4."])
    run_eval(eval_config(task="gsm8k", data=str(data)), out=tmp_path / "r", paths=home, generator=generator)
    assert generator.prompts == [
        generator.chat_prompt(
            [
                {
                    "role": "system",
                    "content": "Solve the problem step by step. Keep the reasoning short. "
                    "End with a line of the form: The answer is <final answer>.",
                },
                {"role": "user", "content": "2+2?"},
            ]
        )
    ]


def test_search_during_reasoning_cites_every_source_seen(home: Paths, indexed: Path, embedder: HashEmbedder) -> None:
    generator = ScriptedGenerator(["<search>dogs park</search>", "they fetch </think>", "Dogs fetch sticks [1]."])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder)
    config = AskConfig(k=3, reasoning=ReasoningConfig(strategy="cot", max_searches=2))
    answer = assistant.ask("what do dogs do in the park", config=config)
    assert "<search>" in generator.prompts[1] and '<source id="1"' in generator.prompts[1]
    assert "Sources:" not in generator.prompts[0]  # no sources up front: the model searches
    assert answer.reasoning is not None and answer.reasoning.searches == ["dogs park"]
    assert answer.sources and answer.sources[0].path.endswith("animals.md")
    assert answer.citations == [1] and answer.grounded and not answer.reasoning.fallback


def test_fallback_to_plain_rag_when_reasoning_gives_no_answer(
    home: Paths, indexed: Path, embedder: HashEmbedder
) -> None:
    generator = ScriptedGenerator(
        ["<search>volcano</search>", "no idea </think>", "The sources do not contain the answer.", "Lava [1]."]
    )
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder)
    config = AskConfig(k=2, reasoning=ReasoningConfig(strategy="cot", max_searches=1))
    answer = assistant.ask("what do volcanoes erupt", config=config)
    assert answer.reasoning is not None and answer.reasoning.fallback
    assert answer.text == "Lava [1]." and "Sources:" in generator.prompts[-1]
    paths = [s.path for s in answer.sources]
    assert len(paths) == len(set(paths)) and any(p.endswith("notes.jsonl") for p in paths)
    no_fallback = AskConfig(k=2, reasoning=ReasoningConfig(strategy="cot", max_searches=1, fallback=False))
    generator.answers = ["<search>volcano</search>", "no idea </think>", "The sources do not contain the answer."]
    generator.prompts.clear()
    answer = assistant.ask("what do volcanoes erupt", config=no_fallback)
    assert not answer.reasoning.fallback and not answer.grounded


def test_thinking_over_sources_up_front_falls_back_to_plain_rag_on_a_refusal(
    home: Paths, indexed: Path, embedder: HashEmbedder
) -> None:
    # Measured on HotpotQA: thinking over the sources made the model refuse far more often
    # than plain RAG; a refusal after thinking now gets the plain RAG answer, as with search.
    generator = ScriptedGenerator(["hmm </think>", "The sources do not contain the answer.", "Lava [1]."])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder)
    answer = assistant.ask("what do volcanoes erupt", config=AskConfig(k=2, reasoning=ReasoningConfig(strategy="cot")))
    assert answer.reasoning is not None and answer.reasoning.fallback
    assert answer.text == "Lava [1]." and answer.grounded and "<think>" not in generator.prompts[-1]
    generator = ScriptedGenerator(["hmm </think>", "Lava [1]."])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder)
    answer = assistant.ask("what do volcanoes erupt", config=AskConfig(k=2, reasoning=ReasoningConfig(strategy="cot")))
    assert answer.reasoning is not None and not answer.reasoning.fallback and len(generator.prompts) == 2


def test_an_empty_index_does_not_let_the_model_guess(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    (tmp_path / "empty").mkdir()
    add_paths(home, "empty", [tmp_path / "empty"], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    generator = ScriptedGenerator(["x </think>", "The answer is 4."])
    assistant = Assistant(index="empty", home=home.home, generator=generator, embedder=embedder)
    answer = assistant.ask("anything", config=AskConfig(reasoning=ReasoningConfig(strategy="cot")))
    assert answer.text == "The sources do not contain the answer." and not generator.prompts


def test_the_api_run_pauses_takes_context_and_resumes(home: Paths) -> None:
    generator = ScriptedGenerator(["first part of a long thought </think>", "so 5 </think>", "The answer is 5."])
    assistant = Assistant(index=None, home=home.home, generator=generator)
    run = assistant.start("what is it", config=AskConfig(retrieval=False, reasoning=ReasoningConfig(strategy="cot")))
    for event in run:
        if isinstance(event, Thinking):
            break
    run.add_context("it is 5")
    answer = next(e for e in run if isinstance(e, Finished)).result
    assert "(Note from the user: it is 5)" in generator.prompts[1] and answer.text == "The answer is 5."
    assert assistant.last_answer is answer


def test_chat_thinks_when_asked(home: Paths, scripted: ScriptedGenerator) -> None:
    result = runner.invoke(app, ["chat", "--no-retrieval", "--strategy", "cot"], input="sheep?\n/exit\n")
    assert result.exit_code == 0, result.output
    assert "17 minus 8 die leaves 9" in result.stdout and "The answer is 9." in result.stdout


def test_ask_think_with_an_index_uses_the_rag_default(
    home: Paths, indexed: Path, fake_embedder: HashEmbedder, scripted: ScriptedGenerator
) -> None:
    from dca.reasoning.config import THINK_DEFAULT_RAG

    assert not THINK_DEFAULT_RAG.thinks  # measured: a direct answer over the sources scores best
    scripted.answers = ["Dogs fetch sticks [1]."]
    result = runner.invoke(app, ["ask", "what do dogs fetch", "--think", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["thinking"] is None and data["answer"] == "Dogs fetch sticks [1]."
    assert data["citations"] and '<source id="1"' in scripted.prompts[0] and "<think>" not in scripted.prompts[0]
    assert "--think: answering directly" in result.stderr
    scripted.prompts.clear()
    scripted.answers = ["dogs fetch </think>", "Dogs fetch sticks [1]."]
    result = runner.invoke(app, ["ask", "what do dogs fetch", "--think", "--strategy", "cot", "--json"])
    assert json.loads(result.stdout)["thinking"]["strategy"] == "cot" and "answering directly" not in result.stderr
    result = runner.invoke(app, ["ask", "what do dogs fetch", "--think", "--budget", "-5"])
    assert result.exit_code == 1 and result.stderr.strip().splitlines() == [
        "error: the thinking budget must be between 1 and 32768 tokens, got -5"
    ]  # one line: the notice about answering directly is not printed before the error


def test_max_tokens_or_a_budget_beyond_the_context_is_refused(home: Paths, scripted: ScriptedGenerator) -> None:
    # it used to answer "The sources do not contain the answer." with exit 0
    result = runner.invoke(app, ["ask", "sheep?", "--no-retrieval", "--max-tokens", "4096"])
    assert result.exit_code == 1 and "--max-tokens 4096 leaves no room" in result.output
    result = runner.invoke(app, ["ask", "sheep?", "--no-retrieval", "--strategy", "cot", "--budget", "5000"])
    assert result.exit_code == 1 and "--budget 5000 does not fit" in result.output
    assert not scripted.prompts


def test_ask_reads_the_question_from_stdin(home: Paths, scripted: ScriptedGenerator) -> None:
    scripted.answers = ["Nine."]
    piped = runner.invoke(app, ["ask", "-", "--no-retrieval"], input="How many sheep are left?\n")
    assert piped.exit_code == 0 and "Nine." in piped.stdout
    assert "How many sheep are left?" in scripted.prompts[-1]
    bare = runner.invoke(app, ["ask", "--no-retrieval"], input="What about goats?\n")
    assert bare.exit_code == 0 and "What about goats?" in scripted.prompts[-1]
    empty = runner.invoke(app, ["ask", "-", "--no-retrieval"], input="   \n")
    assert empty.exit_code == 1 and "stdin held no question" in empty.output


@pytest.mark.parametrize(
    ("second", "answer"),
    [
        ("fetch sticks", "fetch sticks [1]."),  # the phrase, with the bare answer's markers
        ("The sources do not contain the answer.", "The sources do not contain the answer."),
        ("[2]", "The sources do not contain the answer."),  # nothing again: not in the sources
        ("Rex the dog", "The sources do not contain the answer."),  # a phrase no source holds
        ("Yes", "Yes [1]."),  # an answer, not a claim the sources' words could hold
    ],
)
def test_a_citation_alone_is_never_the_answer(
    home: Paths, indexed: Path, embedder: HashEmbedder, second: str, answer: str
) -> None:
    """The small model sometimes answers a cited question with "[1]" and nothing else: that is
    held back (a stream never shows it) and the question is asked again in the short style."""
    generator = ScriptedGenerator(["[1]", second])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder)
    events = list(assistant.stream("what do dogs do in the park", config=AskConfig(k=3)))
    streamed = "".join(e for e in events if isinstance(e, str))
    final = events[-1]
    assert isinstance(final, Answer)
    assert streamed == final.text == answer
    assert "shortest phrase" in generator.prompts[1] and "End each sentence" in generator.prompts[0]
    assert generator.prompts[1][:200] == generator.prompts[0][:200]  # the same sources first: a cached prefix
    assert "answered with a citation alone ([1])" in final.warnings[-1]
    assert ("is not in the sources" in final.warnings[-1]) == second.startswith("Rex")
    assert final.completion_tokens == 1 + len(second.split())  # both passes count


def test_an_answer_that_starts_with_a_citation_streams_whole(
    home: Paths, indexed: Path, embedder: HashEmbedder
) -> None:
    generator = ScriptedGenerator(["[1] Dogs fetch sticks."])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder)
    events = list(assistant.stream("what do dogs do in the park", config=AskConfig(k=3)))
    assert [e for e in events if isinstance(e, str)] == ["[1]", " Dogs", " fetch", " sticks."]
    assert len(generator.prompts) == 1  # not asked again
    short = Assistant(index="default", home=home.home, generator=ScriptedGenerator(["[1]"]), embedder=embedder)
    assert short.ask("dogs?", config=AskConfig(k=3, style="short")).text == "[1]"  # the short style is left alone


def test_a_bare_answer_citing_two_sources_keeps_both_in_one_marker(
    home: Paths, indexed: Path, embedder: HashEmbedder
) -> None:
    generator = ScriptedGenerator(["[1] [3]", "fetch sticks in the park"])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder)
    answer = assistant.ask("what do dogs do in the park", config=AskConfig(k=3, repoint_citations=False))
    assert answer.text == "fetch sticks in the park [1, 3]." and answer.citations == [1, 3]


def test_a_refusal_lists_the_sources_it_read_closest_first(
    home: Paths, indexed: Path, fake_embedder: HashEmbedder, scripted: ScriptedGenerator
) -> None:
    """ "Not in the sources" shows what was searched: the sources read, the closest first, so the
    user sees the answer is missing from them rather than unsearched."""
    scripted.answers = ["The sources do not contain the answer."]
    result = runner.invoke(app, ["ask", "what do dogs fetch", "--no-log"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    at = lines.index("Read, and none states it (closest first):")
    assert lines[at - 1] == "The sources do not contain the answer." and lines[at + 1].startswith("  [1] ")
    assert "(no source cited)" not in result.stdout
    scripted.answers = ["Dogs fetch sticks [1]."]
    cited = runner.invoke(app, ["ask", "what do dogs fetch", "--no-log"]).stdout
    assert "Sources:" in cited and "Read, and none" not in cited
