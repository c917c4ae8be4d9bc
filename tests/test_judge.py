"""The grounding judge (dca/pipeline/judge.py): before the answer is written, a probe on the
hidden state at the end of the prompt and the best source's similarity say whether the sources
hold the answer; "not in the sources" then ends the run without a generated word. Scripted
generator whose "hidden state" says whether the prompt's sources mention cats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import HashEmbedder, ScriptedGenerator, catalog_with_bundled, make_corpus
from typer.testing import CliRunner

from dca.api import AskConfig, Assistant
from dca.cli import app
from dca.config import Paths
from dca.errors import ConfigError
from dca.knowledge import add_paths
from dca.pipeline import Judge
from dca.reasoning.config import ReasoningConfig

runner = CliRunner()
CHECKED = AskConfig(check=True)


class Reader(ScriptedGenerator):
    """A generator that reads hidden states: 1 where the prompt's question is about cats."""

    reads_hidden_states = True

    def __init__(self, answers: list[str]) -> None:
        super().__init__(answers)
        self.states: list[str] = []

    def prompt_state(self, prompt: str, config: Any) -> np.ndarray:
        self.states.append(prompt)
        question = prompt.rsplit("<source", 1)[-1]
        return np.array([1.0 if "cat" in question.lower() else -1.0, 0.5])


def judge_bytes(*, threshold: float = 0.5, min_similarity: float = 0.0, **meta: Any) -> bytes:
    """A judge file's bytes: weights that read the first value of the Reader's state."""
    data = {
        "format": "dca-probe-1",
        "base_model": "scripted",
        "bias": 0.0,
        "weights": [4.0, 0.0],
        "mean": [0.0, 0.0],
        "scale": [1.0, 1.0],
        "meta": {
            "reads": "answerable",
            "position": "prompt",
            "threshold": threshold,
            "min_similarity": min_similarity,
            "embedder": HashEmbedder.name,
            **meta,
        },
    }
    return json.dumps(data).encode()


def judge_file(path: Path, **meta: Any) -> None:
    path.write_bytes(judge_bytes(**meta))


def with_judge(paths: Paths, **meta: Any) -> Path:
    """A catalog of the scripted generator and its bundled judge (models/adapters/scripted-judge.json)."""
    return catalog_with_bundled(
        paths, name="scripted-judge", role="judge", base="scripted", data=judge_bytes(**meta), suffix=".json"
    )


@pytest.fixture
def indexed(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> Path:
    corpus = make_corpus(tmp_path / "corpus")
    add_paths(home, "default", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    return corpus


def test_the_judge_refuses_before_a_word_is_generated_and_lets_an_answerable_question_through(
    home: Paths, indexed: Path, embedder: HashEmbedder
) -> None:
    with_judge(home)
    generator = Reader(["Rex the dog wrote it [1]."])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder, config=CHECKED)
    refused = assistant.ask("Who wrote the dog novel?")
    assert refused.text == "The sources do not contain the answer." and not refused.grounded
    assert generator.prompts == [] and len(generator.states) == 1  # read, not generated
    assert refused.judge is not None and refused.judge["verdict"] == "not in the sources"
    assert refused.judge["score"] < 0.5 and refused.sources  # the sources read are kept, to be shown
    assert any("do not seem to hold the answer" in w for w in refused.warnings)
    generator.answers = ["Cats purr [1]."]
    answered = assistant.ask("What do cats do at night?")
    assert answered.text == "Cats purr [1]." and answered.grounded
    assert answered.judge is not None and answered.judge["verdict"] == "answerable" and answered.judge["score"] > 0.5
    payload = answered.to_json()
    assert payload["judge"]["verdict"] == "answerable" and payload["schema_version"] == 6
    assert generator.states[-1] == generator.prompts[-1]  # the state read is the answer's own prompt


def test_no_check_closed_book_and_thinking_are_not_judged(home: Paths, indexed: Path, embedder: HashEmbedder) -> None:
    with_judge(home)
    generator = Reader(["Rex [1]."])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder, config=CHECKED)
    answer = assistant.ask("Who wrote the dog novel?", config=AskConfig(check=False))
    assert answer.text == "Rex [1]." and answer.judge is None and not generator.states
    answer = assistant.ask("Who wrote the dog novel?", config=AskConfig(retrieval=False))
    assert answer.judge is None and not generator.states
    generator.answers = ["x </think>", "Rex [1]."]
    answer = assistant.ask("Who wrote it?", config=AskConfig(check=True, reasoning=ReasoningConfig(strategy="cot")))
    assert answer.judge is None and not generator.states


