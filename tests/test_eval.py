"""dca eval: each task end to end on a 3-example fixture with a scripted model; resume; report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import HashEmbedder, ScriptedGenerator
from typer.testing import CliRunner

from dca.cli import app
from dca.config import Paths
from dca.errors import ConfigError
from dca.eval.datasets import DatasetError
from dca.eval.runner import EvalError, eval_config, run_eval

runner = CliRunner()


def _gsm8k(tmp_path: Path) -> Path:
    path = tmp_path / "gsm8k.jsonl"
    rows = [("What is 2+2?", "2+2=4\n#### 4"), ("Half of 10?", "#### 5"), ("3 times 1,000?", "#### 3,000")]
    path.write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in rows))
    return path


def _first_row_run(home: Paths, data: str, out: Path) -> None:
    """A gsm8k run folder holding the first question, answered right."""
    run_eval(
        eval_config(task="gsm8k", data=data, limit=1),
        out=out,
        paths=home,
        generator=ScriptedGenerator(["The answer is 4."]),
    )


def test_gsm8k_accuracy_by_hand(home: Paths, tmp_path: Path) -> None:
    generator = ScriptedGenerator(["2+2 makes 4. The answer is 4.", "The answer is 6.", "So $3,000 in total."])
    summary = run_eval(
        eval_config(task="gsm8k", data=str(_gsm8k(tmp_path))), out=tmp_path / "run", paths=home, generator=generator
    )
    assert summary["n"] == 3 and summary["metrics"]["accuracy"] == round(2 / 3, 4)
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert [r["correct"] for r in rows] == [True, False, True]
    assert "Solve the problem step by step" in generator.prompts[0]
    machine = summary["machine"]  # every figure with its CPU (greedy output depends on it)
    assert machine["cpus"] >= 1 and isinstance(machine["cpu_model"], str) and "cpu_flags" in machine
    if Path("/proc/cpuinfo").exists():
        assert " family " in machine["cpu_model"]
    assert {r["cpu"] for r in rows} == {machine["cpu_model"]}  # each row says which CPU made it
    assert summary["row_cpus"] == {machine["cpu_model"]: 3}


def test_math500_boxed_answers(home: Paths, tmp_path: Path) -> None:
    path = tmp_path / "math.jsonl"
    rows = [("1/2 + 1/4?", "\\frac{3}{4}"), ("sqrt(16)?", "4"), ("2^10?", "1024")]
    path.write_text(
        "".join(json.dumps({"problem": p, "answer": a, "unique_id": f"m{i}"}) + "\n" for i, (p, a) in enumerate(rows))
    )
    generator = ScriptedGenerator(["\\boxed{\\dfrac{3}{4}}", "It is \\boxed{4}.", "\\boxed{1000}"])
    summary = run_eval(
        eval_config(task="math500", data=str(path)), out=tmp_path / "run", paths=home, generator=generator
    )
    assert summary["metrics"]["accuracy"] == round(2 / 3, 4)


def _squad(tmp_path: Path) -> Path:
    data = {
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "The Eiffel Tower is in Paris, the capital of France.",
                        "qas": [
                            {
                                "id": "q1",
                                "question": "Where is the Eiffel Tower?",
                                "answers": [{"text": "Paris", "answer_start": 0}],
                            },
                            {"id": "q3", "question": "Who built the moon base?", "answers": [], "is_impossible": True},
                        ],
                    },
                    {
                        "context": "Mount Fuji is the highest mountain in Japan.",
                        "qas": [
                            {
                                "id": "q2",
                                "question": "What is the highest mountain in Japan?",
                                "answers": [{"text": "Mount Fuji", "answer_start": 0}],
                            }
                        ],
                    },
                ],
            }
        ]
    }
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(data))
    return path


def test_squad2_rag_metrics_by_hand(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    generator = ScriptedGenerator(["Paris [1].", "The sources do not contain the answer.", "Fuji is highest [1]."])
    summary = run_eval(
        eval_config(task="squad2", data=str(_squad(tmp_path)), k=1),
        out=tmp_path / "run",
        paths=home,
        generator=generator,
        embedder=embedder,
    )
    m = summary["metrics"]
    # q1: EM 1, F1 1; q3 (unanswerable, refused): EM 1, F1 1; q2: "Fuji is highest" vs "Mount Fuji": F1 2*(1/3*1/2)/(1/3+1/2)=0.4
    assert m["em"] == round(2 / 3, 4) and m["f1"] == round((1 + 1 + 0.4) / 3, 4)
    assert m["recall@1"] == 1.0  # both answerable questions retrieved their own paragraph first
    assert "<source" in generator.prompts[0]


def test_a_run_made_with_an_option_that_left_is_refused(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    """Reciprocal rank fusion (the default until 2026-12-06) and three other options left dca's
    surface: a run folder made with one of them (or made before fusion was recorded, when it was
    fused by reciprocal rank) is refused by name rather than resumed as if it were this run."""
    data = str(_squad(tmp_path))

    def run(out: str) -> dict:
        answers = ["Paris", "The sources do not contain the answer.", "Mount Fuji"]
        return run_eval(
            eval_config(task="squad2", data=data, k=1, style="short"),
            out=tmp_path / out,
            paths=home,
            generator=ScriptedGenerator(answers),
            embedder=embedder,
        )

    assert run("new")["config"]["fusion"] == "convex"
    from dca.eval.report import _label, load_summary

    assert _label(load_summary(tmp_path / "new")) == "squad2 rag default k=1 (short answers)"
    for key, old in (("fusion", None), ("program_prompt", "plan"), ("support_question", "answers")):
        config = json.loads((tmp_path / "new" / "config.json").read_text())
        config.pop(key) if old is None else config.update({key: old})  # None: made before the key existed
        (tmp_path / "old").mkdir(exist_ok=True)
        (tmp_path / "old" / "config.json").write_text(json.dumps(config))
        with pytest.raises(EvalError, match=f"{key}: '{old or 'rrf'}' -> "):
            run("old")
    summary = json.loads((tmp_path / "new" / "summary.json").read_text())
    del summary["config"]["fusion"]  # the report of a run made before the key existed
    (tmp_path / "new" / "summary.json").write_text(json.dumps(summary))
    assert _label(load_summary(tmp_path / "new")) == "squad2 rag default k=1 rrf (short answers)"
    with pytest.raises(ConfigError, match="unknown option 'fusion'"):
        eval_config(task="squad2", data=data, fusion="rrf")
    # a closed-book run searches nothing: an older one without the key still resumes
    gsm = str(_gsm8k(tmp_path))
    _first_row_run(home, gsm, tmp_path / "book")
    recorded = json.loads((tmp_path / "book" / "config.json").read_text())
    del recorded["fusion"]
    (tmp_path / "book" / "config.json").write_text(json.dumps(recorded))
    _first_row_run(home, gsm, tmp_path / "book")


def test_squad2_short_answer_style(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    generator = ScriptedGenerator(["Paris", "The sources do not contain the answer.", "Mount Fuji"])
    data = str(_squad(tmp_path))
    summary = run_eval(
        eval_config(task="squad2", data=data, k=1, style="short"),
        out=tmp_path / "run",
        paths=home,
        generator=generator,
        embedder=embedder,
    )
    assert summary["metrics"]["em"] == 1.0 and summary["config"]["answer_style"] == "short"
    assert "shortest phrase" in generator.prompts[0] and "[1]" not in generator.prompts[0].split("</source>")[-1]
    with pytest.raises(EvalError, match="answer_style: 'short' -> 'cited'"):
        run_eval(eval_config(task="squad2", data=data, k=1), out=tmp_path / "run", paths=home, embedder=embedder)
    with pytest.raises(ConfigError, match="unknown answer style 'long'; use one of: cited, short"):
        eval_config(task="squad2", data=data, style="long")


def test_run_folder_of_an_older_version_resumes(home: Paths, tmp_path: Path) -> None:
    """A config.json written before a setting existed means that setting's default."""
    data = str(_gsm8k(tmp_path))
    _first_row_run(home, data, tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    del config["answer_style"]
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    summary = run_eval(
        eval_config(task="gsm8k", data=data, limit=2),
        out=tmp_path / "run",
        paths=home,
        generator=ScriptedGenerator(["The answer is 5."]),
    )
    assert summary["n"] == 2 and summary["metrics"]["accuracy"] == 1.0


def test_verify_on_is_part_of_a_verify_run_only(home: Paths, tmp_path: Path) -> None:
    """verify drew thoughts before it drew programs by default: an old verify run (no verify_on
    recorded) is not resumed as a program run; a run of another strategy ignores the setting."""
    data = str(_gsm8k(tmp_path))
    _first_row_run(home, data, tmp_path / "run")
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    (tmp_path / "run" / "config.json").write_text(json.dumps({**config, "verify_on": "cot"}))
    more = eval_config(task="gsm8k", data=data, limit=2)  # verify_on: the default, program
    generator = ScriptedGenerator(["The answer is 5."])
    assert run_eval(more, out=tmp_path / "run", paths=home, generator=generator)["n"] == 2
    old = {k: v for k, v in config.items() if k != "verify_on"} | {"strategy": "verify", "verifier": "none"}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(old))
    verify = eval_config(task="gsm8k", data=data, strategy="verify", verifier="none", adapter="none", limit=1)
    with pytest.raises(EvalError, match="verify_on: 'cot' -> 'program'"):
        run_eval(verify, out=tmp_path / "old", paths=home, generator=generator)


