"""Expert iteration (ReST-EM) for the reasoning adapter on a machine with a GPU, in one process.

The CPU recipe (`dca train collect` with llama.cpp, then `dca train sft`) does the same work at
about 11 s a question and 40 training tokens/s; with a GPU the sampling and the training are
batched in torch. Input: ``tools/gpu_prepare.py``'s file (prompts tokenized by llama.cpp's own
template and tokenizer, the vocabulary as bytes), so the adapter learns exactly the tokens it
sees at inference. One round:

1. sample ``--samples`` programs per training question from the current policy (the base,
   then the base with the last round's LoRA merged), temperature ``--temperature``, until the
   time for sampling is spent;
2. run each program in dca's sandbox and compare its printed answer with the gold
   (dca/reasoning/answers.py, as everywhere);
3. keep the shortest distinct correct programs: ``--keep`` of a hard question (under 3/4 of
   its samples right), ``--max-easy`` of an easy one;
4. train a fresh LoRA on the base (ReST-EM trains the base each round) on every round's kept
   programs, loss on the program tokens (and the end of turn) only, packed sequences;
5. greedy accuracy on the dev rows (GSM8K train rows 100-199, never trained on) before and after.

Writes ``OUT/rN/`` per round (samples.jsonl, kept.jsonl, log.json, lora.safetensors) and the
adapter ``OUT/NAME.gguf``. The numbers that count are measured afterwards on the CPU with
``dca eval`` (llama.cpp, the GGUF base): greedy torch bf16 and llama.cpp differ in the last bits.

    python3 tools/gpu_rest.py --model /tmp/m/base.gguf --data .gpu/data.json.gz --out /tmp/work
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dca.reasoning.answers import answers_match, extract_answer
from dca.reasoning.sandbox import run_program
from dca.train.data import Example, pack

CLOSE_FENCE = "```"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Vocab:
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = [base64.b64decode(p) for p in pieces]

    def text(self, ids: list[int]) -> str:
        return b"".join(self.pieces[i] for i in ids).decode("utf-8", errors="replace")

    def cut_at_fence(self, ids: list[int]) -> tuple[list[int], str, bool]:
        """The ids up to and including the token that closes the code fence, the code before
        it, and whether the fence was closed (a program cut by the token limit is not)."""
        data = b""
        for n, i in enumerate(ids):
            data += self.pieces[i]
            at = data.find(CLOSE_FENCE.encode())
            if at >= 0:
                return ids[: n + 1], data[:at].decode("utf-8", errors="replace"), True
        return ids, data.decode("utf-8", errors="replace"), False


# dca's own sampler settings (dca/runtime/generation.py); run 1 and 2 sampled without them
SAMPLER = {"top_p": 0.95, "top_k": 40, "min_p": 0.05}


def batched_generate(
    model: Any, prompts: list[list[int]], *, k: int, eos: int, max_new: int, temperature: float
) -> list[list[list[int]]]:
    """k completions per prompt (greedy when temperature is 0), cut at the end of turn."""
    import torch

    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), eos, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):  # left padding: every prompt ends where generation starts
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    sampling = {"do_sample": True, "temperature": temperature, **SAMPLER} if temperature else {}
    with torch.no_grad():
        out = model.generate(
            input_ids=ids.to(model.device),
            attention_mask=mask.to(model.device),
            max_new_tokens=max_new,
            num_return_sequences=k,
            eos_token_id=eos,
            pad_token_id=eos,
            do_sample=bool(temperature),
            **{key: value for key, value in sampling.items() if key != "do_sample"},
        )
    rows = out[:, width:].tolist()
    result: list[list[list[int]]] = []
    for q in range(len(prompts)):
        group = []
        for row in rows[q * k : (q + 1) * k]:
            group.append(row[: row.index(eos)] if eos in row else row)
        result.append(group)
    return result


def judge(code: str, gold: str) -> tuple[bool, str]:
    result = run_program(code)
    final = extract_answer(result.last_line) if result.ok and result.last_line else ""
    return bool(final) and answers_match(final, gold), final


def sample_round(
    model: Any,
    vocab: Vocab,
    questions: list[dict[str, Any]],
    args: argparse.Namespace,
    *,
    eos: int,
    seconds: float,
    pool: ThreadPoolExecutor,
) -> list[dict[str, Any]]:
    """Sample and judge until ``seconds`` are spent or the questions run out; one row per question."""
    started = time.perf_counter()
    pending = []
    done = 0
    for first in range(0, len(questions), args.batch_questions):
        if time.perf_counter() - started > seconds:
            break
        batch = questions[first : first + args.batch_questions]
        groups = batched_generate(
            model, [q["prompt_ids"] for q in batch], k=args.samples, eos=eos, max_new=args.max_new,
            temperature=args.temperature,
        )  # fmt: skip
        for question, group in zip(batch, groups, strict=True):
            samples = []
            for ids in group:
                kept_ids, code, closed = vocab.cut_at_fence(ids)
                samples.append({"ids": kept_ids, "code": code.strip(), "closed": closed})
            futures = [pool.submit(judge, s["code"], question["gold"]) for s in samples]
            pending.append((question, samples, futures))
        done += len(batch)
        log(f"sampled {done} questions ({args.samples} each) in {time.perf_counter() - started:.0f} s")
    rows = []
    for question, samples, futures in pending:
        for sample, future in zip(samples, futures, strict=True):
            sample["correct"], sample["final"] = future.result()
        rows.append({"id": question["id"], "row": question["row"], "gold": question["gold"], "samples": samples})
    log(f"judged {len(rows)} questions in {time.perf_counter() - started:.0f} s")
    return rows


def keep_shortest(rows: list[dict[str, Any]], keep: int, max_easy: int) -> list[dict[str, Any]]:
    """The shortest distinct correct, closed programs per question (fewer of an easy one)."""
    kept = []
    for row in rows:
        samples = row["samples"]
        right = [s for s in samples if s["correct"] and s["closed"]]
        easy = sum(s["correct"] for s in samples) >= 0.75 * len(samples)
        seen: set[str] = set()
        for s in sorted(right, key=lambda s: (len(s["ids"]), s["code"])):
            if s["code"] in seen or len(seen) >= (max_easy if easy else keep):
                continue
            seen.add(s["code"])
            kept.append({"id": row["id"], "row": row["row"], "ids": s["ids"], "easy": easy})
    return kept


def reset_lora(model: Any) -> None:
    for module in model.modules():
        if hasattr(module, "reset_lora_parameters"):
            module.reset_lora_parameters("default", True)


def train(model: Any, examples: list[Example], args: argparse.Namespace, seed: int) -> dict[str, Any]:
    """A fresh LoRA on the base: AdamW, warm-up then linear decay, packed sequences in micro-batches."""
    import torch

    from dca.train.sft import _schedule

    reset_lora(model)
    for _, p in model.named_parameters():
        if p.requires_grad:
            p.data = p.data.float()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    sequences = [s for epoch in range(args.epochs) for s in pack(examples, args.seq_len, seed + epoch)]
    per_step = args.micro_batch * args.grad_accum
    total = max(1, -(-len(sequences) // per_step))
    warmup = min(5, total // 4)
    model.train()
    started = time.perf_counter()
    losses = []
    tokens = 0
    for step in range(total):
        optimizer.zero_grad(set_to_none=True)
        chunk = sequences[step * per_step : (step + 1) * per_step]
        step_losses = []
        for first in range(0, len(chunk), args.micro_batch):
            micro = chunk[first : first + args.micro_batch]
            width = max(len(s.tokens) for s in micro)
            ids = torch.zeros((len(micro), width), dtype=torch.long)
            labels = torch.full((len(micro), width), -100, dtype=torch.long)
            mask = torch.zeros((len(micro), width), dtype=torch.long)
            for r, s in enumerate(micro):
                ids[r, : len(s.tokens)] = torch.tensor(s.tokens)
                labels[r, : len(s.labels)] = torch.tensor(s.labels)
                mask[r, : len(s.tokens)] = 1
                tokens += len(s.tokens)
            device = model.device
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            (loss * len(micro) / len(chunk)).backward()
            step_losses.append(float(loss.detach()))
        for group in optimizer.param_groups:
            group["lr"] = args.lr * _schedule(step, total, warmup)
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        losses.append(sum(step_losses) / len(step_losses))
        if step % 10 == 0 or step == total - 1:
            log(f"train step {step + 1}/{total} loss {losses[-1]:.4f}")
    seconds = time.perf_counter() - started
    model.eval()
    return {
        "steps": total,
        "sequences": len(sequences),
        "examples": len(examples),
        "tokens": tokens,
        "seconds": round(seconds, 1),
        "tokens_per_s": round(tokens / max(seconds, 1e-9), 1),
        "first_loss": round(losses[0], 4),
        "last_loss": round(losses[-1], 4),
    }


def dev_accuracy(model: Any, vocab: Vocab, dev: list[dict[str, Any]], args: argparse.Namespace, eos: int) -> float:
    """Greedy program accuracy on the dev rows (one attempt, no repair), in torch."""
    if not dev:
        return float("nan")
    groups = []
    for first in range(0, len(dev), args.batch_questions):
        batch = dev[first : first + args.batch_questions]
        groups += batched_generate(
            model, [q["prompt_ids"] for q in batch], k=1, eos=eos, max_new=args.max_new, temperature=0.0
        )
    with ThreadPoolExecutor(args.workers) as pool:
        codes = [vocab.cut_at_fence(g[0])[1].strip() for g in groups]
        results = list(pool.map(judge, codes, [q["gold"] for q in dev]))
    return round(sum(ok for ok, _ in results) / len(dev), 4)


def train_sets(
    model: Any,
    vocab: Vocab,
    data: dict[str, Any],
    dev: list[dict[str, Any]],
    args: argparse.Namespace,
    eos: int,
    summary: dict[str, Any],
    out: Path,
) -> None:
    from dca.train.export import export_lora

    prompts = {q["id"]: q["prompt_ids"] for q in data["questions"]}
    for spec in args.train_sets.split(","):
        file, epochs, lr = spec.split(":")
        kept = [json.loads(line) for line in Path(file).read_text(encoding="utf-8").splitlines() if line]
        examples = []
        for k in kept:
            prompt, response = prompts[k["id"]], [*k["ids"], eos]
            examples.append(Example(tokens=prompt + response, labels=[-100] * len(prompt) + response))
        args.epochs, args.lr = int(epochs), float(lr)
        stats: dict[str, Any] = {"set": file, "epochs": args.epochs, "lr": args.lr}
        stats["train"] = train(model, examples, args, args.seed)
        stats["dev_after"] = dev_accuracy(model, vocab, dev, args, eos)
        log(f"{file}: dev greedy accuracy {stats['dev_after']} (base {summary['dev_base']})")
        summary["rounds"].append(stats)
        (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
        export_lora(
            model, out / f"{Path(file).stem}.gguf", arch="qwen2", n_blocks=int(model.config.num_hidden_layers),
            alpha=args.alpha, base_model=data["model"],
        )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="the base GGUF file")
    parser.add_argument("--data", required=True, help="tools/gpu_prepare.py's file (.json or .json.gz)")
    parser.add_argument("--out", required=True)
    parser.add_argument("--name", default="gpu1")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument(
        "--raw-sampling", action="store_true", help="plain softmax sampling (no top-p/top-k/min-p), as runs 1-2 did"
    )
    parser.add_argument("--max-new", type=int, default=320)
    parser.add_argument("--batch-questions", type=int, default=128)
    parser.add_argument("--sample-seconds", type=float, default=240.0, help="sampling time per round")
    parser.add_argument("--questions", type=int, default=0, help="at most this many training questions (0: all)")
    parser.add_argument("--keep", type=int, default=2)
    parser.add_argument("--max-easy", type=int, default=1)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--workers", type=int, default=16, help="programs judged at once")
    parser.add_argument("--dev", type=int, default=100, help="dev rows scored before and after (0: none)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument(
        "--train-sets",
        default="",
        help="no sampling: train a fresh LoRA on each FILE:EPOCHS:LR (JSONL of id + response ids), "
        "score it on the dev rows and export FILE's stem as the adapter",
    )
    parser.add_argument("--dev-extra", type=int, default=0, help="also score this many unsampled train rows")
    args = parser.parse_args()
    if args.raw_sampling:
        SAMPLER.update(top_p=1.0, top_k=0, min_p=0.0)

    import torch

    from dca.train.export import export_lora
    from dca.train.sft import TARGETS, lora_model

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if args.data.endswith(".gz") else open
    with opener(args.data, "rt", encoding="utf-8") as handle:
        data = json.load(handle)
    vocab = Vocab(data["pieces"])
    eos = int(data["eos"])
    train_rows = [q for q in data["questions"] if q["split"] == "train"]
    random.Random(args.seed).shuffle(train_rows)
    if args.questions:
        train_rows = train_rows[: args.questions]
    dev = [q for q in data["questions"] if q["split"] == "dev"][: args.dev]
    if args.dev_extra:  # train rows no round samples (the end of the shuffled order)
        dev += train_rows[-args.dev_extra :]
        train_rows = train_rows[: -args.dev_extra]
    torch.manual_seed(args.seed)
    log("loading the base")
    model = lora_model(Path(args.model), "bfloat16", rank=args.rank, alpha=args.alpha, targets=TARGETS)
    model.to(args.device).eval()
    log(f"loaded on {args.device}")
    summary: dict[str, Any] = {"args": vars(args), "rounds": []}
    summary["dev_base"] = dev_accuracy(model, vocab, dev, args, eos)
    log(f"dev greedy accuracy, base: {summary['dev_base']}")
    if args.train_sets:
        train_sets(model, vocab, data, dev, args, eos, summary, out)
        return
    kept_all: list[dict[str, Any]] = []
    offset = 0
    with ThreadPoolExecutor(args.workers) as pool:
        for round_ in range(1, args.rounds + 1):
            folder = out / f"r{round_}"
            folder.mkdir(exist_ok=True)
            if round_ > 1:
                model.merge_adapter()  # sample from the last round's policy
            rows = sample_round(
                model, vocab, train_rows[offset:], args, eos=eos, seconds=args.sample_seconds, pool=pool
            )
            if round_ > 1:
                model.unmerge_adapter()
            offset += len(rows)
            kept = keep_shortest(rows, args.keep, args.max_easy)
            kept_all += kept
            drawn = sum(len(r["samples"]) for r in rows)
            stats = {
                "round": round_,
                "questions": len(rows),
                "samples": drawn,
                "sample_accuracy": round(sum(s["correct"] for r in rows for s in r["samples"]) / max(1, drawn), 4),
                "solved": sum(any(s["correct"] for s in r["samples"]) for r in rows),
                "hard_solved": sum(
                    any(s["correct"] for s in r["samples"])
                    and sum(s["correct"] for s in r["samples"]) < 0.75 * len(r["samples"])
                    for r in rows
                ),
                "kept": len(kept),
                "mean_kept_tokens": round(sum(len(k["ids"]) for k in kept) / max(1, len(kept)), 1),
            }
            log(json.dumps(stats))
            with (folder / "samples.jsonl").open("w", encoding="utf-8") as handle:
                for r in rows:
                    slim = [
                        {k: v for k, v in s.items() if k != "ids"} | {"tokens": len(s["ids"])} for s in r["samples"]
                    ]
                    handle.write(json.dumps({**r, "samples": slim}) + "\n")
            with (folder / "kept.jsonl").open("w", encoding="utf-8") as handle:
                for k in kept:
                    handle.write(json.dumps(k) + "\n")
            prompts = {q["id"]: q["prompt_ids"] for q in data["questions"]}
            examples = []
            for k in kept_all:
                prompt = prompts[k["id"]]
                response = [*k["ids"], eos]
                examples.append(Example(tokens=prompt + response, labels=[-100] * len(prompt) + response))
            stats["train"] = train(model, examples, args, args.seed + round_)
            stats["dev_after"] = dev_accuracy(model, vocab, dev, args, eos)
            log(f"round {round_}: dev greedy accuracy {stats['dev_after']} (base {summary['dev_base']})")
            from safetensors.torch import save_file

            save_file(
                {n: p.detach().float().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad},
                str(folder / "lora.safetensors"),
            )
            summary["rounds"].append(stats)
            (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    adapter = export_lora(
        model, out / f"{args.name}.gguf", arch="qwen2", n_blocks=int(model.config.num_hidden_layers),
        alpha=args.alpha, base_model=data["model"],
    )  # fmt: skip
    log(f"wrote {adapter}")
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
