"""``dca train rl``: reinforcement learning with verifiable rewards by expert iteration (ReST-EM).

Each round: sample K solutions per question from the current policy (the base with the
latest adapter, hot-swapped into llama.cpp), score them with the rewards of
``dca.train.rewards`` (correctness through the one answer module, format, a length
penalty), keep the shortest correct ones, and fine-tune a fresh LoRA from the base on every
trace accepted so far. Rounds use disjoint slices of the train questions. ``rounds.jsonl``
logs per round: sample accuracy, mean reward, mean sample length, traces kept, SFT loss and
hours. Every step is resumable: a killed run continues with the same command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dca.errors import ConfigError, TrainError
from dca.files import atomic_write_bytes, atomic_write_json, config_changes
from dca.train.base import RunFolder
from dca.train.sft import SFTConfig, train_sft
from dca.train.traces import CollectConfig, collect

ProgressFn = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class RLConfig:
    """Expert iteration: rounds of sample -> reward -> keep -> fine-tune."""

    data: str  # GSM8K train JSONL
    model: str | None = None  # base: catalog name or GGUF path
    init_adapter: str | None = None  # policy of round 1 (e.g. the SFT adapter); None = the base
    init_traces: str | None = None  # traces the first fine-tune also learns from (e.g. the SFT data)
    rounds: int = 2
    questions: int = 100  # questions per round (disjoint slices)
    offset: int = 0  # first question of round 1
    samples: int = 4  # solutions sampled per question
    keep: int = 1
    format: str = "program"  # program | cot
    temperature: float = 0.8
    budget: int = 384
    seed: int = 0
    sft: SFTConfig | None = None  # fine-tuning settings (data and model are filled in per round)

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.questions < 1:
            raise ConfigError(f"rounds and questions must be at least 1, got {self.rounds} and {self.questions}")
        if self.format not in ("program", "cot"):
            raise ConfigError(f"RL samples programs or thoughts, not {self.format!r}")


def _merge(sources: list[Path], out: Path) -> Path:
    """One traces file from several (later ones extend earlier ones)."""
    lines = [line for path in sources for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    atomic_write_bytes(out, "".join(line + "\n" for line in lines).encode("utf-8"))
    return out


def train_rl(config: RLConfig, run: RunFolder, *, progress: ProgressFn | None = None) -> list[dict[str, Any]]:
    """Run (or resume) the rounds; returns one log line per round."""
    name, paths, folder = run.name, run.paths, run.folder
    folder.mkdir(parents=True, exist_ok=True)
    saved = folder / "rl-config.json"
    diff = config_changes(saved, asdict(config))
    if diff:
        raise TrainError(f"{folder} was made with another RL config ({'; '.join(diff)}); use another --out")
    atomic_write_json(saved, asdict(config))
    log_path = folder / "rounds.jsonl"
    done = (
        [json.loads(line) for line in log_path.read_text(encoding="utf-8").split("\n") if line]
        if log_path.is_file()
        else []
    )
    adapter = done[-1]["adapter"] if done else config.init_adapter
    accepted: list[Path] = [Path(config.init_traces)] if config.init_traces else []
    accepted += [folder / f"round-{r['round']}" / "traces.jsonl" for r in done]
    for number in range(len(done) + 1, config.rounds + 1):
        started = time.perf_counter()
        round_dir = folder / f"round-{number}"
        round_dir.mkdir(exist_ok=True)
        if progress:
            progress(f"round {number}/{config.rounds}: sampling from {Path(adapter).stem if adapter else 'the base'}")
        counts = collect(
            CollectConfig(
                data=config.data,
                format=config.format,
                samples=config.samples,
                keep=config.keep,
                offset=config.offset + (number - 1) * config.questions,
                limit=config.questions,
                temperature=config.temperature,
                budget=config.budget,
                seed=config.seed + 1000 * number,
                model=config.model,
                adapter=adapter,
            ),
            out=round_dir / "traces.jsonl",
            paths=paths,
        )
        accepted.append(round_dir / "traces.jsonl")
        line: dict[str, Any] = {
            "round": number,
            "policy": Path(adapter).stem if adapter else "base",
            "questions": counts["questions"],
            "sample_accuracy": counts["sample_accuracy"],
            "mean_reward": counts["mean_reward"],
            "mean_sample_tokens": counts["mean_sample_tokens"],
            "traces_kept": counts["traces"],
        }
        merged = _merge(accepted, round_dir / "train.jsonl")
        if not any(json.loads(row)["traces"] for row in merged.read_text(encoding="utf-8").split("\n") if row):
            raise TrainError(
                f"round {number}: no sample has been correct yet ({counts['samples_drawn']} drawn); "
                "start from an SFT adapter (--init-adapter), give --init-traces, or draw more --samples"
            )
        if progress:
            progress(f"round {number}/{config.rounds}: fine-tuning on {merged.name}")
        sft = config.sft or SFTConfig(data=str(merged))
        summary = train_sft(
            SFTConfig(**{**asdict(sft), "data": str(merged), "model": config.model, "data_sha256": ""}),
            RunFolder(f"{name}-r{number}", paths, round_dir / "sft"),
        )
        adapter = summary["adapter"]
        line |= {
            "sft_steps": summary["steps"],
            "sft_final_loss": summary["final_loss"],
            "adapter": adapter,
            "hours": round((time.perf_counter() - started) / 3600, 4),
        }
        with log_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
        done.append(line)
    return done
