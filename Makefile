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
# CMAKE_ARGS="-DGGML_CUDA=on" for llama-cpp-python (added to the portable flags below).
TORCH_SPEC ?= torch==2.13.0
LLAMA_SPEC ?= llama-cpp-python==0.3.36

# llama.cpp is built portable (issue 28): no -march=native, so a .venv built here runs on any
# x86-64 CPU, and every x86 variant of ggml's CPU backend is compiled as a module; at run time
# ggml loads the best one this CPU can run (AVX2, AVX-512, VNNI, BF16). The AMX variant
# (sapphirerapids) is deleted after the build: ggml's AMX matmul crashes on Q4_K weights on
# Intel Xeons with AMX (llama.cpp issue 20824), and a native build keeps AMX on whatever the
# GGML_AMX_* switches say. The modules live in the venv; their folder is compiled in.
LLAMA_BACKENDS := $(abspath $(VENV))/lib/ggml-backends
ifeq ($(shell uname -m),x86_64)
LLAMA_PORTABLE_ARGS := -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON -DGGML_BACKEND_DIR=$(LLAMA_BACKENDS)
else
LLAMA_PORTABLE_ARGS :=
endif
LLAMA_AMX_VARIANTS := libggml-cpu-sapphirerapids.so
# The stamp .venv/.llama records what the build was made from; when that changes (another
# spec, other flags, a .venv built before these flags) the next `make install` rebuilds it.
# A user's CMAKE_ARGS are remembered there: a later `make run` without them keeps a GPU build.
LLAMA_STAMP := $(VENV)/.llama
LLAMA_USER_ARGS := $(strip $(if $(CMAKE_ARGS),$(CMAKE_ARGS),$(shell sed -n 's/^.* | user: //p' $(LLAMA_STAMP) 2>/dev/null)))
LLAMA_BUILD_ID := $(LLAMA_SPEC) | portable: $(LLAMA_PORTABLE_ARGS) | user: $(LLAMA_USER_ARGS)
ifneq ($(strip $(shell cat $(LLAMA_STAMP) 2>/dev/null)),$(strip $(LLAMA_BUILD_ID)))
.PHONY: $(LLAMA_STAMP)
endif
DEFAULT_MODELS := qwen2.5-coder-1.5b all-minilm-l6-v2
# The prompt-injection test needs the default 1.5B generator: smollm2-135m obeys a plain-text
# "ignore all previous instructions" in a quoted source for some prompts (seen in CI).
TEST_MODELS := smollm2-135m qwen2.5-coder-1.5b all-minilm-l6-v2

export DCA_HOME := $(CURDIR)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: help install rebuild-llama llama-build-id run test test-slow lint bench pull clean

help:  ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# torch before anything that depends on it, or pip pulls a multi-GB CUDA build.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install "$(TORCH_SPEC)"
	touch $@

# llama-cpp-python compiles llama.cpp (about 11 minutes on 2 cores with every CPU variant):
# once per build id. --no-cache-dir: pip's wheel cache ignores CMAKE_ARGS, and the CPU modules
# are written to LLAMA_BACKENDS by the build itself, not carried in the wheel.
$(LLAMA_STAMP): | $(VENV)/.torch
	rm -f $@
	rm -rf $(LLAMA_BACKENDS)
	CMAKE_ARGS="$(strip $(LLAMA_PORTABLE_ARGS) $(LLAMA_USER_ARGS))" \
		$(BIN)/pip install --force-reinstall --no-deps --no-cache-dir "$(LLAMA_SPEC)"
	$(BIN)/pip install "$(LLAMA_SPEC)"
	rm -f $(addprefix $(LLAMA_BACKENDS)/,$(LLAMA_AMX_VARIANTS))
	echo '$(LLAMA_BUILD_ID)' > $@

$(VENV)/.installed: pyproject.toml $(LLAMA_STAMP)
	$(BIN)/pip install -e '.[dev]'
	touch $@

install: $(VENV)/.installed  ## create .venv and install dca with its dependencies

rebuild-llama: | $(VENV)/.torch  ## rebuild llama-cpp-python (portable; GPU: CMAKE_ARGS="-DGGML_CUDA=on")
	rm -f $(LLAMA_STAMP)
	$(MAKE) install CMAKE_ARGS='$(LLAMA_USER_ARGS)'

llama-build-id:  ## print what the llama.cpp build is made from (the stamp's contents)
	@echo '$(LLAMA_BUILD_ID)'

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
	$(BIN)/ruff check dca tests benchmarks lab
	$(BIN)/ruff format --check dca tests benchmarks lab
	$(BIN)/mypy dca

bench: install  ## run every benchmark in benchmarks/ (one at a time: they need the CPU alone)
	@set -e; found=0; for script in benchmarks/bench_*.py; do \
		[ -e "$$script" ] || continue; found=1; echo "== $$script"; $(BIN)/python "$$script"; done; \
	[ $$found = 1 ] || echo "no benchmarks yet"

clean:  ## remove the virtual environment (models and indexes are kept)
	rm -rf $(VENV)
