"""``dca train dpo``: preference training of a LoRA on (question, chosen, rejected) pairs.

The loss is IRPO's (Pang et al., 2024): DPO's ``-log sigmoid(beta * margin)`` where margin =
(log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected)), plus
``nll_weight`` times the chosen response's negative log-likelihood per token. The reference
policy is the model at the start (the base, or the base with ``--init-adapter``); its
log-probabilities are computed once, before training, and cached beside the pairs in
``PAIRS.reference.jsonl`` (one fsynced line per pair, so a killed run resumes the cache too),
with the pairs file, base and initial adapter it belongs to in its first line.

The run folder works as ``dca train sft``'s: ``config.json`` (another config is refused),
``log.jsonl`` (loss, DPO loss, NLL, reward margin and accuracy per optimizer step),
``checkpoints/step-N`` (the two newest; a ``kill -9`` resumes from the newest to the same
weights) and ``NAME.gguf`` at the end.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from dca.errors import TrainError
from dca.files import atomic_write_bytes, atomic_write_json, complete_jsonl_lines, sha256_file
from dca.train.base import (
    RunFolder,
    architecture,
    check_run,
    lora_model,
    model_device,
    optimize,
    resolve_device,
    resolve_dtype,
)
from dca.train.configs import DPOConfig
from dca.train.data import IGNORE, Example, encode, jsonl_rows

ProgressFn = Callable[[dict[str, Any]], None]


def read_pairs(path: Path) -> list[dict[str, Any]]:
    """The pairs of ``path``, each checked: a prompt, and a chosen that differs from the rejected."""
    pairs = []
    for number, pair in jsonl_rows(path, made_by="dca train pairs"):
        if not all(k in pair for k in ("messages", "chosen", "rejected")):
            raise TrainError(f"{path} line {number} is not a pair (messages, chosen, rejected)")
        if pair["chosen"] == pair["rejected"]:
            raise TrainError(f"{path} line {number}: chosen and rejected are the same response")
        pairs.append(pair)
    if not pairs:
        raise TrainError(f"{path} holds no pairs; make them with `dca train pairs`")
    return pairs


def sequence_logp(model: Any, example: Example) -> tuple[Any, int]:
    """Sum of the log-probabilities of the response tokens (labels not ignored), and their count."""
    import torch

    tokens = torch.tensor([example.tokens], device=model_device(model))
    labels = torch.tensor([example.labels], device=model_device(model))
    logits = model(input_ids=tokens).logits[:, :-1].float()
    targets = labels[:, 1:]
    mask = targets != IGNORE
    picked = torch.log_softmax(logits, dim=-1).gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(), int(mask.sum())


def dpo_loss(policy: tuple[Any, Any], reference: tuple[float, float], *, beta: float) -> tuple[Any, Any]:
    """(DPO loss, reward margin) of one pair from the policy's and the reference's log-probabilities.

    >>> import torch
    >>> loss, margin = dpo_loss((torch.tensor(-5.0), torch.tensor(-9.0)), (-6.0, -8.0), beta=0.5)
    >>> round(float(margin), 3), round(float(loss), 4)
    (1.0, 0.3133)
    """
    import torch

    margin = beta * ((policy[0] - reference[0]) - (policy[1] - reference[1]))
    return -torch.nn.functional.logsigmoid(margin), margin.detach()


def _reference_meta(config: DPOConfig, base_name: str, base_path: Path, dtype: str) -> dict[str, Any]:
    init = Path(config.init_adapter) if config.init_adapter else None
    return {
        "dtype": dtype,  # log-probabilities in bfloat16 and float32 differ: a margin needs one precision
        "pairs_sha256": config.data_sha256,
        "base": base_name,
        "base_size": base_path.stat().st_size,
        "init_adapter_sha256": sha256_file(init) if init else None,
        "seq_len": config.seq_len,
    }


def reference_logps(
    model: Any,
    encoded: list[tuple[Example, Example]],
    cache: Path,
    meta: dict[str, Any],
    on_pair: Callable[[int, int], None] | None = None,
) -> list[tuple[float, float]]:
    """The reference's (chosen, rejected) log-probabilities of every pair, from ``cache`` or
    computed (and appended to it, line by line) with ``model`` as it is now."""
    import torch

    lines = complete_jsonl_lines(cache) if cache.is_file() else []
    if lines:
        saved = json.loads(lines[0]).get("meta")
        if saved != meta:
            changed = sorted(k for k in meta if (saved or {}).get(k) != meta[k])
            raise TrainError(
                f"the reference cache {cache} belongs to another {' and '.join(changed) or 'run'}; "
                "delete it to compute it again for these pairs and this base"
            )
    else:
        lines = [json.dumps({"meta": meta})]
    atomic_write_bytes(cache, "".join(line + "\n" for line in lines).encode("utf-8"))  # a cut last line dropped
    values = [tuple(json.loads(line)["logps"]) for line in lines[1:]]
    # A question's pairs share their chosen (or rejected) response: each sequence is read once.
    known: dict[tuple[tuple[int, ...], tuple[int, ...]], float] = {}
    for done, logps in zip(encoded, values, strict=False):  # the cache may be partial
        for example, logp in zip(done, logps, strict=True):
            known[(tuple(example.tokens), tuple(example.labels))] = float(logp)

    def logp_of(example: Example) -> float:
        key = (tuple(example.tokens), tuple(example.labels))
        if key not in known:
            known[key] = float(sequence_logp(model, example)[0])
        return known[key]

    model.eval()
    with torch.no_grad(), cache.open("a", encoding="utf-8") as handle:
        for chosen, rejected in encoded[len(values) :]:
            pair = (logp_of(chosen), logp_of(rejected))
            values.append(pair)
            handle.write(json.dumps({"logps": pair}) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
            if on_pair:
                on_pair(len(values), len(encoded))
    model.train()
    return [(float(c), float(r)) for c, r in values]


def train_dpo(
    config: DPOConfig,
    run: RunFolder,
    *,
    progress: ProgressFn | None = None,
    reference_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume) the preference LoRA ``name``; returns the run summary with the adapter's path."""
    import torch

    from dca.runtime.llama import LlamaRuntime, RuntimeConfig, resolve_model
    from dca.train.export import import_lora

    name, paths, folder = run.name, run.paths, run.folder
    data = Path(config.data)
    pairs = read_pairs(data)
    config = replace(config, data=str(data.resolve()), data_sha256=sha256_file(data))
    if config.init_adapter and not Path(config.init_adapter).is_file():
        raise TrainError(f"--init-adapter {config.init_adapter} does not exist")
    base_name, base_path = resolve_model(config.model, paths)
    arch = architecture(base_path)
    device = resolve_device(config.device)  # before anything loads: --device cuda without a GPU is one line
    check_run(folder, config)
    tokenizer = LlamaRuntime(base_path, name=base_name, config=RuntimeConfig(vocab_only=True))
    encoded = [
        (
            encode(tokenizer, {"messages": p["messages"], "response": p["chosen"]}, config.seq_len),
            encode(tokenizer, {"messages": p["messages"], "response": p["rejected"]}, config.seq_len),
        )
        for p in pairs
    ]
    if not any(any(t != IGNORE for t in c.labels) for c, _ in encoded):
        raise TrainError(f"no pair of {data.name} has a response within --seq-len {config.seq_len}; raise it")
    torch.manual_seed(config.seed)
    model = lora_model(
        base_path, config.dtype, rank=config.rank, alpha=config.alpha, targets=config.targets, device=device
    )
    if config.init_adapter:
        import_lora(model, Path(config.init_adapter), arch=arch, base_model=base_name, alpha=config.alpha)
    cache = data.with_name(data.name + ".reference.jsonl")
    reference = reference_logps(
        model,
        encoded,
        cache,
        _reference_meta(config, base_name, base_path, resolve_dtype(config.dtype, device)),
        reference_progress,
    )
    schedule: list[int] = []
    for epoch in range(config.epochs):
        order = list(range(len(encoded)))
        random.Random(config.seed + epoch).shuffle(order)
        schedule += order
    total_steps = math.ceil(len(schedule) / config.grad_accum)
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    def step_loss(step: int) -> tuple[dict[str, float], int]:
        batch = schedule[step * config.grad_accum : (step + 1) * config.grad_accum]
        sums = {"loss": 0.0, "dpo": 0.0, "nll": 0.0, "margin": 0.0, "right": 0.0}
        n_tokens = 0
        for index in batch:
            chosen, rejected = encoded[index]
            logp_c, n_c = sequence_logp(model, chosen)
            logp_r, _ = sequence_logp(model, rejected)
            dpo, margin = dpo_loss((logp_c, logp_r), reference[index], beta=config.beta)
            nll = -logp_c / max(1, n_c)
            loss = dpo + config.nll_weight * nll
            (loss / len(batch)).backward()
            sums["loss"] += float(loss.detach())
            sums["dpo"] += float(dpo.detach())
            sums["nll"] += float(nll.detach())
            sums["margin"] += float(margin)
            sums["right"] += float(margin > 0)
            n_tokens += len(chosen.tokens) + len(rejected.tokens)
        metrics = {key: round(value / len(batch), 5) for key, value in sums.items() if key != "right"}
        return {**metrics, "reward_accuracy": round(sums["right"] / len(batch), 4)}, n_tokens

    step, state = optimize(
        model, config, folder=folder, total_steps=total_steps, step_loss=step_loss, progress=progress
    )
    log = folder / "log.jsonl"
    adapter = run.export(model, arch=arch, alpha=config.alpha, base_model=base_name)
    from dca.runtime.adapters import VERIFIER_SUFFIX
    from dca.runtime.preference import PreferenceVerifier

    verifier = PreferenceVerifier(
        base_model=base_name,
        adapter=Path(adapter),
        reference=Path(config.init_adapter).resolve() if config.init_adapter else None,
        beta=config.beta,
        meta={"pairs": config.data, "pairs_sha256": config.data_sha256},
    )
    verifier_path = folder / f"{name}{VERIFIER_SUFFIX}"
    atomic_write_json(verifier_path, verifier.to_json(folder))
    logged = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()] if log.is_file() else []
    summary = {
        "name": name,
        "adapter": str(adapter),
        "verifier": str(verifier_path),
        "device": device,
        "steps": step,
        "pairs": len(encoded),
        "tokens": state["tokens"],
        "hours": round(state["seconds"] / 3600, 3),
        "tokens_per_s": round(state["tokens"] / max(state["seconds"], 1e-9), 1),
        "first": {k: logged[0][k] for k in ("loss", "margin", "reward_accuracy")} if logged else None,
        "final": {k: logged[-1][k] for k in ("loss", "margin", "reward_accuracy")} if logged else None,
    }
    atomic_write_json(folder / "summary.json", summary)
    return summary
