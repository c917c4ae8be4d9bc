"""Prompt-lookup decoding (issue 31): does drafting tokens from the prompt speed up grounded
answers that quote their sources, on this machine?

llama-cpp-python's ``LlamaPromptLookupDecoding`` proposes the tokens that followed the last
n-gram where it occurred in the prompt; the model checks them in one batch. Two llama.cpp
instances of the same model with dca's runtime settings, one plain and one with the draft
model, answer the same grounded questions over an index (`dca ask`'s prompt, cited style,
greedy); each question's prompt is evaluated first (not timed), so the timing is the answer's
decode alone. The greedy outputs must be identical.

    .venv/bin/python benchmarks/bench_prompt_lookup.py [--index default] [--max-tokens 160]
"""

from __future__ import annotations

import argparse
import time

from _common import print_table, write_results

from dca.api import AskConfig, Assistant

QUESTIONS = (
    "How does dca pull a model without a model hub?",
    "What does dca doctor check?",
    "How do I index my documents?",
    "What happens when a pull is interrupted?",
    "Which endpoints does dca serve offer?",
    "How does dca keep a killed ingest from corrupting the index?",
    "What is the reasoning adapter and how was it trained?",
    "How are programs the model writes kept from harming the machine?",
)


def _llama(path: str, threads: int, draft: int) -> object:
    from llama_cpp import Llama
    from llama_cpp.llama_speculative import LlamaPromptLookupDecoding

    return Llama(
        model_path=path,
        n_ctx=4096,
        n_threads=threads,
        verbose=False,
        draft_model=LlamaPromptLookupDecoding(num_pred_tokens=draft) if draft else None,
        # a draft model needs the logits of every position; llama-cpp-python 0.3.36 forces that on
        # but sizes its score buffer by this argument, so a prompt past n_batch fails unless it is given
        logits_all=bool(draft),
    )


def _answer(llm: object, tokens: list[int], max_tokens: int) -> tuple[str, int, float]:
    llm.reset()  # type: ignore[attr-defined]
    llm.eval(tokens)  # type: ignore[attr-defined]  # the prompt, untimed
    started = time.perf_counter()
    out = llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0, repeat_penalty=1.0)  # type: ignore[attr-defined]
    seconds = time.perf_counter() - started
    return out["choices"][0]["text"], out["usage"]["completion_tokens"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", default="default")
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--draft", type=int, default=10, help="tokens drafted per lookup")
    args = parser.parse_args()
    assistant = Assistant(index=args.index, model=args.model, config=AskConfig(k=4, max_tokens=args.max_tokens))
    runtime = assistant.generator
    prompts = [
        runtime.tokenize(runtime.chat_prompt(assistant.build_prompt(q, assistant.retrieve(q)).messages))
        for q in QUESTIONS
    ]
    threads = runtime.llm.context_params.n_threads
    path = str(runtime.path)
    del assistant, runtime
    rows = []
    for name, draft in (("plain", 0), (f"prompt lookup ({args.draft})", args.draft)):
        llm = _llama(path, threads, draft)
        for question, prompt in zip(QUESTIONS, prompts, strict=True):
            text, n, seconds = _answer(llm, prompt, args.max_tokens)
            rows.append({"how": name, "question": question, "tokens": n, "seconds": seconds, "text": text})
        del llm
    table = []
    plain = [r for r in rows if r["how"] == "plain"]
    for name in dict.fromkeys(r["how"] for r in rows):
        mine = [r for r in rows if r["how"] == name]
        same = sum(a["text"] == b["text"] for a, b in zip(plain, mine, strict=True))
        tokens, seconds = sum(r["tokens"] for r in mine), sum(r["seconds"] for r in mine)
        table.append(
            {
                "how": name,
                "answers": len(mine),
                "identical_to_plain": same,
                "tokens": tokens,
                "decode_s": round(seconds, 2),
                "tokens_per_s": round(tokens / seconds, 2),
            }
        )
    print_table(table, ["how", "answers", "identical_to_plain", "tokens", "decode_s", "tokens_per_s"])
    write_results("prompt_lookup", {"max_tokens": args.max_tokens, "draft": args.draft, "table": table, "rows": rows})


if __name__ == "__main__":
    main()
