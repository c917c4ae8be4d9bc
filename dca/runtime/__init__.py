"""The language-model runtime: the generation interface, llama.cpp, LoRA adapters and parallel
sampling (the catalog of model files is dca.models, a floor below)."""

from dca.runtime.generation import Completion, GenerationConfig, Generator

__all__ = ["Completion", "GenerationConfig", "Generator"]