def test_hotpotqa_closed_book_and_rag(home: Paths, tmp_path: Path, embedder: HashEmbedder) -> None:
    items = [
        {
            "_id": "h1",
            "question": "Which river flows through the capital of France?",
            "answer": "Seine",
            "supporting_facts": {"title": ["Paris", "Seine"], "sent_id": [0, 0]},
            "context": {
                "title": ["Paris", "Seine", "Rome"],
                "sentences": [
                    ["Paris is the capital of France."],
                    ["The Seine flows through Paris."],
                    ["Rome is in Italy."],
                ],
            },
        },
        {
            "_id": "h2",
            "question": "Is Rome in Italy?",
            "answer": "yes",
            "supporting_facts": {"title": ["Rome"], "sent_id": [0]},
            "context": {"title": ["Rome"], "sentences": [["Rome is in Italy."]]},
        },
        {
            "_id": "h3",
            "question": "What is the capital of France?",
            "answer": "Paris",
            "supporting_facts": {"title": ["Paris"], "sent_id": [0]},
            "context": {"title": ["Paris"], "sentences": [["Paris is the capital of France."]]},
        },
    ]
    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps(items))
    closed = run_eval(
        eval_config(task="hotpotqa", data=str(path), mode="closed-book"),
        out=tmp_path / "cb",
        paths=home,
        generator=ScriptedGenerator(["Seine", "Yes.", "Lyon"]),
    )
    assert closed["metrics"]["em"] == round(2 / 3, 4)
    assert not any(name.startswith("recall") for name in closed["metrics"])  # nothing was retrieved
    rag = run_eval(
        eval_config(task="hotpotqa", data=str(path), k=2),
        out=tmp_path / "rag",
        paths=home,
        generator=ScriptedGenerator(["Seine [2]", "yes [1]", "Paris [1]"]),
        embedder=embedder,
    )
    assert rag["metrics"]["em"] == 1.0 and 0 < rag["metrics"]["recall@2"] <= 1.0
    # the index eval built stays out of the user's list
    from typer.testing import CliRunner

    from dca.cli import app

    listed = CliRunner().invoke(app, ["index", "list", "--json"])
    assert json.loads(listed.stdout) == [] and "not shown" not in listed.stdout
    shown = CliRunner().invoke(app, ["index", "list"])
    assert "(1 built by `dca eval` not shown: --all lists them)" in shown.stdout
    everything = json.loads(CliRunner().invoke(app, ["index", "list", "--all", "--json"]).stdout)
    assert [row["name"] for row in everything] == [f"eval-hotpotqa-{rag['config']['data_sha256'][:8]}"]


