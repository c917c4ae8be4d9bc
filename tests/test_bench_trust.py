"""The trust benchmark's cases and judgement (benchmarks/bench_trust.py), on a small made-up
SQuAD file: a removed paragraph is out of the indexed document and its questions are the gaps."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import bench_trust


def _article(title: str, n: int) -> dict:
    paragraphs = []
    for i in range(n):
        qas = [
            {
                "id": f"{title}-{i}-a",
                "question": f"What is fact {i} of {title}?",
                "answers": [{"text": f"{title}fact{i}"}],
            }
        ]
        if i % 2:
            qas.append(
                {"id": f"{title}-{i}-u", "question": f"Who denied fact {i}?", "answers": [], "is_impossible": True}
            )
        paragraphs.append({"context": f"{title} paragraph {i} says {title}fact{i} plainly.", "qas": qas})
    return {"title": title, "paragraphs": paragraphs}


def test_a_removed_paragraph_leaves_its_document_and_its_questions_are_the_gaps() -> None:
    articles = [_article("Alpha_Beta", 9), _article("Gamma", 6)]
    documents, cases = bench_trust.article_documents(articles)
    assert set(documents) == {"Alpha_Beta.md", "Gamma.md"} and documents["Alpha_Beta.md"].startswith("# Alpha Beta\n")
    text = "".join(documents.values())
    gaps = [c for c in cases if c.kind == "gap"]
    assert len(gaps) == 2 * bench_trust.REMOVED_PER_ARTICLE
    assert all(f"says {c.gold[0]} plainly" not in text for c in gaps)  # the gold passage is gone
    answerable = [c for c in cases if c.kind == "answerable"]
    assert answerable and all(f"says {c.gold[0]} plainly" in text for c in answerable)
    unanswerable = [c for c in cases if c.kind == "unanswerable"]
    assert unanswerable and all(not c.gold for c in unanswerable)
    title_and_paragraph = [c.id.rsplit("-", 2)[:2] for c in unanswerable]
    assert all(f"{title} paragraph {i} says" in text for title, i in title_and_paragraph)  # their paragraph is indexed
    assert [c.id for c in answerable[:2]] == ["Alpha_Beta-0-a", "Gamma-0-a"]  # round-robin over the articles
    assert bench_trust.article_documents(articles) == (documents, cases)  # the same every time


def test_an_answer_is_judged_refused_right_or_wrong_and_citing() -> None:
    case = bench_trust.Case("q", "answerable", "Who led the Norse?", ("Rollo",))

    def answer(text: str, citations: list[int]) -> SimpleNamespace:
        return SimpleNamespace(
            text=text, citations=citations, support=0.8, judge=None, prompt_tokens=10, completion_tokens=3
        )

    right = bench_trust.judged(case, answer("Rollo led them [1].", [1]))
    assert right["holds_gold"] and right["cited"] and not right["refused"]
    wrong = bench_trust.judged(case, answer("Rollos was a town [2].", [2]))
    assert not wrong["holds_gold"] and wrong["cited"]  # a longer word is not the answer
    refused = bench_trust.judged(case, answer("The sources do not contain the answer.", []))
    assert refused["refused"] and not refused["holds_gold"] and not refused["cited"]
    assert bench_trust.auroc([0.9, 0.8], [0.1, 0.8]) == 0.875 and bench_trust.auroc([], [0.1]) is None


def test_calibration_and_evaluation_share_no_off_topic_question() -> None:
    hotpot = [{"question": f"Question {n}?"} for n in range(100)]
    evaluation = bench_trust.off_topic_cases(hotpot, "eval")
    calibration = bench_trust.off_topic_cases(hotpot, "calibration")
    assert len(evaluation) == len(calibration) == bench_trust.COUNTS["off_topic"]
    assert not {c.question for c in evaluation} & {c.question for c in calibration}
    assert not {c.id for c in evaluation} & {c.id for c in calibration}
