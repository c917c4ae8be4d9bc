"""``dca eval TASK``: run a task into a run folder, one JSONL line per example, resumable.

A run folder holds ``config.json`` (written first), ``results.jsonl`` (appended and
fsynced per example), and ``summary.json`` / ``summary.md`` (rewritten atomically). A
rerun of the same command skips the examples already in ``results.jsonl``; a run folder
made with another config is refused rather than mixed.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from dca.answer import strip_citations
from dca.askconfig import AskConfig, ask_config
from dca.choices import VOTING
from dca.config import Paths
from dca.errors import ConfigError, EvalError
from dca.eval.datasets import Example, paragraph_of, write_paragraphs
from dca.eval.report import UNRECORDED_FUSION, setting_words
from dca.eval.tasks import Task, get_task
from dca.files import atomic_write_bytes, atomic_write_json, complete_jsonl_lines, config_changes, sha256_file
from dca.machine import cpu, machine
from dca.options import option_values
from dca.pipeline import STAGES, Stages
from dca.runtime.adapters import (
    NO_ADAPTER,
    NO_VERIFIER,
    choose_adapter,
    choose_verifier,
)

ProgressFn = Callable[[int, int, float], None]  # (done, total, running primary metric)
# "Final answer: X", "The answer is X", "The final answer is: X" -> "X" (short-answer tasks)
_ANSWER_LEAD = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\b(?:\s+is)?\s*:?\s*", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """One evaluation run: what is eval's own, and the AskConfig every question is answered with
    (so `dca eval`'s defaults are `dca ask`'s by construction). Recorded in the run folder
    (``recorded``) and compared on resume."""

    task: str  # gsm8k | math500 | squad2 | hotpotqa
    data: str  # dataset file
    data_sha256: str = ""  # filled in from the file: a changed dataset is a different run
    model: str | None = None  # None = the default generator
    backend: str = "local"  # where the model ran: the backend setting (local | openai) when the run began
    index: str | None = None  # rag: the index to search (default: built from the task's corpus)
    mode: str = ""  # closed-book | rag; "" = the task's default
    offset: int = 0  # skip the first N examples (e.g. a dev split of a train file)
    limit: int = 0  # first N examples after the offset (0 = all)
    answerable_only: bool = False  # squad2: skip unanswerable questions
    seed: int = 0  # the answers' and the reasoning's sampling seed
    # how each question is answered; its adapter None: the catalog's choice (resolve_config names it)
    ask: AskConfig = field(default_factory=AskConfig)

    def __post_init__(self) -> None:
        task = get_task(self.task)
        if self.mode and self.mode not in task.modes:
            raise ConfigError(f"task {self.task} supports modes {', '.join(task.modes)}, not {self.mode!r}")
        if self.limit < 0 or self.offset < 0:
            raise ConfigError(f"offset and limit must be >= 0, got {self.offset} and {self.limit}")

    def ask_config(self, *, system: str | None = None) -> AskConfig:
        """The AskConfig each question is answered with (``system``: a closed-book task's instructions)."""
        return replace(
            self.ask,
            retrieval=self.mode == "rag",
            seed=self.seed,
            adapter=self.ask.adapter or NO_ADAPTER,  # resolved by resolve_config: None is the base model alone
            system=system,
            reasoning=replace(self.ask.reasoning, seed=self.seed),
        )


def eval_config(**given: Any) -> EvalConfig:
    """An EvalConfig from eval's own fields and answer options by name (`dca eval`'s flags: k,
    strategy, samples, ...), each answer option set as `dca ask` sets it."""
    own = {f.name for f in fields(EvalConfig)} - {"ask"}
    options = {name: value for name, value in given.items() if name not in own}
    return EvalConfig(**{name: value for name, value in given.items() if name in own}, ask=ask_config(options))


# Options that left dca's surface, recorded with the one value dca has now: a run folder made with
# another (before they left) is refused rather than resumed as if it were this run.
_RETIRED = {
    "fusion": "convex",
    "program_prompt": "plain",
    "program_examples": 0,
    "support_question": "stated",
    "grounded_probe": None,
}


def recorded(config: EvalConfig) -> dict[str, Any]:
    """The run's config as config.json and the summary hold it: eval's own fields and eval's
    answer options by their recorded names (dca/options.py)."""
    own = {f.name: getattr(config, f.name) for f in fields(config) if f.name != "ask"}
    answer = {item.record: value for item, value in option_values(config.ask, "eval")}
    return {**own, **answer, **_RETIRED}


def resolve_config(config: EvalConfig, paths: Paths | None = None) -> EvalConfig:
    """Fill in the task's default mode, the data file's hash and the adapter the run uses (a
    reasoning strategy takes the catalog's reasoning adapter unless ``--adapter none``)."""
    data = Path(config.data)
    if data.is_dir():
        raise EvalError(f"{data} is a folder; give the dataset file itself with --data")
    if not data.is_file():
        raise EvalError(f"{data} does not exist; give the dataset file with --data")
    from dca.settings import load_settings

    task = get_task(config.task)
    home = paths or Paths.resolve()
    model = config.model or ""
    ask = config.ask
    adapter, verifier = ask.adapter, ask.verifier
    thinking = ask.reasoning.thinks
    if adapter is None or adapter == NO_ADAPTER:
        model = model or _default_generator(home)
        adapter = choose_adapter(adapter, model, thinking=thinking, paths=home)
    if ask.reasoning.strategy == "verify" and verifier is None:  # the default verifier, named in the run's config
        model = model or _default_generator(home)
        verifier = choose_verifier(None, model, home) or NO_VERIFIER
    return replace(
        config,
        mode=config.mode or task.modes[0],
        data=str(data.resolve()),
        data_sha256=sha256_file(data),
        backend=load_settings(home)["backend"],
        ask=replace(ask, adapter=adapter, verifier=verifier),  # adapter None: the base model alone
    )


def _default_generator(paths: Paths) -> str:
    from dca.models.catalog import Catalog

    return Catalog.load(paths).default("generator").name


# A different limit only takes more or fewer of the same examples in the same order: a run
# may be extended with a larger --limit, so limit is not part of a run's identity.
_NOT_IDENTITY = ("limit", "data")  # the dataset is identified by data_sha256, not by its path


def _check_run_folder(out: Path, config: EvalConfig) -> None:
    if out.exists() and not out.is_dir():
        raise EvalError(f"--out {out} is a file; give a folder for the run (it is created if missing)")
    path = out / "config.json"
    # A key missing from an older run's config had the default that reproduces that run.
    defaults = recorded(EvalConfig(task=config.task, data=config.data))
    defaults["verify_on"] = "cot"  # verify drew thoughts before the key was recorded
    defaults["fusion"] = UNRECORDED_FUSION
    try:
        # which samples verify draws is no part of another strategy's run
        ignore = _NOT_IDENTITY if config.ask.reasoning.strategy == "verify" else (*_NOT_IDENTITY, "verify_on")
        if config.mode != "rag":  # no retrieval, no fusion
            ignore = (*ignore, "fusion")
        diff = config_changes(path, recorded(config), ignore=ignore, defaults=defaults)
    except (ValueError, TypeError):  # not JSON, or JSON that is not an object
        raise EvalError(
            f"{path} is damaged; delete the folder {out} to start the run afresh (or use another --out)"
        ) from None
    if diff:
        raise EvalError(
            f"{out} was made with a different config ({'; '.join(diff)}); "
            "use another --out, or delete the folder to start fresh"
        )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, recorded(config))


