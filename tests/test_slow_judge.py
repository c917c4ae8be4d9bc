"""The grounding judge that ships (`--check`), on the default model over a real index of two
product notes (the issue's cases: asked who wrote Pride and Prejudice, dca used to answer and
cite toaster.md; asked what the toaster weighs, it answered with its power). It answers the
question the notes answer; the off-topic one it refuses in most runs, not all (its score sits at
the threshold: a non-strict xfail), and the weight question it does not refuse (a strict xfail:
it will say when that changes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import real_models_home

pytestmark = pytest.mark.slow

KETTLE = """# Brava kettle

The Brava electric kettle holds 1.7 litres and boils a full load in about four minutes. It
switches itself off when the water boils or when it is lifted from its base. The base stores
the cable underneath. Descale it every month in hard-water areas with water and white vinegar.
"""
TOASTER = """# Orin toaster

The Orin toaster has two wide slots and draws 900 watts. Its browning dial has seven settings;
setting 3 suits most bread. The crumb tray slides out from the back and should be emptied
weekly. A cancel button stops toasting at once.
"""


def _ask(home: Path, question: str, *extra: str) -> dict:
    env = {"DCA_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "dca", "ask", question, "--json", "--max-tokens", "48", "--check", *extra],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def notes_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("judge")
    home = real_models_home(tmp_path)
    corpus = tmp_path / "notes"
    corpus.mkdir()
    (corpus / "kettle.md").write_text(KETTLE)
    (corpus / "toaster.md").write_text(TOASTER)
    env = {"DCA_HOME": str(home), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    added = subprocess.run([sys.executable, "-m", "dca", "index", "add", str(corpus)], env=env, capture_output=True)
    assert added.returncode == 0, added.stderr
    return home


def _refused(answer: dict) -> None:
    assert answer["judge"]["verdict"] == "not in the sources", (answer["judge"], answer["answer"])
    assert answer["answer"] == "The sources do not contain the answer." and not answer["citations"]
    assert answer["usage"]["completion_tokens"] == 0 and answer["sources"]  # nothing generated; what was read shown


def test_the_shipped_judge_answers_what_the_notes_say(notes_home: Path) -> None:
    answer = _ask(notes_home, "How many litres does the Brava kettle hold?")
    assert answer["judge"]["verdict"] == "answerable" and "1.7" in answer["answer"], answer
    assert answer["citations"] and answer["citations"][0]["path"].endswith("kettle.md")
    unchecked = _ask(notes_home, "Who wrote the novel Pride and Prejudice?", "--no-check")  # as by default
    assert unchecked["judge"] is None


@pytest.mark.xfail(
    strict=False,
    reason="a known weakness (docs/RESULTS.md, 'Trust'): the judge scores this off-topic question 0.22-0.23 "
    "from one run to the next (llama.cpp's hidden states move by ~1 % between runs on this CPU), astride its "
    "0.2214 threshold, so it is refused in most runs, not all; its source similarity (0.02) would refuse it, "
    "but the similarity judges only where no hidden state is read",
)
def test_the_shipped_judge_refuses_an_off_topic_question(notes_home: Path) -> None:
    _refused(_ask(notes_home, "Who wrote the novel Pride and Prejudice?"))


@pytest.mark.xfail(
    strict=True,
    reason="a known miss (docs/RESULTS.md, 'Trust'): the judge scores this question 0.60, above its 0.22 "
    "threshold, and the model answers 'The Orin toaster weighs 900 watts. [1]'; the claim check keeps it "
    "(900 and watts are in the note)",
)
def test_the_shipped_judge_refuses_a_question_the_notes_come_close_to_but_do_not_answer(notes_home: Path) -> None:
    _refused(_ask(notes_home, "How much does the Orin toaster weigh?"))