def test_interrupted_run_resumes_to_the_same_summary(home: Paths, tmp_path: Path) -> None:
    answers = ["The answer is 4.", "The answer is 6.", "The answer is 3000."]
    data = str(_gsm8k(tmp_path))
    full = run_eval(
        eval_config(task="gsm8k", data=data), out=tmp_path / "full", paths=home, generator=ScriptedGenerator(answers)
    )

    class Dies(ScriptedGenerator):
        def stream(self, prompt, config, completion=None):
            if len(self.prompts) == 2:
                raise KeyboardInterrupt
            yield from super().stream(prompt, config, completion)

    with pytest.raises(KeyboardInterrupt):
        run_eval(eval_config(task="gsm8k", data=data), out=tmp_path / "cut", paths=home, generator=Dies(answers))
    cut = tmp_path / "cut" / "results.jsonl"
    first, *others = cut.read_text().splitlines(keepends=True)
    older = json.loads(first)
    del older["cpu"]  # a row written before rows carried their CPU
    cut.write_text(json.dumps(older) + "\n" + "".join(others))
    with cut.open("a") as handle:
        handle.write('{"id": "gsm8k-3", "quest')  # a line cut short by a kill
    rest = ScriptedGenerator(answers[2:])
    resumed = run_eval(eval_config(task="gsm8k", data=data), out=tmp_path / "cut", paths=home, generator=rest)
    assert len(rest.prompts) == 1  # only the missing example ran again
    assert resumed["metrics"] == full["metrics"] and resumed["n"] == full["n"]
    assert resumed["row_cpus"] == {resumed["machine"]["cpu_model"]: 2, "not recorded": 1}