def _done_rows(out: Path) -> list[dict[str, Any]]:
    # A line cut short by a kill is dropped: that example runs again.
    return [json.loads(line) for line in complete_jsonl_lines(out / "results.jsonl")]


def _jsonl_line(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False) + "\n"


def _append(out: Path, row: dict[str, Any]) -> None:
    with (out / "results.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(_jsonl_line(row))
        handle.flush()
        os.fsync(handle.fileno())


def _corpus_index(task: Task, paragraphs: tuple[str, ...], config: EvalConfig, paths: Paths, embedder: Any) -> str:
    """The index to search: the user's, or one built (incrementally) from the task's corpus."""
    if config.index:
        return config.index
    from dca.knowledge import add_paths
    from dca.knowledge.embedding import embedder_for, load_embedder

    name = f"eval-{task.name}-{config.data_sha256[:8]}"
    folder = paths.home / "eval-corpora" / name
    write_paragraphs(paragraphs, folder)
    factory = (lambda: embedder) if embedder is not None else (lambda: load_embedder(paths=paths))
    embedder_name = embedder.name if embedder is not None else embedder_for(paths)
    add_paths(paths, name, [folder], embedder_name=embedder_name, embedder_factory=factory)
    from dca.knowledge.stores import mark_eval_index

    mark_eval_index(paths, name)
    return name


def run_eval(
    config: EvalConfig,
    *,
    out: Path,
    paths: Paths | None = None,
    generator: Any = None,
    embedder: Any = None,
    progress: ProgressFn | None = None,
    stages: Stages = STAGES,
) -> dict[str, Any]:
    """Run (or resume) ``config`` into ``out`` and return the summary (``stages``: other steps
    of the answering path than dca's, dca.pipeline.Stages; for experiments)."""
    paths = paths or Paths.resolve()
    config = resolve_config(config, paths)
    task = get_task(config.task)
    data = task.load(Path(config.data))
    examples: list[Example] = data.examples
    if config.answerable_only:
        examples = [e for e in examples if e.answers]
    examples = examples[config.offset :]
    if config.limit:
        examples = examples[: config.limit]
    _check_run_folder(out, config)
    wanted = {e.id for e in examples}
    kept = _done_rows(out)
    # Rewritten to drop a line cut short by a kill; rows beyond a smaller --limit are kept.
    atomic_write_bytes(out / "results.jsonl", "".join(map(_jsonl_line, kept)).encode("utf-8"))
    rows = [row for row in kept if row["id"] in wanted]
    done = {row["id"] for row in rows}
    todo = [e for e in examples if e.id not in done]
    if todo:
        from dca.api import Assistant
        from dca.runtime.remote import load_generator

        generator = generator or load_generator(config.model, paths=paths)
        rag = config.mode == "rag"
        assistant = Assistant(
            stages=stages,
            index=_corpus_index(task, data.paragraphs, config, paths, embedder) if rag else None,
            home=paths.home,
            generator=generator,
            embedder=embedder,
            config=config.ask_config(system=None if rag else task.system),
        )
        here = cpu()["cpu_model"]  # on every row: a run resumed on another CPU says which rows it made
        for example in todo:
            started = time.perf_counter()
            answer = assistant.ask(example.question)
            retrieved = [paragraph_of(s.path) for s in answer.sources] if rag else None
            row = _row(task, example, answer, retrieved, config.ask.k)
            row["seconds"] = round(time.perf_counter() - started, 3)
            row["cpu"] = here
            rows.append(row)
            _append(out, row)
            if progress:
                progress(len(rows), len(examples), _mean(rows, task.primary))
    summary = summarize(rows, config, task)
    write_summary(out, summary)
    return summary


def _row(task: Task, example: Example, answer: Any, retrieved: list[int] | None, k: int) -> dict[str, Any]:
    """One results.jsonl line: the answer, its metrics and its costs."""
    reasoning = answer.reasoning
    prediction = _ANSWER_LEAD.sub("", strip_citations(answer.text).strip()).strip()
    if task.name in ("gsm8k", "math500") and reasoning is not None and reasoning.final:
        prediction = reasoning.final  # the answer the strategy chose, already extracted
    metrics = task.score(example, prediction, retrieved, k)
    row: dict[str, Any] = {
        "id": example.id,
        "question": example.question,
        "gold": list(example.answers),
        "prediction": answer.text,
        "correct": bool(metrics.get("accuracy", metrics.get("correct", 0.0))),
        "metrics": metrics,
        "retrieved": retrieved,
        "prompt_tokens": answer.prompt_tokens,
        "cached_tokens": answer.cached_tokens,  # of prompt_tokens, read from the KV cache of an earlier prompt
        "completion_tokens": answer.completion_tokens,
    }
    if answer.support is not None:
        row["support"] = round(answer.support, 4)
        row["unsupported_answer"] = answer.unsupported_text or None
    if reasoning is not None:
        row["reasoning"] = reasoning.to_json()
        if task.name in ("gsm8k", "math500"):  # no majority (every sample failed) scores 0, as accuracy does
            majority = reasoning.majority
            metrics["majority_accuracy"] = (
                float(task.score(example, majority, None, k)["accuracy"]) if majority else 0.0
            )
    return row


def _mean(rows: list[dict[str, Any]], metric: str) -> float:
    values = [r["metrics"][metric] for r in rows if metric in r["metrics"]]
    return sum(values) / len(values) if values else 0.0


def summarize(rows: list[dict[str, Any]], config: EvalConfig, task: Task) -> dict[str, Any]:
    names = sorted({name for row in rows for name in row["metrics"]})
    n = len(rows)
    metrics = {name: round(_mean(rows, name), 4) for name in names}
    if "majority_accuracy" in metrics:  # rows written before it scored 0 lack it: over every reasoned row
        reasoned = [r for r in rows if "reasoning" in r]
        majority = sum(r["metrics"].get("majority_accuracy", 0.0) for r in reasoned) / max(1, len(reasoned))
        metrics["majority_accuracy"] = round(majority, 4)
    return {
        "config": recorded(config),
        "task": task.name,
        "primary_metric": task.primary,
        "n": n,
        "metrics": metrics,
        "totals": {
            "prompt_tokens": sum(r["prompt_tokens"] for r in rows),
            "completion_tokens": sum(r["completion_tokens"] for r in rows),
            "seconds": round(sum(r["seconds"] for r in rows), 2),
        },
        "per_question": {
            "completion_tokens": round(sum(r["completion_tokens"] for r in rows) / max(1, n), 1),
            "seconds": round(sum(r["seconds"] for r in rows) / max(1, n), 2),
        },
        "machine": machine(),  # the machine that wrote this summary
        # the CPUs that made the rows (greedy output depends on the CPU): more than one means the
        # run was resumed elsewhere; rows from before rows carried it count as "not recorded"
        "row_cpus": dict(Counter(str(r.get("cpu", "not recorded")) for r in rows).most_common()),
    }


def _describe(config: dict[str, Any]) -> str:
    """The reasoning settings of a run in a few words, e.g. "vote (adaptive, N<=5, budget 512)"."""
    parts = [f"budget {config.get('budget')}"]
    if config.get("strategy") in VOTING:
        parts.insert(0, f"{'adaptive, N<=' if config.get('adaptive') else 'N='}{config.get('samples')}")
        if config.get("greedy_first") is False:
            parts.insert(1, "all sampled")
    return f"{config.get('strategy')} ({', '.join([*parts, *setting_words(config)])})"


def write_summary(out: Path, summary: dict[str, Any]) -> None:
    atomic_write_json(out / "summary.json", summary)
    config = summary["config"]
    lines = [
        f"# {summary['task']} ({config['mode']}), model {config['model'] or 'default'}"
        + (f", adapter {config['adapter']}" if config["adapter"] else "")
        + (f", strategy {_describe(config)}" if config.get("strategy", "direct") != "direct" else ""),
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in summary["metrics"].items()),
        f"| examples | {summary['n']} |",
        f"| completion tokens / question | {summary['per_question']['completion_tokens']} |",
        f"| seconds / question | {summary['per_question']['seconds']} |",
        "",
    ]
    atomic_write_bytes(out / "summary.md", "\n".join(lines).encode("utf-8"))
