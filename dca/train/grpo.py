"""``dca train grpo``: group-relative policy optimisation of the LoRA with verifiable rewards,
the option for a machine with a GPU (on 2 CPU cores sampling in torch is the bottleneck:
ReST-EM in dca/train/rl.py samples with llama.cpp instead).

Each step takes ``questions`` GSM8K train questions and samples a group of ``group``
completions for each from the current policy (torch, the base + LoRA), in the engine's
format (a program run in the sandbox, or a thought then an answer). The reward is
dca/train/rewards.py's total (correctness + format + length). A completion's advantage is
its reward minus its group's mean, over the group's standard deviation; the loss is
``-sum(advantage * log p(completion)) / (group * max_new_tokens)`` (a constant normaliser,
so long completions are not favoured; no KL term, as in Dr. GRPO and DAPO, and one update per
batch, so the PPO ratio is 1 and needs no clipping). Groups whose completions all score the
same teach nothing and are skipped.

The run folder is SFT's: ``config.json`` (a changed config is refused), ``log.jsonl`` (reward,
accuracy, length per step), ``checkpoints/`` (a rerun after ``kill -9`` resumes), ``NAME.gguf``.
``--init-run`` starts from an SFT run's LoRA (same rank and targets).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from dca.errors import TrainError
from dca.eval.datasets import Example, load_gsm8k
from dca.files import atomic_write_json, config_changes, sha256_file
from dca.reasoning.answers import extract_answer
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.program import FENCE
from dca.reasoning.sandbox import run_program
from dca.reasoning.think import CLOSE, OPEN
from dca.train.base import (
    RunFolder,
    architecture,
    load_checkpoint,
    lora_model,
    memory_error,
    resolve_device,
    resume_log,
    save_checkpoint,
)
from dca.train.configs import GRPOConfig
from dca.train.traces import _prompt_messages

# (example, completion text, completion token ids) -> reward; the default is rewards.py's total
RewardFn = Callable[[Example, str, list[int]], float]
ProgressFn = Callable[[dict[str, Any]], None]


def check_run(folder: Path, config: GRPOConfig) -> None:
    path = folder / "config.json"
    diff = config_changes(path, asdict(config), ignore=("steps",))
    if diff:
        raise TrainError(f"{folder} was trained with another config ({'; '.join(diff)}); use another --out")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, asdict(config))


def math_reward(example: Example, text: str, tokens: list[int], *, fmt: str, budget: int) -> float:
    """rewards.py's total for one completion: the program is run in the sandbox, or the thought's
    answer is read, and the final answer compared with the gold."""
    from dca.train.rewards import total_reward

    if fmt == "program":
        code = text.split("```")[0].strip()
        result = run_program(code)
        final = extract_answer(result.last_line) if result.ok and result.last_line else ""
        response, kind = f"{FENCE}{code}\n```", "program"
    else:
        final = extract_answer(text.split(CLOSE, 1)[1]) if CLOSE in text else ""
        response, kind = f"{OPEN}{text}", "cot"
    return total_reward([final], [example.answers[0]], [response], [kind], [len(tokens)], budget=budget)[0]


def _advantages(rewards: list[float]) -> list[float]:
    mean = sum(rewards) / len(rewards)
    std = (sum((r - mean) ** 2 for r in rewards) / len(rewards)) ** 0.5
    return [0.0] * len(rewards) if std < 1e-6 else [(r - mean) / (std + 1e-4) for r in rewards]


def train_grpo(
    config: GRPOConfig, run: RunFolder, *, reward_fn: RewardFn | None = None, progress: ProgressFn | None = None
) -> dict[str, Any]:
    """Train (or resume) the LoRA ``name`` by GRPO; returns the run summary."""
    import torch
    from safetensors.torch import load_file

    from dca.runtime.llama import LlamaRuntime, RuntimeConfig, resolve_model

    name, paths, folder = run.name, run.paths, run.folder
    data = Path(config.data)
    if not data.is_file():
        raise TrainError(f"{data} does not exist; give the GSM8K train file with --data")
    config = replace(config, data=str(data.resolve()), data_sha256=sha256_file(data))
    examples = load_gsm8k(data)[config.offset :]
    if not examples:
        raise TrainError(f"{data} has no questions after --offset {config.offset}")
    check_run(folder, config)
    device = resolve_device(config.device)
    base_name, base_path = resolve_model(config.model, paths)
    arch = architecture(base_path)
    tokenizer = LlamaRuntime(base_path, name=base_name, config=RuntimeConfig(vocab_only=True))
    eos = tokenizer.llm.token_eos()
    reasoning = ReasoningConfig(strategy="cot", budget=config.max_new_tokens)
    prefix = FENCE if config.format == "program" else OPEN
    score = reward_fn or (
        lambda ex, text, toks: math_reward(ex, text, toks, fmt=config.format, budget=config.max_new_tokens)
    )
    torch.manual_seed(config.seed)
    model = lora_model(
        base_path, config.dtype, rank=config.rank, alpha=config.alpha, targets=config.targets, device=device
    )
    if config.init_run:
        start = Path(config.init_run) / "checkpoints"
        latest = start / "latest"
        if not latest.is_file():
            raise TrainError(f"{config.init_run} has no checkpoint to start from (an SFT run folder is expected)")
        params = dict(model.named_parameters())
        weights = load_file(str(start / latest.read_text(encoding="utf-8").strip() / "adapter.safetensors"))
        missing = sorted(set(weights) - set(params))
        if missing or any(params[n].shape != t.shape for n, t in weights.items()):
            raise TrainError(f"{config.init_run} was trained with another rank or other targets than this run")
        with torch.no_grad():
            for n, t in weights.items():
                params[n].copy_(t)
    model.to(device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    state = load_checkpoint(folder, model, optimizer) or {"step": 0, "seconds": 0.0, "samples": 0}
    log = folder / "log.jsonl"
    resume_log(log, int(state["step"]))
    order = list(range(len(examples)))
    random.Random(config.seed).shuffle(order)
    step = int(state["step"])
    while step < config.steps:
        started = time.perf_counter()
        picked = [examples[order[(step * config.questions + i) % len(order)]] for i in range(config.questions)]
        optimizer.zero_grad(set_to_none=True)
        rewards_all: list[float] = []
        lengths: list[int] = []
        correct = 0
        updates = 0
        for example in picked:
            prompt = tokenizer.chat_prompt(_prompt_messages(example, config.format, reasoning)) + prefix
            ids = torch.tensor([tokenizer.tokenize(prompt)], device=device)
            model.eval()
            with torch.no_grad():
                out_ids = model.generate(
                    ids, do_sample=True, temperature=config.temperature, top_p=1.0, top_k=0,
                    max_new_tokens=config.max_new_tokens, num_return_sequences=config.group,
                    eos_token_id=eos, pad_token_id=eos,
                )  # fmt: skip
            completions = []
            for row in out_ids[:, ids.shape[1] :].tolist():
                tokens = row[: row.index(eos) + 1] if eos in row else row
                completions.append(tokens)
            texts = [
                tokenizer.llm.detokenize([t for t in c if t != eos]).decode("utf-8", errors="replace")
                for c in completions
            ]
            rewards = [score(example, text, tokens) for text, tokens in zip(texts, completions, strict=True)]
            rewards_all += rewards
            lengths += [len(c) for c in completions]
            correct += sum(1 for r in rewards if r >= 1.0)
            advantages = _advantages(rewards)
            if not any(advantages):
                continue  # every completion scored the same: nothing to learn from this group
            model.train()
            for tokens, advantage in zip(completions, advantages, strict=True):
                if not advantage or not tokens:
                    continue
                full = torch.cat([ids[0], torch.tensor(tokens, device=device)]).unsqueeze(0)
                try:
                    logits = model(input_ids=full).logits[0, ids.shape[1] - 1 : -1].float()
                    logp = torch.log_softmax(logits, dim=-1).gather(1, full[0, ids.shape[1] :].unsqueeze(1)).sum()
                    loss = -advantage * logp / (config.group * config.max_new_tokens * config.questions)
                    loss.backward()
                except (MemoryError, RuntimeError) as exc:
                    raise memory_error(exc) from None
                updates += 1
        if updates:
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
        step += 1
        seconds = time.perf_counter() - started
        state = {
            "step": step,
            "seconds": state["seconds"] + seconds,
            "samples": state["samples"] + len(rewards_all),
        }
        line = {
            "step": step,
            "reward": round(sum(rewards_all) / len(rewards_all), 4),
            "accuracy": round(correct / len(rewards_all), 4),
            "mean_tokens": round(sum(lengths) / len(lengths), 1),
            "updated": updates,
            "seconds": round(seconds, 2),
        }
        with log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
        if progress:
            progress(line)
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(folder, step, model, optimizer, state)
    model.to("cpu")
    adapter = run.export(model, arch=arch, alpha=config.alpha, base_model=base_name)
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").split("\n") if line]
    summary = {
        "name": name,
        "adapter": str(adapter),
        "steps": step,
        "samples": state["samples"],
        "hours": round(state["seconds"] / 3600, 3),
        "device": device,
        "first_reward": lines[0]["reward"] if lines else None,
        "last_reward": lines[-1]["reward"] if lines else None,
    }
    atomic_write_json(folder / "summary.json", summary)
    return summary