def test_bad_input(home: Paths, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown task 'nope'; tasks: gsm8k, math500, squad2, hotpotqa"):
        eval_config(task="nope", data="x")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "#### 1"}\n{"question": "only"}\n')
    with pytest.raises(DatasetError, match="line 2 has no field 'answer'"):
        run_eval(
            eval_config(task="gsm8k", data=str(bad)), out=tmp_path / "r", paths=home, generator=ScriptedGenerator()
        )
    data = str(_gsm8k(tmp_path))
    _first_row_run(home, data, tmp_path / "run")
    with pytest.raises(EvalError, match="different config \\(seed: 0 -> 1\\).*another --out"):
        run_eval(
            eval_config(task="gsm8k", data=data, limit=1, seed=1),
            out=tmp_path / "run",
            paths=home,
            generator=ScriptedGenerator(),
        )
    extended = ScriptedGenerator(["The answer is 5.", "The answer is 3000."])
    summary = run_eval(
        eval_config(task="gsm8k", data=data, limit=3), out=tmp_path / "run", paths=home, generator=extended
    )
    assert summary["n"] == 3 and len(extended.prompts) == 2  # a larger --limit extends the same run
    smaller = run_eval(
        eval_config(task="gsm8k", data=data, limit=1), out=tmp_path / "run", paths=home, generator=ScriptedGenerator()
    )
    assert smaller["n"] == 1  # a smaller --limit summarizes fewer rows and deletes none
    assert len((tmp_path / "run" / "results.jsonl").read_text().splitlines()) == 3


def test_report_table_and_plot(home: Paths, tmp_path: Path) -> None:
    data = str(_gsm8k(tmp_path))
    for name, answers in (("a", ["The answer is 4."]), ("b", ["The answer is 4.", "The answer is 5."])):
        run_eval(
            eval_config(task="gsm8k", data=data, limit=2),
            out=tmp_path / name,
            paths=home,
            generator=ScriptedGenerator(answers),
        )
    result = runner.invoke(
        app, ["eval", "report", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "rep")]
    )
    assert result.exit_code == 0, result.output
    assert "| gsm8k closed-book default | 2 | accuracy | 0.5 |" in result.stdout
    assert "| gsm8k closed-book default | 2 | accuracy | 1.0 |" in result.stdout
    from dca.machine import cpu

    assert result.stdout.count(f"| {cpu()['cpu_model']} |") == 2  # the CPU that made each run's rows
    assert (tmp_path / "rep" / "report.png").stat().st_size > 5000


