"""Prepare a GPU expert-iteration run (tools/gpu_rest.py) on this machine, where llama.cpp is.

The GPU machine has torch but not llama.cpp, so the prompts are rendered and tokenized here
with the runtime's own chat template and tokenizer (the tokens the adapter sees at inference),
and the vocabulary is written as bytes so the GPU side can read its samples back as text.

    .venv/bin/python tools/gpu_prepare.py --data ../shared/data/gsm8k/train.jsonl --out .gpu/data.json

Train rows only: rows 100-199 (the dev split) are marked "dev" and are never trained on; rows
200 onwards are the training questions (``--first-train``).
"""

from __future__ import annotations

import argparse
import base64
import json
from pathlib import Path

from dca.config import Paths
from dca.eval.datasets import load_gsm8k
from dca.files import atomic_write_json
from dca.reasoning.config import ReasoningConfig
from dca.reasoning.program import FENCE
from dca.runtime.llama import LlamaRuntime, RuntimeConfig, resolve_model
from dca.train.traces import _prompt_messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="GSM8K train JSONL")
    parser.add_argument("--out", required=True)
    parser.add_argument("--model", default=None, help="catalog name or GGUF path (default: the default generator)")
    parser.add_argument("--first-train", type=int, default=200, help="first train row used for training")
    args = parser.parse_args()
    if "test" in Path(args.data).name.lower():
        raise SystemExit(f"{args.data} looks like a test split; give the train file")
    name, path = resolve_model(args.model, Paths.resolve())
    runtime = LlamaRuntime(path, name=name, config=RuntimeConfig(vocab_only=True))
    llm = runtime.llm
    reasoning = ReasoningConfig(strategy="program")
    rows = []
    for row, example in enumerate(load_gsm8k(Path(args.data))):
        split = "dev" if 100 <= row < 200 else "train" if row >= args.first_train else ""
        if not split:
            continue
        prompt = runtime.chat_prompt(_prompt_messages(example, "program", reasoning)) + FENCE
        rows.append(
            {
                "id": example.id,
                "row": row,
                "split": split,
                "gold": example.answers[0],
                "prompt_ids": runtime.tokenize(prompt),
            }
        )
    pieces = [base64.b64encode(llm.detokenize([i])).decode("ascii") for i in range(llm.n_vocab())]
    atomic_write_json(
        Path(args.out),
        {
            "model": name,
            "eos": llm.token_eos(),
            "n_vocab": llm.n_vocab(),
            "fence": FENCE,
            "pieces": pieces,
            "questions": rows,
        },
    )
    print(json.dumps({"questions": len(rows), "eos": llm.token_eos(), "n_vocab": llm.n_vocab()}))


if __name__ == "__main__":
    main()
