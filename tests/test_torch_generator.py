"""Collecting on a GPU (one training path): the torch generator on the tiny model, on
the CPU here: greedy text equal to llama.cpp's, seeded samples, stop strings and token limits
as the runtime ends them, a LoRA adapter on and off, and `dca train collect --device` using it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


from dca.errors import ConfigError, GeneratorError  # noqa: E402
from dca.runtime.generation import GenerationConfig  # noqa: E402
from dca.runtime.llama import LlamaRuntime, RuntimeConfig  # noqa: E402
from dca.train.base import RunFolder  # noqa: E402
from dca.train.torch_generator import TorchGenerator  # noqa: E402


def test_greedy_text_matches_llama_and_samples_are_seeded(tiny: Path) -> None:
    torch_gen = TorchGenerator(tiny, name="tiny", device="cpu", dtype="float32")
    llama = LlamaRuntime(tiny, name="tiny", config=RuntimeConfig(n_ctx=512))
    prompt = llama.chat_prompt([{"role": "user", "content": "What is 2 + 2?"}])
    assert torch_gen.chat_prompt([{"role": "user", "content": "What is 2 + 2?"}]) == prompt
    greedy = GenerationConfig(max_tokens=12, temperature=0.0)
    mine = torch_gen.sample(prompt, 1, greedy)[0]
    theirs = "".join(llama.stream(prompt, greedy))
    assert mine.text == theirs and mine.completion_tokens >= 1 and mine.prompt_tokens == len(llama.tokenize(prompt))
    sampled = GenerationConfig(max_tokens=10, temperature=1.0, seed=7, top_k=0, top_p=1.0, min_p=0.0)
    first = [c.text for c in torch_gen.sample(prompt, 3, sampled)]
    again = [c.text for c in torch_gen.sample(prompt, 3, sampled)]
    assert first == again and len(set(first)) > 1  # seed + s per sample: reproducible, and different
    one = [c.text for c in torch_gen.sample(prompt, 1, sampled)]
    assert one == first[:1]  # sample s draws from seed + s, alone or in a batch
    limited = torch_gen.sample(prompt, 2, GenerationConfig(max_tokens=3, temperature=0.0))
    assert all(c.completion_tokens <= 3 for c in limited) and limited[0].text == limited[1].text
    text = mine.text
    if len(text) > 2:
        stop = text[1:3]
        cut = torch_gen.sample(prompt, 1, GenerationConfig(max_tokens=12, temperature=0.0, stop=(stop,)))[0]
        assert cut.text == text[: text.index(stop)] and cut.finish_reason == "stop"
    streamed = "".join(torch_gen.stream(prompt, greedy))
    assert streamed == mine.text
    yes, no = torch_gen.choice_probabilities(prompt, ["Yes", "No"], greedy)
    assert yes + no == pytest.approx(1.0)


def test_an_adapter_turns_on_and_off_and_collect_runs_on_torch(tmp_path: Path, tiny: Path, home: object) -> None:
    from test_train_dpo import _config

    from dca.train.dpo import train_dpo
    from dca.train.traces import CollectConfig, collect

    summary = train_dpo(_config(tmp_path, tiny), RunFolder.of("tiny-dpo", home, tmp_path / "run"))  # type: ignore[arg-type]
    adapter = Path(summary["adapter"])
    torch_gen = TorchGenerator(tiny, name="tiny", device="cpu", dtype="float32")
    prompt = torch_gen.chat_prompt([{"role": "user", "content": "2 + 2?"}])
    config = GenerationConfig(max_tokens=1)
    before = torch_gen.choice_probabilities(prompt, ["Yes", "No"], config)
    torch_gen.load_adapter("dpo", adapter)
    off = torch_gen.choice_probabilities(prompt, ["Yes", "No"], config)
    on = torch_gen.choice_probabilities(prompt, ["Yes", "No"], GenerationConfig(max_tokens=1, adapter="dpo"))
    assert off == pytest.approx(before, abs=1e-6) and on != pytest.approx(off, abs=1e-6)
    with pytest.raises(GeneratorError, match="not loaded"):
        torch_gen.sample(prompt, 1, GenerationConfig(max_tokens=2, adapter="other"))

    rows = [{"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}"} for i in (1, 2)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "traces.jsonl"
    counts = collect(CollectConfig(data=str(data), samples=2, model=str(tiny), device="cpu"), out=out, paths=home)
    assert counts["questions"] == 2 and counts["samples_drawn"] == 4
    assert all(len(json.loads(line)["samples"]) == 2 for line in out.read_text().splitlines())
    with pytest.raises(ConfigError, match="device must be one of llama, cuda, cpu"):
        CollectConfig(data=str(data), device="tpu")


def test_requests_of_several_threads_decode_together_as_each_would_alone(tiny: Path) -> None:
    """Cross-question batching (`collect --batch-questions`): prompts of different lengths,
    padded on the left and masked, give each request what it gets alone; the batcher gathers
    the threads' calls into one decode and hands each its own."""
    import threading

    torch_gen = TorchGenerator(tiny, name="tiny", device="cpu", dtype="float32")
    questions = ["What is 2 + 2?", "Name a colour, please, in one short word or two.", "Hi"]
    prompts = [torch_gen.chat_prompt([{"role": "user", "content": q}]) for q in questions]
    greedy = GenerationConfig(max_tokens=10, temperature=0.0)
    sampled = GenerationConfig(max_tokens=8, temperature=1.0, seed=3, top_k=0, top_p=1.0, min_p=0.0)
    alone = [[c.text for c in torch_gen.sample(p, 2, sampled)] for p in prompts]
    alone_greedy = [torch_gen.sample(p, 1, greedy)[0].text for p in prompts]
    together = torch_gen._generate_many([(p, 2, sampled) for p in prompts] + [(p, 1, greedy) for p in prompts])
    assert [[c.text for c in group] for group in together[:3]] == alone
    assert [group[0].text for group in together[3:]] == alone_greedy
    calls: list[int] = []
    real = torch_gen._generate_many

    def counted(requests):  # type: ignore[no-untyped-def]
        calls.append(len(requests))
        return real(requests)

    torch_gen._generate_many = counted  # type: ignore[method-assign]
    results: dict[int, str] = {}
    with torch_gen.batching(3, wait_s=5.0):

        def ask(i: int) -> None:
            results[i] = torch_gen.sample(prompts[i], 1, greedy)[0].text
            torch_gen.worker_done()

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert [results[i] for i in range(3)] == alone_greedy
    assert calls == [3]  # one decode for the three threads
    # an error reaches the thread that asked, in one line
    with torch_gen.batching(1), pytest.raises(GeneratorError, match="context holds"):
        torch_gen.sample("word " * 5000, 1, greedy)


def test_collect_batches_questions_on_torch_and_refuses_it_on_llama(tmp_path: Path, tiny: Path, home: object) -> None:
    from dca.train.traces import CollectConfig, collect

    rows = [{"question": f"What is {i} + {i}?", "answer": f"#### {2 * i}"} for i in range(1, 6)]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    one, many = tmp_path / "one.jsonl", tmp_path / "many.jsonl"
    base = CollectConfig(data=str(data), samples=2, model=str(tiny), device="cpu", temperature=0.0)
    collect(base, out=one, paths=home)
    counts = collect(CollectConfig(**{**base.__dict__, "batch_questions": 3}), out=many, paths=home)
    assert counts["questions"] == 5 and counts["samples_drawn"] == 10

    def by_id(path: Path) -> dict[str, list[str]]:
        found = [json.loads(line) for line in path.read_text().splitlines()]
        return {r["id"]: [s["output"] for s in r["samples"]] for r in found}

    assert by_id(many) == by_id(one)  # greedy: the same samples, in whatever order questions finished
    with pytest.raises(ConfigError, match="--batch-questions batches torch decoding"):
        CollectConfig(data=str(data), batch_questions=4)