def test_cli_unknown_task_is_one_line(home: Paths) -> None:
    result = runner.invoke(app, ["eval", "trivia", "--data", "x"])
    assert result.exit_code == 1 and "unknown task 'trivia'" in result.stderr


def test_report_labels_strategies_and_joins_their_runs(home: Paths, tmp_path: Path) -> None:
    from dca.eval.report import _curve, _label

    data = str(_gsm8k(tmp_path))
    summaries = []
    for budget in (64, 256):
        summaries.append(
            run_eval(
                eval_config(task="gsm8k", data=data, limit=2, strategy="cot", budget=budget, adapter="none"),
                out=tmp_path / f"cot{budget}",
                paths=home,
                generator=ScriptedGenerator(["a b </think>", "The answer is 4."]),
            )
        )
    summaries.append(
        run_eval(
            eval_config(task="gsm8k", data=data, limit=2, strategy="vote", samples=3, adapter="none"),
            out=tmp_path / "vote",
            paths=home,
            generator=ScriptedGenerator(["a </think>", "The answer is 4."]),
        )
    )
    assert [_label(s).split("default ")[1] for s in summaries] == [
        "cot budget 64",
        "cot budget 256",
        "vote adaptive N<=3",
    ]
    assert _curve(summaries[0]) == _curve(summaries[1]) != _curve(summaries[2])
    result = runner.invoke(
        app,
        ["eval", "report", *(str(tmp_path / n) for n in ("cot64", "cot256", "vote")), "--out", str(tmp_path / "rep")],
    )
    assert result.exit_code == 0, result.output
    assert "cot budget 256" in result.stdout and (tmp_path / "rep" / "report.png").is_file()


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("The final answer is: Animorphs", "Animorphs"),
        ("Final answer: 3", "3"),
        ("Answer: yes", "yes"),
        ("Answerable stuff", "Answerable stuff"),
        ("Paris", "Paris"),
    ],
)
def test_answer_leads_are_removed_before_scoring(text: str, cleaned: str) -> None:
    from dca.eval.runner import _ANSWER_LEAD

    assert _ANSWER_LEAD.sub("", text) == cleaned