def test_the_similarity_floor_judges_only_without_hidden_states_and_only_for_its_own_embedder(
    home: Paths, indexed: Path, embedder: HashEmbedder
) -> None:
    with_judge(home, min_similarity=0.99)
    generator = ScriptedGenerator(["Cats purr [1]."])  # a server's model: no hidden states
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder, config=CHECKED)
    answer = assistant.ask("What do cats do at night?")
    assert answer.text == "The sources do not contain the answer." and not generator.prompts
    assert answer.judge is not None and answer.judge["score"] is None and answer.judge["min_similarity"] == 0.99
    with_judge(home, min_similarity=0.99, embedder="another-embedder")
    answer = assistant.ask("What do cats do at night?")
    assert answer.text == "Cats purr [1]." and answer.judge is not None and answer.judge["min_similarity"] is None
    with_judge(home, min_similarity=0.99)  # with hidden states, the probe judges alone
    reader = Reader(["Cats purr [1]."])
    answer = Assistant(index="default", home=home.home, generator=reader, embedder=embedder, config=CHECKED).ask(
        "What do cats do?"
    )
    assert answer.text == "Cats purr [1]." and answer.judge["min_similarity"] is None and answer.judge["score"] > 0.5


def test_a_damaged_judge_is_one_line_and_no_judge_for_another_model(
    home: Paths, indexed: Path, embedder: HashEmbedder
) -> None:
    path = with_judge(home)
    path.write_text(path.read_text().replace("4.0", "5.0"))  # same size, other bytes: fails its sha256
    generator = Reader(["Cats purr [1]."])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder, config=CHECKED)
    with pytest.raises(ConfigError, match="grounding judge scripted-judge is damaged .*--no-check"):
        assistant.ask("What do cats do?")
    assert assistant.ask("What do cats do?", config=AskConfig(check=False)).text == "Cats purr [1]."
    broken = home.models / "adapters" / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="grounding judge .*broken.json is damaged"):
        Judge.load(broken)
    judge_file(broken, threshold=2.0)
    with pytest.raises(ConfigError, match="thresholds out of range"):
        Judge.load(broken)
    judge_file(broken, reads="grounded")
    with pytest.raises(ConfigError, match="is not a grounding judge"):
        Judge.load(broken)
    with_judge(home)
    other = Reader(["Rex [1]."])
    other.name = "other-model"
    assistant = Assistant(index="default", home=home.home, generator=other, embedder=embedder, config=CHECKED)
    assert assistant.ask("Who wrote the dog novel?").judge is None  # no judge is made for it


def test_ask_json_carries_the_verdict_and_the_check_is_off_unless_asked(
    home: Paths, indexed: Path, embedder: HashEmbedder, monkeypatch: pytest.MonkeyPatch, fake_embedder: HashEmbedder
) -> None:
    import dca.runtime.llama as llama_module

    with_judge(home)
    generator = Reader(["Rex the dog wrote it [1]."])
    monkeypatch.setattr(llama_module, "load_runtime", lambda model=None, paths=None, config=None: generator)
    result = runner.invoke(app, ["ask", "Who wrote the dog novel?", "--json", "--check"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["judge"]["verdict"] == "not in the sources" and payload["answer"].startswith("The sources do not")
    plain = runner.invoke(app, ["ask", "Who wrote the dog novel?", "--check"])
    assert "Read, and none states it (closest first):" in plain.stdout
    for off in ([], ["--no-check"]):  # off by default
        result = runner.invoke(app, ["ask", "Who wrote the dog novel?", "--json", *off])
        payload = json.loads(result.stdout)
        assert payload["judge"] is None and payload["answer"] == "Rex the dog wrote it [1]."


def test_the_claim_check_drops_a_sentence_the_sources_do_not_hold_and_refuses_when_none_is_left(
    home: Paths, indexed: Path, embedder: HashEmbedder
) -> None:
    generator = ScriptedGenerator(["Cats purr at night [1]. Emerson wrote about them in Concord [1]."])
    assistant = Assistant(index="default", home=home.home, generator=generator, embedder=embedder, config=CHECKED)
    answer = assistant.ask("What do cats do?")
    assert answer.text == "Cats purr at night [1]." and answer.citations == [1]
    assert any("dropped 1 sentence" in w and "Emerson" in w for w in answer.warnings)
    generator.answers = ["Ralph Waldo Emerson [1]."]
    answer = assistant.ask("Who wrote about cats?")
    assert answer.text == "The sources do not contain the answer." and not answer.grounded
    assert answer.unsupported_text == "Ralph Waldo Emerson [1]."
    generator.answers = ["Yes [1]."]  # adds no new word: nothing to look up
    assert assistant.ask("Do cats purr?").text == "Yes [1]."
    generator.answers = ["Ralph Waldo Emerson [1]."]
    assert assistant.ask("Who wrote about cats?", config=AskConfig(check=False)).text == "Ralph Waldo Emerson [1]."


def test_a_streamed_answer_the_claim_check_changed_is_given_again(
    home: Paths, indexed: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: HashEmbedder
) -> None:
    import dca.runtime.llama as llama_module

    generator = ScriptedGenerator(["Ralph Waldo Emerson [1]."])
    monkeypatch.setattr(llama_module, "load_runtime", lambda model=None, paths=None, config=None: generator)
    result = runner.invoke(app, ["ask", "Who wrote about cats?", "--stream", "--check"])
    assert result.exit_code == 0, result.output
    assert "Ralph Waldo Emerson" in result.stdout  # streamed as the model wrote it
    assert "note: after its checks the answer is: The sources do not contain the answer." in result.stderr
    assert "Read, and none states it (closest first):" in result.stdout
