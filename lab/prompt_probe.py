"""Answerable or not, read before the answer (issue 49, step 3a): a linear probe on the model's
hidden state at the end of the answer's prompt.

The state at the last token of the prompt `dca ask` sends (system, sources, question, the
assistant's turn opened) is what the model knows before it writes a word; a probe there costs
no extra pass (the prompt is evaluated anyway) and can refuse before a wrong answer is written.

`features` reads that state for the trust benchmark's cases (bench_trust.py: the same index,
the same questions) and for training cases drawn beside them:

- ``train``: SQuAD 2.0 articles 1-10 (the calibration index, the same paragraphs removed),
  questions the calibration split does not ask (answerable, gap, unanswerable), and HotpotQA
  dev questions 61-100 as off-topic ones;
- ``calibration`` and ``eval``: exactly the benchmark's cases.

Only the prompt is evaluated (a `Stages.generate` that reads the state and writes nothing).
Rows go to lab/results/prompt_probe/SPLIT.jsonl as they are read (a rerun resumes): id, kind,
best similarity, whether a gold answer is in the sources given, the state (float16, base64).

- ``questions``: step 2's pairs, from a corpus that is neither: `dca train questions` over dca's
  own docs/, each kept pair read with its chunk among the sources and with every source holding
  the answer removed; ``questions-hotpot``: the same over the Wikipedia paragraphs of HotpotQA
  dev questions 61-100 (a training variant of its own, ``table --data +questions+hotpot``).

`table` fits the probe (ridge logistic regression on standardized states) on ``train`` and
``questions`` for two labels (the question is answerable; and its gold answer is in the sources
given) and three penalties, fixes each one's threshold so that it refuses at most 5 % of the
calibration split's answerable questions, chooses the one that refuses most of the calibration
split's other kinds, and reports every one on the evaluation split against the answers recorded
in lab/results/trust_eval.jsonl (no evaluation row chooses anything). ``--write-probe FILE``
writes the chosen one as a grounding judge (dca/pipeline/judge.py), with the similarity
threshold of lab/trust_threshold_table.py for where the hidden state cannot be read.

    .venv/bin/python lab/prompt_probe.py features --split train|questions|questions-hotpot|calibration|eval
    .venv/bin/python lab/prompt_probe.py table [--data +questions] [--write-probe FILE]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from dataclasses import replace
from itertools import product
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _common import RESULTS, print_table, write_results
from bench_trust import (
    DEFAULT_DATA,
    KINDS,
    SPLITS,
    Case,
    article_documents,
    auroc,
    documents_home,
    off_topic_cases,
    refused_by,
)

from dca.files import complete_jsonl_lines

OUT = RESULTS / "prompt_probe"
TRAIN_COUNTS = {"answerable": 100, "gap": 80, "unanswerable": 40}
TRAIN_OFF_TOPIC = range(60, 100)  # HotpotQA dev questions 61-100: neither split asks them
MAX_REFUSED = 0.05  # of the calibration split's answerable questions
SIMILARITY = 0.307  # the similarity gate's threshold from calibration (lab/results/trust_thresholds.json)


def encode(state: np.ndarray) -> str:
    return base64.b64encode(state.astype(np.float16).tobytes()).decode("ascii")


def decode(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float16).astype(np.float64)


def cases_of(
    split: str, squad: list[dict[str, Any]], hotpot: list[dict[str, Any]]
) -> tuple[dict[str, str], list[Case]]:
    if split == "train":
        _, benchmark = article_documents([squad[i] for i in SPLITS["calibration"]])
        documents, cases = article_documents(
            [squad[i] for i in SPLITS["calibration"]], TRAIN_COUNTS, frozenset(c.id for c in benchmark)
        )
        cases += [
            Case(f"hotpot-{n + 1}", "off_topic", hotpot[n]["question"].strip(), ())
            for n in TRAIN_OFF_TOPIC
            if n < len(hotpot)
        ]
        return documents, cases
    documents, cases = article_documents([squad[i] for i in SPLITS[split]])
    return documents, cases + off_topic_cases(hotpot, split)


def _read_state(read: list[Any]) -> Any:
    """The generate stage of this experiment: the state at the end of the answer's prompt, read
    as the grounding judge reads it (and the sources given beside it)."""

    def read_state(run: Any) -> Any:
        prompt = run.generator.chat_prompt(run.parts.messages)
        state = run.generator.prompt_state(prompt, run.gen)
        read.append((state, [s.chunk.text for s in run.parts.sources], run.best_similarity))
        yield from ()

    return read_state


def _append(out: Path, row: dict[str, Any]) -> None:
    with out.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def features(split: str, data_dir: Path) -> None:
    from dca.api import AskConfig, Assistant
    from dca.eval.metrics import normalize_text
    from dca.pipeline import STAGES

    if split in ("questions", "questions-hotpot"):
        return question_features(split, data_dir)
    squad = json.loads((data_dir / "squad2_dev" / "dev-v2.0.json").read_text(encoding="utf-8"))["data"]
    hotpot = json.loads((data_dir / "hotpotqa" / "hotpot_dev_distractor_100.json").read_text(encoding="utf-8"))
    documents, cases = cases_of(split, squad, hotpot)
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"{split}.jsonl"
    done = {json.loads(line)["id"] for line in complete_jsonl_lines(out)}
    todo = [c for c in cases if c.id not in done]
    read: list[Any] = []
    stages = replace(STAGES, generate=_read_state(read), checks=())
    with documents_home(documents) as (home, embedder):
        assistant = Assistant(
            index="corpus", home=home.home, embedder=embedder, config=AskConfig(check=False), stages=stages
        )
        began = time.perf_counter()
        for number, case in enumerate(todo, start=1):
            read.clear()
            started = time.perf_counter()
            assistant.ask(case.question)
            if not read:
                print(f"\n{case.id}: nothing retrieved, no prompt to read", file=sys.stderr)
                continue
            state, sources, similarity = read[0]
            given = " ".join(f" {normalize_text(s)} " for s in sources)
            _append(
                out,
                {
                    "id": case.id,
                    "kind": case.kind,
                    "similarity": similarity,
                    "gold_in_sources": any(f" {normalize_text(g)} " in given for g in case.gold if normalize_text(g)),
                    "seconds": round(time.perf_counter() - started, 3),
                    "state": encode(state),
                },
            )
            left = (time.perf_counter() - began) / number * (len(todo) - number)
            print(f"\r{split} {number}/{len(todo)} ETA {left / 60:.1f} min   ", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


QUESTION_CHUNKS = 60  # chunks of dca's own docs/ the model writes questions about


def hotpot_documents(data_dir: Path) -> dict[str, str]:
    """The Wikipedia paragraphs of HotpotQA dev questions 61-100 (none of the evaluation's 1-30),
    one document per title: a second corpus for step 2's pairs."""
    hotpot = json.loads((data_dir / "hotpotqa" / "hotpot_dev_distractor_100.json").read_text(encoding="utf-8"))
    documents: dict[str, str] = {}
    for item in hotpot[TRAIN_OFF_TOPIC.start : TRAIN_OFF_TOPIC.stop]:
        for title, sentences in zip(item["context"]["title"], item["context"]["sentences"], strict=True):
            name = "".join(c if c.isalnum() else "_" for c in title)[:80] + ".md"
            documents[name] = f"# {title}\n\n" + "".join(sentences).strip() + "\n"
    return documents


def question_features(split: str, data_dir: Path) -> None:
    """Step 2's data, from a corpus that is neither SQuAD nor HotpotQA: dca's own manual (docs/).
    `dca train questions` writes a question per sampled chunk (kept when its answer is a span of
    the chunk); each kept pair is read twice: as retrieval gives it when the chunk is among the
    sources (answerable), and with every source holding the answer removed, the next ones
    retrieved in their place (a retrieval gap: the rest of the manual stays)."""
    from dca.api import AskConfig, Assistant
    from dca.eval.metrics import normalize_text
    from dca.pipeline import STAGES
    from dca.train.questions import QuestionsConfig, make_questions

    if split == "questions":
        docs = Path(__file__).resolve().parents[1] / "docs"
        documents = {p.name: p.read_text(encoding="utf-8") for p in sorted(docs.glob("*.md"))}
    else:
        documents = hotpot_documents(data_dir)
    OUT.mkdir(parents=True, exist_ok=True)
    tag = "" if split == "questions" else "_hotpot"
    pairs_file, out = OUT / f"questions_pairs{tag}.jsonl", OUT / f"questions{tag}.jsonl"
    read: list[Any] = []
    holding: dict[str, Any] = {}

    def without_answer(run: Any) -> Any:
        """The retrieve stage of the gap reading: the first k sources that do not hold the answer."""
        hits = assistant.retrieve(run.question, AskConfig(k=run.config.k + 8))
        answer = f" {normalize_text(holding['answer'])} "
        run.hits = [h for h in hits if answer not in f" {normalize_text(h.chunk.text)} "][: run.config.k]
        yield from ()

    with documents_home(documents) as (home, embedder):
        make_questions(QuestionsConfig(index="corpus", limit=QUESTION_CHUNKS), out=pairs_file, paths=home)
        pairs = [json.loads(line) for line in complete_jsonl_lines(pairs_file)]
        pairs = [p for p in pairs if p["kept"]]
        done = {json.loads(line)["id"] for line in complete_jsonl_lines(out)}
        present = Assistant(
            index="corpus",
            home=home.home,
            embedder=embedder,
            config=AskConfig(check=False),
            stages=replace(STAGES, generate=_read_state(read), checks=()),
        )
        assistant = present
        removed = Assistant(
            index="corpus",
            home=home.home,
            embedder=embedder,
            generator=present.generator,
            config=AskConfig(check=False),
            stages=replace(STAGES, retrieve=without_answer, generate=_read_state(read), checks=()),
        )
        for number, pair in enumerate(pairs, start=1):
            holding["answer"] = pair["answer"]
            for kind, reader in (("answerable", present), ("gap", removed)):
                key = f"{pair['id']}|{kind}"
                if key in done:
                    continue
                read.clear()
                reader.ask(pair["question"])
                if not read:
                    continue
                state, sources, similarity = read[0]
                if kind == "answerable" and not any(pair["text"].strip() in s or s in pair["text"] for s in sources):
                    _append(out, {"id": key, "kind": "missed", "similarity": similarity})  # retrieval missed it
                    continue
                _append(
                    out,
                    {
                        "id": key,
                        "kind": kind,
                        "similarity": similarity,
                        "gold_in_sources": kind == "answerable",
                        "state": encode(state),
                    },
                )
            print(f"\rquestions {number}/{len(pairs)}   ", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def _load(split: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in complete_jsonl_lines(OUT / f"{split}.jsonl")]


def fit(x: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """Ridge logistic regression on standardized features (`dca train probe`'s solver)."""
    from dca.train.probe import fit_logistic

    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    w, b = fit_logistic((x - mean) / scale, y.astype(bool), l2=l2)
    return w, b, mean, scale


def predict(model: tuple[np.ndarray, float, np.ndarray, np.ndarray], x: np.ndarray) -> np.ndarray:
    w, b, mean, scale = model
    return 1 / (1 + np.exp(-np.clip(((x - mean) / scale) @ w + b, -40, 40)))


def _cut(calibration: list[dict[str, Any]]) -> float:
    """The highest probe threshold that refuses at most MAX_REFUSED of the calibration split's
    answerable questions (rows strictly below it are refused)."""
    answerable = sorted(r["probe"] for r in calibration if r["kind"] == "answerable")
    return answerable[int(MAX_REFUSED * len(answerable))]


def article_groups(rows: list[dict[str, Any]], data_dir: Path) -> np.ndarray:
    """Each training row's group for cross-validation: its SQuAD article, HotpotQA rows and
    question pairs in groups of their own (so no article is both fitted and scored)."""
    squad = json.loads((data_dir / "squad2_dev" / "dev-v2.0.json").read_text(encoding="utf-8"))["data"]
    article = {qa["id"]: n for n, a in enumerate(squad) for p in a["paragraphs"] for qa in p["qas"]}
    groups = []
    for number, row in enumerate(rows):
        if row["id"] in article:
            groups.append(article[row["id"]])
        else:
            groups.append(100 + number % 5)  # HotpotQA and question pairs: five groups of their own
    return np.array(groups)


def cross_validated(x: np.ndarray, y: np.ndarray, kinds: np.ndarray, groups: np.ndarray, l2: float) -> float:
    """The share of non-answerable rows (``kinds`` 0) refused at a threshold refusing
    MAX_REFUSED of the answerable ones, each group scored by a probe fitted (on ``y``) on the others."""
    scores = np.zeros(len(y))
    for group in np.unique(groups):
        out = groups == group
        scores[out] = predict(fit(x[~out], y[~out], l2), x[out])
    positive = np.sort(scores[kinds == 1])
    cut = positive[int(MAX_REFUSED * len(positive))]
    return float((scores[kinds == 0] < cut).mean())


def with_support(
    scores: dict[str, float],
    calibration: list[dict[str, Any]],
    evaluation: list[dict[str, Any]],
    answered: dict[str, Any],
) -> dict[str, Any]:
    """The chosen probe and the grounded check's P("Yes") after the answer (recorded in the
    benchmark's baseline rows), refusing when either is low: the pair of thresholds that refuses
    most of the calibration split's other kinds while refusing at most MAX_REFUSED of its
    answerable questions, applied to the evaluation split."""
    cal_answered = {
        json.loads(line)["id"]: json.loads(line) for line in complete_jsonl_lines(RESULTS / "trust_calibration.jsonl")
    }
    cal = [{**cal_answered[r["id"]], "probe": scores[r["id"]]} for r in calibration if r["id"] in cal_answered]

    def support(r: dict[str, Any]) -> float:
        return 1.0 if r.get("support") is None else float(r["support"])

    allowed = int(MAX_REFUSED * sum(r["kind"] == "answerable" for r in cal))
    best: tuple[int, float, float] = (-1, 0.0, 0.0)
    for t1 in sorted({r["probe"] for r in cal}):
        for t2 in sorted({support(r) for r in cal}):
            refused = [r for r in cal if r["probe"] < t1 or support(r) < t2]
            if sum(r["kind"] == "answerable" for r in refused) <= allowed:
                best = max(best, (sum(r["kind"] != "answerable" for r in refused), t1, t2))
    _, t1, t2 = best
    rows = [{**answered[r["id"]], "probe": scores[r["id"]]} for r in evaluation if r["id"] in answered]
    line = refused_by(rows, lambda r: r["refused"] or r["probe"] < t1 or support(r) < t2)
    print(f"probe < {t1:.3f} or P(yes) < {t2:.3f} (calibration refused {best[0]} of its other kinds): {line}")
    return {"probe_below": t1, "support_below": t2, "calibration_refused": best[0], "evaluation": line}


def table(write_probe: Path | None, data_dir: Path, wanted: str) -> None:
    squad, calibration, evaluation = _load("train"), _load("calibration"), _load("eval")
    read = ("answerable", "gap")
    pairs = [r for r in _load("questions") if r["kind"] in read]  # step 2's, over dca's docs/
    more = [r for r in _load("questions_hotpot") if r["kind"] in read]  # and over HotpotQA paragraphs
    answered = {json.loads(line)["id"]: json.loads(line) for line in complete_jsonl_lines(RESULTS / "trust_eval.jsonl")}
    both = calibration + evaluation
    held = np.stack([decode(r["state"]) for r in both])
    print(
        f"train rows {len(squad)} + {len(pairs)} pairs' readings; calibration {len(calibration)}; eval {len(evaluation)}"
    )
    lines, models = [], {}
    variants = ("squad+hotpot", "+questions", "+questions+hotpot")[: 1 + bool(pairs) + bool(pairs and more)]
    for data, label in product(variants, ("answerable", "gold_in_sources")):
        train = squad + {"squad+hotpot": [], "+questions": pairs, "+questions+hotpot": pairs + more}[data]
        x = np.stack([decode(r["state"]) for r in train])
        y = np.array(
            [r["kind"] == "answerable" and (label == "answerable" or r["gold_in_sources"]) for r in train],
            dtype=np.float64,
        )
        groups = article_groups(train, data_dir)
        kinds = np.array([r["kind"] == "answerable" for r in train], dtype=np.float64)
        for l2 in (10.0, 100.0, 1000.0):
            model = fit(x, y, l2)
            cv = cross_validated(x, y, kinds, groups, l2)
            scores = dict(zip([r["id"] for r in both], predict(model, held).tolist(), strict=True))
            cal = [{**r, "probe": scores[r["id"]]} for r in calibration]
            cut = _cut(cal)
            cal_refused = sum(r["probe"] < cut for r in cal if r["kind"] != "answerable")
            rows = [
                {**answered[r["id"]], "probe": scores[r["id"]], "similarity": r["similarity"]}
                for r in evaluation
                if r["id"] in answered
            ]
            pos = [r["probe"] for r in rows if r["kind"] == "answerable"]
            line: dict[str, Any] = {
                "data": data,
                "label": label,
                "l2": l2,
                "threshold": round(cut, 3),
                "cal_refused": cal_refused,
                "cv_refused": round(cv, 3),
            }
            for kind in KINDS[1:]:
                line[f"auroc_{kind}"] = auroc(pos, [r["probe"] for r in rows if r["kind"] == kind])
            lines.append({**line, **refused_by(rows, lambda r, c=cut: r["refused"] or r["probe"] < c)})
            models[(data, label, l2)] = (model, cut, cv, scores)
    columns = [
        "data",
        "label",
        "l2",
        "threshold",
        "cal_refused",
        "cv_refused",
        *[f"auroc_{k}" for k in KINDS[1:]],
        *KINDS,
        "gold_lost",
    ]
    print_table(lines, columns)
    # the probe is trained on both kinds of data the issue names (step 1's and step 2's) when both
    # are there; its label and penalty are chosen by cross-validation over articles
    wanted = wanted if wanted in variants else variants[-1]
    candidates = [item for item in models.items() if item[0][0] == wanted]
    (data, label, l2), (model, cut, cv, scores) = max(candidates, key=lambda item: item[1][2])
    print(
        f"chosen by cross-validation over articles: {data}, label {label}, l2 {l2}; threshold {cut:.3f} (calibration)"
    )
    either = with_support(scores, calibration, evaluation, answered)
    write_results(
        "prompt_probe",
        {
            "train_rows": len(train),
            "chosen": {"data": data, "label": label, "l2": l2, "threshold": cut, "cv_refused": cv},
            "table": lines,
            "probe_or_support": either,
        },
    )
    if write_probe:
        w, b, mean, scale = model
        meta = {
            "reads": "answerable",
            "position": "prompt",
            "threshold": round(cut, 6),
            "min_similarity": SIMILARITY,
            "embedder": "all-minilm-l6-v2",
            "label": label,
            "l2": l2,
            "trained_on": f"lab/results/prompt_probe/train.jsonl ({len(squad)} rows: SQuAD 2.0 dev articles 1-10, "
            "HotpotQA dev 61-100)"
            + (
                f" and questions.jsonl ({len(pairs)} readings of questions dca wrote over its docs/)"
                if data != "squad+hotpot"
                else ""
            ),
            "data": data,
            "calibrated_on": "lab/results/prompt_probe/calibration.jsonl (the trust benchmark's calibration split: "
            f"the threshold refuses at most {MAX_REFUSED:.0%} of its answerable questions)",
        }
        probe = {
            "format": "dca-probe-1",
            "base_model": "qwen2.5-coder-1.5b",
            "bias": float(b),
            "weights": [round(float(v), 7) for v in w],
            "mean": [round(float(v), 7) for v in mean],
            "scale": [round(float(v), 7) for v in scale],
            "meta": meta,
        }
        write_probe.write_text(json.dumps(probe) + "\n", encoding="utf-8")
        print(f"wrote {write_probe}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    one = sub.add_parser("features")
    one.add_argument("--split", choices=("train", "questions", "questions-hotpot", *SPLITS), required=True)
    one.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    two = sub.add_parser("table")
    two.add_argument("--write-probe", type=Path)
    two.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    two.add_argument(
        "--data", default="+questions", help="the training data of the probe written (the shipped judge: +questions)"
    )
    args = parser.parse_args()
    if args.command == "features":
        features(args.split, args.data_dir)
    else:
        table(args.write_probe, args.data_dir, args.data)


if __name__ == "__main__":
    main()
