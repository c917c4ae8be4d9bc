# dca: two commands from a fresh clone.
#   make run    set everything up, pull the default models, index docs/, answer a question
#   make test   set up what the tests need and run them
# Every target installs what it needs if missing and is idempotent: stamps in .venv/
# record finished steps, and `dca pull` skips models already present and verified.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch from the local CPU build; a GPU user sets TORCH_SPEC (e.g. TORCH_SPEC=torch) and
# CMAKE_ARGS="-DGGML_CUDA=on" for llama-cpp-python before the first `make install`.
TORCH_SPEC ?= torch==2.13.0
LLAMA_SPEC ?= llama-cpp-python==0.3.36
DEFAULT_MODELS := qwen2.5-coder-1.5b all-minilm-l6-v2
# The prompt-injection test needs the default 1.5B generator: smollm2-135m obeys a plain-text
# "ignore all previous instructions" in a quoted source for some prompts (seen in CI).
TEST_MODELS := smollm2-135m qwen2.5-coder-1.5b all-minilm-l6-v2

export DCA_HOME := $(CURDIR)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help install run test test-slow lint bench pull clean

help:  ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch before anything that depends on it, or pip pulls a multi-GB CUDA build.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install "$(TORCH_SPEC)"
	touch $@

# llama-cpp-python compiles llama.cpp (about 9 minutes on 2 cores): once.
$(VENV)/.llama: | $(VENV)/.torch
	$(BIN)/pip install "$(LLAMA_SPEC)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.llama
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install dca with its dependencies

pull: install  ## pull and verify the default models (skips what is already verified)
	$(BIN)/dca pull $(DEFAULT_MODELS)

QUESTION ?= What is dca, and how does it get its models?

run: pull  ## the main job: set up, pull the models, index docs/, answer a question with sources
	$(BIN)/dca doctor
	$(BIN)/dca index sync docs/
	$(BIN)/dca ask "$(QUESTION)"

test: install  ## run the fast, offline test suite (and the examples in dca's docstrings)
	$(BIN)/python -m pytest -q -m "not slow" --doctest-modules tests dca

test-slow: install  ## run the tests that use real models (pulls smollm2-135m and the embedder)
	$(BIN)/dca pull $(TEST_MODELS)
	$(BIN)/python -m pytest -q -m slow

lint: install  ## ruff and mypy
	$(BIN)/ruff check dca tests benchmarks
	$(BIN)/ruff format --check dca tests benchmarks
	$(BIN)/mypy dca

bench: install  ## run every benchmark in benchmarks/ (one at a time: they need the CPU alone)
	@set -e; found=0; for script in benchmarks/bench_*.py; do \
		[ -e "$$script" ] || continue; found=1; echo "== $$script"; $(BIN)/python "$$script"; done; \
	[ $$found = 1 ] || echo "no benchmarks yet"

clean:  ## remove the virtual environment (models and indexes are kept)
	rm -rf $(VENV)