def test_eval_report_is_a_subcommand_whose_json_is_honoured(home: Paths, tmp_path: Path) -> None:
    run = tmp_path / "r"
    run.mkdir()
    summary = {
        "task": "gsm8k", "n": 2, "primary_metric": "accuracy", "metrics": {"accuracy": 0.5},
        "per_question": {"completion_tokens": 10.0, "seconds": 1.0},
        "config": {"mode": "closed-book", "model": None, "adapter": None, "strategy": "direct"},
    }  # fmt: skip
    (run / "summary.json").write_text(json.dumps(summary))
    result = runner.invoke(app, ["eval", "report", str(run), "--out", str(tmp_path / "rep"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["runs"][0]["value"] == 0.5 and data["plot"].endswith("report.png")
    assert data["runs"][0]["cpu"] == "?"  # a summary older than machine records


def test_the_report_names_the_cpus_of_a_run_resumed_elsewhere() -> None:
    from dca.eval.report import run_cpu

    assert run_cpu({"row_cpus": {"EPYC": 3, "Xeon": 1}}) == "EPYC (3 rows); Xeon (1 rows)"
    assert run_cpu({"row_cpus": {"EPYC": 4}, "machine": {"cpu_model": "Xeon"}}) == "EPYC"
    assert run_cpu({"machine": {"cpu_model": "Xeon"}}) == "Xeon"


def test_offset_skips_a_dev_split_and_is_part_of_the_run(home: Paths, tmp_path: Path) -> None:
    data = str(_gsm8k(tmp_path))
    generator = ScriptedGenerator(["The answer is 3000."])
    summary = run_eval(
        eval_config(task="gsm8k", data=data, offset=1, limit=1), out=tmp_path / "dev", paths=home, generator=generator
    )
    assert summary["n"] == 1 and len(generator.prompts) == 1
    row = json.loads((tmp_path / "dev" / "results.jsonl").read_text())
    assert row["id"] == "gsm8k-2"  # the second row of the file, not the first
    with pytest.raises(EvalError, match="offset: 1 -> 0"):
        run_eval(eval_config(task="gsm8k", data=data, limit=1), out=tmp_path / "dev", paths=home, generator=generator)
    with pytest.raises(ConfigError, match="offset and limit must be >= 0"):
        eval_config(task="gsm8k", data=data, offset=-1)


def test_majority_accuracy_counts_a_question_without_any_answer_as_wrong(home: Paths, tmp_path: Path) -> None:
    generator = ScriptedGenerator(["a </think>", "The answer is 4.", "I have no idea here </think>", "I cannot tell."])
    summary = run_eval(
        eval_config(task="gsm8k", data=str(_gsm8k(tmp_path)), limit=2, strategy="cot"),
        out=tmp_path / "run",
        paths=home,
        generator=generator,
    )
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert [r["reasoning"]["majority"] for r in rows] == ["4", ""]
    assert summary["metrics"]["accuracy"] == summary["metrics"]["majority_accuracy"] == 0.5


def test_the_report_tells_a_gated_vote_from_a_plain_one() -> None:
    from dca.eval.report import _strategy
    from dca.eval.runner import _describe

    assert _strategy({"strategy": "program", "program_prompt": "plan"}) == "program plan prompt"
    assert _strategy({"strategy": "program"}) == "program"  # an older run: the plain prompt
    searching = {"strategy": "cot", "budget": 256, "searches": 3, "fallback": False}
    assert _strategy(searching) == "cot budget 256 3 searches, no fallback"  # one home for these words
    assert _describe(searching) == "cot (budget 256, 3 searches, no fallback)"
    assert _strategy({"strategy": "program", "repair": False}) == "program no repair"
    gated = _strategy({"strategy": "verify", "samples": 5, "sure_above": 9.7158})
    assert gated == "verify N=5 sure above 9.7158" and _strategy({"strategy": "verify", "samples": 5}) == "verify N=5"


def test_a_default_eval_answers_as_a_default_ask_does() -> None:
    """What `dca eval` measures is what `dca ask` ships: the AskConfig each question of a
    default eval is answered with equals `dca ask`'s defaults in every field but eval's own
    (the seed it records, the adapter it resolves, closed-book or not and the system prompt,
    which the task sets), and the CLI flags both commands have default alike."""
    import inspect
    import typing
    from dataclasses import fields

    from dca.cli.ask import ask
    from dca.cli.eval import eval_command
    from dca.eval.runner import eval_config
    from dca.pipeline import AskConfig
    from dca.settings import FIELDS

    shipped = AskConfig()
    for mode in ("rag", "closed-book"):
        measured = eval_config(task="hotpotqa", data="x.json", mode=mode).ask_config()
        own = {"seed", "adapter", "retrieval", "system"}
        differ = [
            f.name
            for f in fields(AskConfig)
            if f.name not in own and getattr(shipped, f.name) != getattr(measured, f.name)
        ]
        assert not differ, differ
    # the flags both commands have are one declaration: same flag, default and help
    asked = inspect.signature(ask).parameters
    evaluated = inspect.signature(eval_command).parameters
    own_flags = {"index", "model", "seed", "as_json", "store", "backend", "base_url"}  # eval's seed is its own
    shared = set(asked) & set(evaluated) - own_flags
    assert {"k", "strategy", "samples", "budget", "style", "verifier", "min_support"} <= shared

    def flag(parameter: inspect.Parameter) -> tuple:
        kind, info = typing.get_args(parameter.annotation)
        return parameter.default, kind, info.param_decls, info.help

    for name in shared:
        assert flag(asked[name]) == flag(evaluated[name]), name
    # and from no flags at all, the two commands build the same answer options
    from dca.cli.ask import _config

    from_ask = _config({}, think=False)
    from_eval = eval_config(task="hotpotqa", data="x.json", k=FIELDS["k"][2]).ask
    assert from_ask == from_eval and from_ask.k == shipped.k == FIELDS["k"][2]
