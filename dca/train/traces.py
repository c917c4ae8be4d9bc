"""``dca train collect``: sample solutions to GSM8K train questions with the reasoning engine
and keep the shortest correct ones, as JSONL with provenance. Every sample drawn is kept too,
right or wrong, with its verdict, output and error: ``dca train pairs`` pairs them for DPO.

One line per question (its kept traces, possibly none), appended and fsynced, so a rerun
after ``kill -9`` skips the questions already done (a line cut short by the kill is dropped
and its question done again). ``OUT.config.json`` records the settings; a rerun with other
settings is refused, naming the field.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dca import __version__
from dca.choices import TRACE_FORMATS
from dca.errors import ConfigError, TrainError
from dca.eval.datasets import Example, load_gsm8k
from dca.eval.tasks import MATH_SYSTEM
from dca.files import atomic_write_bytes, atomic_write_json, complete_jsonl_lines, config_changes, sha256_file
from dca.reasoning.answers import answers_match
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.events import Sample
from dca.reasoning.program import FENCE, program_messages, solve_with_program
from dca.reasoning.run import first_passes, with_instructions
from dca.reasoning.think import CLOSE, OPEN, think
from dca.runtime.generation import Completion, GenerationConfig, Generator
from dca.train.reference import reference_hint, reference_program, reference_response
from dca.train.rewards import correctness_reward, total_reward

# "reference" and "reference-program": the dataset's own solutions in the think and program formats
FORMATS = TRACE_FORMATS
ProgressFn = Callable[[int, int, int], None]  # (questions done, total, traces kept)


COLLECT_DEVICES = ("llama", "cuda", "cpu")


@dataclass(frozen=True, kw_only=True)
class CollectConfig:
    """One trace collection; recorded beside the output and compared on resume."""

    data: str  # GSM8K train JSONL (never test rows)
    data_sha256: str = ""  # filled in from the file
    format: str = "program"  # program | cot | reference | reference-program (the dataset's solutions)
    samples: int = 4  # solutions sampled per question (0 with greedy_first: the greedy solution only)
    keep: int = 1  # shortest correct solutions kept per question
    offset: int = 0  # skip the first N questions (e.g. keep them for a dev split)
    limit: int = 0  # questions after the offset (0 = all)
    temperature: float = 0.7
    budget: int = 384  # cot: thinking tokens per sample
    seed: int = 0
    model: str | None = None  # None = the default generator
    adapter: str | None = None
    greedy_first: bool = False  # a greedy solution first; samples only when it is wrong
    rationalize: bool = False  # programs: a question nothing solved gets a pass with its reference as a hint
    # llama: llama.cpp (the inference runtime, CPU or its GPU build); cuda / cpu: the base in torch
    # on that device (dca/train/torch_generator.py: batched samples on a GPU)
    device: str = "llama"
    # cuda / cpu: questions solved at once by as many threads, their samples decoded together
    batch_questions: int = 1

    def __post_init__(self) -> None:
        if self.device not in COLLECT_DEVICES:
            raise ConfigError(f"device must be one of {', '.join(COLLECT_DEVICES)}, got {self.device!r}")
        if not 1 <= self.batch_questions <= 512:
            raise ConfigError(f"batch questions must be between 1 and 512, got {self.batch_questions}")
        if self.batch_questions > 1 and self.device == "llama":
            raise ConfigError("--batch-questions batches torch decoding: use it with --device cuda (or cpu)")
        if self.format not in FORMATS:
            raise ConfigError(f"unknown trace format {self.format!r}; use one of: {', '.join(FORMATS)}")
        if not (0 if self.greedy_first else 1) <= self.samples <= 64:
            raise ConfigError(
                f"samples must be between 1 and 64 (0 only with --greedy-first: the greedy solution alone), "
                f"got {self.samples}"
            )
        if not 1 <= self.keep <= max(1, self.samples):
            raise ConfigError(f"keep must be between 1 and samples ({max(1, self.samples)}), got {self.keep}")
        if self.offset < 0 or self.limit < 0:
            raise ConfigError("offset and limit must be >= 0")
        if "test" in Path(self.data).name.lower():
            raise ConfigError(f"{self.data} looks like a test split; traces are collected from train rows only")
        if self.rationalize and self.format != "program":
            raise ConfigError("--rationalize works with --format program (a program's literals show a copied answer)")
        if self.greedy_first and self.format.startswith("reference"):
            raise ConfigError("--greedy-first samples from the model; reference formats sample nothing")
        ReasoningConfig(budget=self.budget)  # validates the budget


def _prompt_messages(example: Example, fmt: str, config: ReasoningConfig) -> list[dict[str, str]]:
    base = [{"role": "system", "content": MATH_SYSTEM}, {"role": "user", "content": example.question}]
    return program_messages(base) if fmt == "program" else with_instructions(base, config, searching=False)


def _response(sample: Sample) -> str:
    """What the model writes after the chat prompt, in the format inference uses."""
    if sample.kind == "program":
        return f"{FENCE}{sample.reasoning}\n```"
    return f"{OPEN}{sample.reasoning}\n{CLOSE}\n\n{sample.answer}"


def _reasoning(config: CollectConfig) -> ReasoningConfig:
    return ReasoningConfig(strategy="cot", budget=config.budget, seed=config.seed, temperature=config.temperature)


def _sample(
    generator: Generator,
    example: Example,
    config: CollectConfig,
    k: int,
    adapter: str | None,
    draft: Completion | None = None,
    *,
    greedy: bool = False,
) -> tuple[Sample, list[dict[str, str]]]:
    reasoning = _reasoning(config)
    messages = _prompt_messages(example, config.format, reasoning)
    temperature = 0.0 if greedy else config.temperature
    gen = GenerationConfig(temperature=temperature, seed=config.seed + k, adapter=adapter)
    if config.format == "program":
        base = [{"role": "system", "content": MATH_SYSTEM}, {"role": "user", "content": example.question}]
        steps = solve_with_program(generator, base, reasoning, gen=gen, sample=k, draft=draft)
    else:
        steps = think(generator, generator.chat_prompt(messages), reasoning, gen=gen, sample=k, draft=draft)
    result = None
    for item in steps:
        if isinstance(item, Sample):
            result = item
    assert result is not None
    return result, messages


def _drafts(
    generator: Generator, example: Example, config: CollectConfig, adapter: str | None
) -> dict[int, Completion]:
    """Every sample's first pass from one batched call: on 2 cores llama.cpp decodes 16
    sequences at ~48 tok/s against ~30 one at a time (benchmarks/bench_trace_generation.py)."""
    if config.samples <= 1:
        return {}
    reasoning = _reasoning(config)
    base = [{"role": "system", "content": MATH_SYSTEM}, {"role": "user", "content": example.question}]
    prompt = generator.chat_prompt(with_instructions(base, reasoning, searching=False))
    gen = GenerationConfig(temperature=config.temperature, seed=config.seed, adapter=adapter)
    kind = "program" if config.format == "program" else "cot"
    return first_passes(generator, prompt, base, reasoning, gen, [kind] * config.samples)


def _candidate(sample: Sample, messages: list[dict[str, str]], *, seed: int | None) -> dict[str, Any]:
    return {
        "messages": messages,
        "response": _response(sample),
        "final": sample.final,
        "tokens": sample.tokens,
        "kind": sample.kind,
        "seed": seed,  # None: greedy
        "output": sample.answer[:_KEEP_OUTPUT] if sample.kind == "program" else "",  # what the program printed
        "error": sample.program_error[:_KEEP_OUTPUT],  # why the program failed ("" when it ran)
    }


_KEEP_OUTPUT = 2000  # characters of a program's output or error kept with each sample


HINT = "\n\nHint, a worked solution (write your own program; do not print the answer as a number):\n{work}"
_LITERAL = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?")


def _rationalized(
    generator: Generator | None, example: Example, config: CollectConfig, adapter: str | None
) -> dict[str, Any] | None:
    """STaR's rationalization: a greedy program written with the reference solution as a hint,
    stored under the plain prompt (the adapter learns to write it without the hint). Kept only
    when it prints the gold answer without stating it: a program holding the answer as a
    literal that the question does not hold has copied it."""
    assert generator is not None
    gold = example.answers[0]
    hinted = replace(example, question=example.question + HINT.format(work=reference_hint(example.solution)))
    sample, _ = _sample(generator, hinted, config, 0, adapter, greedy=True)
    if not answers_match(sample.final, gold):
        return None
    given = {n.replace(",", "") for n in _LITERAL.findall(example.question)}
    stated = {n.replace(",", "") for n in _LITERAL.findall(sample.reasoning)} - given
    if any(answers_match(n, gold) for n in stated):
        return None
    messages = _prompt_messages(example, config.format, _reasoning(config))
    return {**_candidate(sample, messages, seed=None), "rationalized": True}


def collect_question(
    generator: Generator | None, example: Example, config: CollectConfig, adapter: str | None
) -> dict[str, Any]:
    """Sample ``config.samples`` solutions, keep the ``config.keep`` shortest correct ones."""
    gold = example.answers[0]
    candidates: list[dict[str, Any]] = []
    drawn = 0
    if config.format == "reference":
        response, final = reference_response(example.solution)
        reasoning = ReasoningConfig(strategy="cot", budget=config.budget)
        messages = _prompt_messages(example, "cot", reasoning)
        candidates.append({"messages": messages, "response": response, "final": final, "tokens": 0, "kind": "cot"})
        drawn = 1
    elif config.format == "reference-program":
        converted = reference_program(example.solution)
        if converted is not None:  # annotations that do not make a program: no trace
            code, final = converted
            messages = _prompt_messages(example, "program", _reasoning(config))
            response = f"{FENCE}{code}\n```"
            candidates.append(
                {"messages": messages, "response": response, "final": final, "tokens": 0, "kind": "program"}
            )
        drawn = 1
    else:
        assert generator is not None
        if config.greedy_first:
            sample, messages = _sample(generator, example, config, 0, adapter, greedy=True)
            candidates.append(_candidate(sample, messages, seed=None))
            drawn += 1
        if not (candidates and answers_match(candidates[0]["final"], gold)):
            drafts = _drafts(generator, example, config, adapter)
            for k in range(config.samples):
                sample, messages = _sample(generator, example, config, k, adapter, drafts.get(k))
                drawn += 1
                candidates.append(_candidate(sample, messages, seed=config.seed + k))
    correct = correctness_reward([c["final"] for c in candidates], [gold] * len(candidates))
    rewards = total_reward(
        [c["final"] for c in candidates],
        [gold] * len(candidates),
        [c["response"] for c in candidates],
        [c["kind"] for c in candidates],
        [c["tokens"] for c in candidates],
        budget=config.budget,
    )
    if config.rationalize and not any(correct) and example.solution:
        hinted = _rationalized(generator, example, config, adapter)
        if hinted is not None:  # kept, but not counted as a sample: the hint made it
            candidates.append(hinted)
            correct.append(1.0)
            rewards.append(
                total_reward(
                    [hinted["final"]],
                    [gold],
                    [hinted["response"]],
                    ["program"],
                    [hinted["tokens"]],
                    budget=config.budget,
                )[0]
            )
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for candidate, ok, reward in sorted(
        zip(candidates, correct, rewards, strict=True), key=lambda c: (c[0]["tokens"], len(c[0]["response"]))
    ):
        if ok and candidate["response"] not in seen and len(kept) < config.keep:
            seen.add(candidate["response"])
            kept.append({**candidate, "reward": reward})
    judged = [
        {**{k: v for k, v in c.items() if k != "messages"}, "correct": bool(ok), "reward": reward}
        for c, ok, reward in zip(candidates[:drawn], correct, rewards, strict=False)
    ]
    return {
        "id": example.id,
        "question": example.question,
        "gold": gold,
        "format": config.format,
        "messages": candidates[0]["messages"] if candidates else [],
        "samples": judged,  # every sample drawn, right or wrong, with its verdict (pairs for DPO)
        "drawn": drawn,
        "correct": int(sum(correct[:drawn])),
        "rewards": rewards[:drawn],  # every sample's total reward (RL logs their mean)
        "sample_tokens": [c["tokens"] for c in candidates[:drawn]],
        "rationalized": int(len(candidates) > drawn),
        "traces": kept,
    }


def _check_config(out: Path, config: CollectConfig) -> None:
    path = out.with_name(out.name + ".config.json")
    diff = config_changes(
        path,
        asdict(config),
        # the same samples, drawn by another engine or batch: a run may resume on a GPU
        ignore=("limit", "device", "batch_questions"),
        defaults={"greedy_first": False, "rationalize": False},
    )
    if diff:
        raise TrainError(f"{out} was collected with other settings ({'; '.join(diff)}); use another --out")
    atomic_write_json(path, asdict(config))


def _generator(config: CollectConfig, paths: Any) -> Generator:
    """llama.cpp, or the base in torch on a device (a GPU: batched samples)."""
    from dca.config import Paths

    paths = paths or Paths.resolve()
    if config.device == "llama":
        from dca.runtime.llama import load_runtime

        return load_runtime(config.model, paths=paths)
    from dca.runtime.llama import resolve_model
    from dca.train.base import resolve_device, resolve_dtype
    from dca.train.torch_generator import TorchGenerator

    device = resolve_device(config.device)
    name, path = resolve_model(config.model, paths)
    return TorchGenerator(path, name=name, device=device, dtype=resolve_dtype("auto", device))


def _collect_batched(todo: list[Example], record: Callable[[Example], None], generator: Any, workers: int) -> None:
    """``workers`` threads take questions in turn; their generator calls are decoded together.
    An error in one thread, or an interrupt, stops the others after their current question (each
    finished question is on disk: a rerun resumes)."""
    queue = iter(todo)
    take = threading.Lock()
    stop = threading.Event()
    workers = min(workers, len(todo))

    def work() -> None:
        try:
            while not stop.is_set():
                with take:
                    example = next(queue, None)
                if example is None:
                    return
                record(example)
        except BaseException:
            stop.set()
            raise
        finally:
            generator.worker_done()

    with generator.batching(workers), ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(work) for _ in range(workers)]
        try:
            for future in futures:
                future.result()
        finally:
            stop.set()


def collect(
    config: CollectConfig,
    *,
    out: Path,
    generator: Generator | None = None,
    progress: ProgressFn | None = None,
    paths: Any = None,
) -> dict[str, Any]:
    """Collect (or resume collecting) traces into ``out``; returns counts."""
    data = Path(config.data)
    if not data.is_file():
        raise TrainError(f"{data} does not exist; give the GSM8K train file with --data")
    config = replace(config, data=str(data.resolve()), data_sha256=sha256_file(data))
    examples = load_gsm8k(data)[config.offset :]
    if config.limit:
        examples = examples[: config.limit]
    out.parent.mkdir(parents=True, exist_ok=True)
    _check_config(out, config)
    lines = complete_jsonl_lines(out)  # a line cut short by a kill: that question runs again
    atomic_write_bytes(out, "".join(line + "\n" for line in lines).encode("utf-8"))
    done = {json.loads(line)["id"] for line in lines}
    kept = sum(len(json.loads(line)["traces"]) for line in lines)
    todo = [e for e in examples if e.id not in done]
    adapter = None
    if todo and not config.format.startswith("reference") and generator is None:
        generator = _generator(config, paths)
    if todo and config.adapter and generator is not None:
        from dca.config import Paths
        from dca.runtime.adapters import resolve_adapter

        adapter, path = resolve_adapter(config.adapter, paths or Paths.resolve())
        generator.load_adapter(adapter, path)
    provenance = {
        "model": getattr(generator, "name", None) or config.model,
        "adapter": config.adapter,
        "format": config.format,
        "temperature": config.temperature,
        "seed": config.seed,
        "dca": __version__,
    }
    finished = len(done & {e.id for e in examples})
    lock = threading.Lock()

    def record(example: Example) -> None:
        nonlocal finished, kept
        started = time.perf_counter()
        row = collect_question(generator, example, config, adapter)
        row["provenance"] = provenance
        row["seconds"] = round(time.perf_counter() - started, 2)
        with lock:  # one whole line at a time, in the order questions finish (a rerun skips by id)
            with out.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            finished += 1
            kept += len(row["traces"])
            if progress:
                progress(finished, len(examples), kept)

    if config.batch_questions > 1 and hasattr(generator, "batching") and len(todo) > 1:
        _collect_batched(todo, record, generator, config.batch_questions)
    else:
        for example in todo:
            record(example)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").split("\n") if line]
    return {
        "questions": len(rows),
        "with_a_correct_trace": sum(1 for r in rows if r["traces"]),
        "traces": sum(len(r["traces"]) for r in rows),
        "samples_drawn": sum(r["drawn"] for r in rows),
        "mean_trace_tokens": round(
            sum(t["tokens"] for r in rows for t in r["traces"]) / max(1, sum(len(r["traces"]) for r in rows)), 1
        ),
        "rationalized": sum(r.get("rationalized", 0) for r in rows),
        "sample_accuracy": round(sum(r["correct"] for r in rows) / max(1, sum(r["drawn"] for r in rows)), 4),
        "mean_reward": round(
            sum(sum(r.get("rewards", [])) for r in rows) / max(1, sum(len(r.get("rewards", [])) for r in rows)), 4
        ),
        "mean_sample_tokens": round(
            sum(sum(r.get("sample_tokens", [])) for r in rows)
            / max(1, sum(len(r.get("sample_tokens", [])) for r in rows)),
            1,
        ),
    }
