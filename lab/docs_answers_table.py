"""`dca ask`'s default answers (cited, k = 3, the base model) to the 32 questions over dca's own
docs (benchmarks/data/docs_questions.jsonl): how many came back as a citation alone and were
asked again, how many say the sources do not contain the answer, and how many cite a source
under the section that answers the question. docs/ is indexed as `make run` indexes it, in a
temporary DCA_HOME that shares the checkout's models.

    .venv/bin/python lab/docs_answers_table.py      # lab/results/docs_answers.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout: dca and benchmarks/
from benchmarks._common import folder_home, print_table, write_results

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks" / "data" / "docs_questions.jsonl"


def main() -> None:
    from dca.api import Assistant
    from dca.config import Paths
    from dca.runtime.remote import load_generator

    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    generator = load_generator(None, paths=Paths.resolve())
    answers = []
    with folder_home(ROOT / "docs") as (home, embedder):
        assistant = Assistant(index="corpus", home=home.home, generator=generator, embedder=embedder)
        for row in rows:
            began = time.perf_counter()
            answer = assistant.ask(row["question"])
            cited = [s for s in answer.sources if s.number in answer.citations]
            answers.append(
                {
                    "question": row["question"],
                    "answer": answer.text,
                    "asked_again": any("citation alone" in w for w in answer.warnings),
                    "refused": not answer.grounded,
                    "cites_gold": any(
                        s.path.endswith("/" + f) and section in s.heading for s in cited for f, section in row["gold"]
                    ),
                    "seconds": round(time.perf_counter() - began, 2),
                }
            )
            print(json.dumps(answers[-1])[:160], flush=True)
    n = len(answers)
    summary = {
        "questions": n,
        "asked_again": sum(a["asked_again"] for a in answers),
        "not_in_sources": sum(a["refused"] for a in answers),
        "cites_gold_section": sum(a["cites_gold"] for a in answers),
        "seconds_per_question": round(sum(a["seconds"] for a in answers) / n, 2),
    }
    print_table([summary], list(summary))
    write_results("docs_answers", {"summary": summary, "answers": answers})


if __name__ == "__main__":
    main()
