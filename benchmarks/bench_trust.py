"""Trust: does `dca ask` say "not in the sources" when the answer is not there, and answer when it is?

Realistic cases built from SQuAD 2.0 articles (../shared/data/squad2_dev, file order), each
article one document of the index (`# Title`, then its paragraphs), and HotpotQA dev questions:

- ``answerable``: a SQuAD question whose paragraph is in the index;
- ``gap`` (retrieval gap): a SQuAD question whose paragraph was removed from its article
  (three per article), the rest of the article indexed: the user's files do not say it;
- ``off_topic``: a HotpotQA question over the SQuAD index: nothing indexed covers it (questions
  1-30 for the evaluation, 31-60 for calibration);
- ``unanswerable``: SQuAD 2.0's own unanswerable questions, their paragraph indexed.

Each question is asked as `dca ask` asks it, with default settings but for the checks.
``--run checked``: the grounding judge and the claim check on (``check=True``; the judge's
verdict and score recorded). ``--run unchecked``: both off: the answers and the time the checks
are measured against, in the same sitting. ``--run baseline``: both off, the grounded check's
P("Yes") recorded but refusing nothing (``min_support=0``): the rows the judge's thresholds were
studied on. Every run records the best cosine similarity of the retrieved sources. Per kind:
refused, answered holding a gold answer, answered wrong, whether wrong answers cite a source,
seconds per question; per signal, its AUROC at telling the answerable questions from each other
kind. ``--split eval`` reads articles 11-16 (the evaluation); ``--split calibration`` articles
1-10 (where thresholds may be chosen).

    .venv/bin/python benchmarks/bench_trust.py [--split eval] [--run checked] [--data-dir ../shared/data]

Rows go to lab/results/trust_SPLIT[_RUN].jsonl as they are answered (a rerun resumes; the
baseline's file has no suffix), the table to lab/results/trust_SPLIT[_RUN].json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import RESULTS, folder_home, print_table, write_results

from dca.files import complete_jsonl_lines

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
SPLITS = {"eval": range(10, 16), "calibration": range(0, 10)}  # article positions in the file
COUNTS = {"answerable": 40, "gap": 40, "off_topic": 30, "unanswerable": 20}  # questions per kind
REMOVED_PER_ARTICLE = 3
KINDS = tuple(COUNTS)
RUNS = ("checked", "unchecked", "baseline")


def run_config(run: str) -> Any:
    """The AskConfig a run asks with: the defaults with the judge and claim check on or off, or
    the baseline's (both off, the grounded check's P("Yes") recorded)."""
    from dca.api import AskConfig

    return {
        "checked": AskConfig(check=True),
        "unchecked": AskConfig(check=False),
        "baseline": AskConfig(check=False, min_support=0.0),
    }[run]


def run_name(split: str, run: str) -> str:
    return f"trust_{split}" if run == "baseline" else f"trust_{split}_{run}"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    question: str
    gold: tuple[str, ...]  # answers that count as right (none for the kinds without an answer)


def article_documents(
    articles: list[dict[str, Any]], counts: dict[str, int] = COUNTS, skip: frozenset[str] = frozenset()
) -> tuple[dict[str, str], list[Case]]:
    """The documents to index (file name -> text) and the SQuAD cases of ``articles``: in each,
    REMOVED_PER_ARTICLE paragraphs that hold answerable questions are left out, evenly spread
    (their questions are the retrieval gaps). Cases come round-robin over the articles, in
    file order, so every article contributes to every kind; ``counts`` per kind, none whose id
    is in ``skip`` (a training set drawn beside the benchmark's own cases)."""
    documents: dict[str, str] = {}
    by_article: list[dict[str, list[Case]]] = []
    for article in articles:
        paragraphs = article["paragraphs"]
        answerable = [i for i, p in enumerate(paragraphs) if any(not q.get("is_impossible") for q in p["qas"])]
        step = max(1, len(answerable) // REMOVED_PER_ARTICLE)
        removed = set(answerable[step // 2 :: step][:REMOVED_PER_ARTICLE])
        kept = [p["context"].strip() for i, p in enumerate(paragraphs) if i not in removed]
        title = article["title"].replace("_", " ")
        documents[f"{article['title']}.md"] = f"# {title}\n\n" + "\n\n".join(kept) + "\n"
        cases: dict[str, list[Case]] = {kind: [] for kind in KINDS}
        for i, paragraph in enumerate(paragraphs):
            for qa in paragraph["qas"]:
                if qa.get("is_impossible"):
                    kind, gold = ("unanswerable", ()) if i not in removed else ("", ())
                else:
                    kind = "gap" if i in removed else "answerable"
                    gold = tuple(dict.fromkeys(a["text"] for a in qa["answers"]))
                if kind and qa["id"] not in skip:
                    cases[kind].append(Case(qa["id"], kind, qa["question"].strip(), gold))
        by_article.append(cases)
    chosen: list[Case] = []
    for kind in ("answerable", "gap", "unanswerable"):
        pools = [cases[kind] for cases in by_article]
        picked: list[Case] = []
        depth = 0
        while len(picked) < counts.get(kind, 0) and any(depth < len(pool) for pool in pools):
            picked += [pool[depth] for pool in pools if depth < len(pool)]
            depth += 1
        chosen += picked[: counts.get(kind, 0)]
    return documents, chosen


def off_topic_cases(hotpot: list[dict[str, Any]], split: str) -> list[Case]:
    """HotpotQA dev questions, about things the SQuAD articles do not cover: the first ones for
    the evaluation, the next ones for calibration (no question is in both)."""
    first = 0 if split == "eval" else COUNTS["off_topic"]
    picked = hotpot[first : first + COUNTS["off_topic"]]
    return [
        Case(f"hotpot-{first + n}", "off_topic", item["question"].strip(), ()) for n, item in enumerate(picked, start=1)
    ]


def judged(case: Case, answer: Any) -> dict[str, Any]:
    """A case's row: refused, held a gold answer (SQuAD normalisation, as a span of the answer),
    cited a source."""
    from dca.answer import is_refusal, strip_citations
    from dca.eval.metrics import normalize_text

    text = answer.text
    refused = is_refusal(text)
    said = f" {normalize_text(strip_citations(text))} "
    holds = not refused and any(f" {normalize_text(g)} " in said for g in case.gold if normalize_text(g))
    return {
        "id": case.id,
        "kind": case.kind,
        "question": case.question,
        "gold": list(case.gold),
        "answer": text,
        "refused": refused,
        "holds_gold": holds,
        "cited": bool(answer.citations),
        "support": answer.support,
        "judge": (answer.judge or {}).get("score"),
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
    }


def refused_by(rows: list[dict[str, Any]], refuses: Callable[[dict[str, Any]], bool]) -> dict[str, str]:
    """Per kind, how many of its rows a refusal rule refuses ("n/of"), and how many answerable
    rows holding gold it costs (``gold_lost``)."""
    line = {}
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        line[kind] = f"{sum(bool(refuses(r)) for r in mine)}/{len(mine)}"
    gold = [r for r in rows if r["kind"] == "answerable" and r["holds_gold"]]
    line["gold_lost"] = f"{sum(bool(refuses(r)) for r in gold)}/{len(gold)}"
    return line


def auroc(positives: list[float], negatives: list[float]) -> float | None:
    """P(a positive scores above a negative), ties counted half; None without both."""
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return round(wins / (len(positives) * len(negatives)), 3)


def table(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per kind: the counts; per signal: AUROC of answerable against each other kind."""
    counts = []
    for kind in KINDS:
        mine = [r for r in rows if r["kind"] == kind]
        wrong = [r for r in mine if not r["refused"] and not r["holds_gold"]]
        counts.append(
            {
                "kind": kind,
                "n": len(mine),
                "refused": sum(r["refused"] for r in mine),
                "answered_gold": sum(r["holds_gold"] for r in mine),
                "answered_wrong": len(wrong),
                "wrong_citing": sum(r["cited"] for r in wrong),
                "seconds": round(sum(r["seconds"] for r in mine) / max(1, len(mine)), 2),
            }
        )
    signals = []
    for signal in ("support", "similarity", "judge"):
        answerable = [r.get(signal) for r in rows if r["kind"] == "answerable" and r.get(signal) is not None]
        row: dict[str, Any] = {"signal": signal}
        for kind in KINDS[1:]:
            row[kind] = auroc(answerable, [r[signal] for r in rows if r["kind"] == kind and r.get(signal) is not None])
        signals.append(row)
    return counts, signals


@contextmanager
def documents_home(documents: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    """(paths, embedder): ``documents`` (file name -> text) indexed as "corpus" in a temporary
    DCA_HOME that shares the checkout's models (the embedded store)."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "documents"
        corpus.mkdir()
        for name, text in documents.items():
            (corpus / name).write_text(text, encoding="utf-8")
        with folder_home(corpus) as pair:
            yield pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=tuple(SPLITS), default="eval")
    parser.add_argument("--run", choices=RUNS, default="checked")
    parser.add_argument("--only", choices=KINDS, help="ask the questions of this kind alone (a time comparison)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    squad = json.loads((args.data_dir / "squad2_dev" / "dev-v2.0.json").read_text(encoding="utf-8"))["data"]
    hotpot = json.loads((args.data_dir / "hotpotqa" / "hotpot_dev_distractor_100.json").read_text(encoding="utf-8"))
    documents, cases = article_documents([squad[i] for i in SPLITS[args.split]])
    cases += off_topic_cases(hotpot, args.split)
    if args.only:
        cases = [c for c in cases if c.kind == args.only]
    name = run_name(args.split, args.run)
    out = RESULTS / f"{name}.jsonl"
    rows = [json.loads(line) for line in complete_jsonl_lines(out)]
    done = {r["id"] for r in rows}
    from dca.api import Assistant

    with documents_home(documents) as (home, embedder):
        assistant = Assistant(index="corpus", home=home.home, embedder=embedder, config=run_config(args.run))
        began = time.perf_counter()
        todo = [c for c in cases if c.id not in done]
        for number, case in enumerate(todo, start=1):
            started = time.perf_counter()
            answer = assistant.ask(case.question)
            seconds = time.perf_counter() - started
            hits = assistant.retrieve(case.question)
            row = judged(case, answer)
            row["similarity"] = max((h.similarity for h in hits if h.similarity is not None), default=None)
            row["seconds"] = round(seconds, 3)
            with out.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows.append(row)
            left = (time.perf_counter() - began) / number * (len(todo) - number)
            print(
                f"\r{number}/{len(todo)} {case.kind:12} ETA {left / 60:.1f} min   ", end="", file=sys.stderr, flush=True
            )
    print(file=sys.stderr)
    counts, signals = table(rows)
    print_table(counts, ["kind", "n", "refused", "answered_gold", "answered_wrong", "wrong_citing", "seconds"])
    print()
    print_table(signals, ["signal", *KINDS[1:]])
    seconds = round(sum(r["seconds"] for r in rows), 1)
    print(f"\n{len(rows)} questions in {seconds} s")
    write_results(
        name,
        {
            "split": args.split,
            "run": args.run,
            "counts": counts,
            "auroc": signals,
            "seconds": seconds,
            "rows": str(out),
        },
    )


if __name__ == "__main__":
    main()
