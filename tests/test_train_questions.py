"""`dca train questions`: question-answer pairs made from any index, kept only when the answer
is a span of the chunk; resumable; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import HashEmbedder, ScriptedGenerator
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.errors import TrainError
from dca.knowledge import add_paths
from dca.train.questions import QuestionsConfig, make_questions

runner = CliRunner()
PASSAGES = {
    "rome.md": "# Rome\n\nRome was founded by Romulus in 753 BC, according to the legend told by Livy. "
    "It grew from a village on the Palatine hill into the capital of an empire around the Mediterranean.\n",
    "kettle.md": "# Kettle\n\nThe Brio kettle holds 1.7 litres of water and boils it in about three minutes "
    "at full power. Its base lights up blue while it heats and switches off by itself when done.\n",
}


@pytest.fixture
def corpus_index(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in PASSAGES.items():
        (corpus / name).write_text(text)
    add_paths(home, "notes", [corpus], embedder_name=embedder.name, embedder_factory=lambda: embedder)
    return corpus


def test_a_pair_is_kept_only_when_its_answer_is_in_the_chunk(home: Paths, tmp_path: Path, corpus_index: Path) -> None:
    class Writer(ScriptedGenerator):
        def _next_text(self, prompt: str, config: object) -> str:
            self.prompts.append(prompt)
            if "Romulus" in prompt:
                return "Question: Who founded Rome?\nAnswer: Romulus"
            return "Question: How much water does the kettle hold?\nAnswer: 2 litres"  # not in the passage

    generator = Writer()
    out = tmp_path / "q.jsonl"
    counts = make_questions(QuestionsConfig(index="notes", min_chars=50), out=out, paths=home, generator=generator)
    rows = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert counts == {"chunks_read": 2, "pairs_kept": 1}
    assert rows["rome.md"]["kept"] and rows["rome.md"]["answer"] == "Romulus"
    assert not rows["kettle.md"]["kept"] and rows["kettle.md"]["refused"] == "the answer is not in the passage"
    again = ScriptedGenerator()  # a rerun reads nothing again
    assert make_questions(QuestionsConfig(index="notes", min_chars=50), out=out, paths=home, generator=again) == counts
    assert again.prompts == []


def test_bad_input_is_one_line(home: Paths, tmp_path: Path, corpus_index: Path, fake_embedder: HashEmbedder) -> None:
    with pytest.raises(TrainError, match="no chunk of 5000 characters or more"):
        make_questions(QuestionsConfig(index="notes", min_chars=5000), out=tmp_path / "q.jsonl", paths=home)
    result = runner.invoke(app, ["train", "questions", "--index", "nope", "--out", str(tmp_path / "q.jsonl")])
    assert result.exit_code == 1 and "no index named 'nope'" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, ["train", "questions", "--index", "notes", "--out", str(tmp_path), "--min-chars", "50"])
    assert result.exit_code == 1 and "is a folder" in result.output
