"""Model runtime: the catalog, verified pulls, GGUF inspection (and, later, llama.cpp)."""

from dca.runtime.catalog import Catalog, ModelEntry, ModelSource
from dca.runtime.gguf import GGUFInfo, read_gguf_info
from dca.runtime.pull import PullConfig, PullResult, pull_model
from dca.runtime.registry import add_user_model
from dca.runtime.verify import ModelStatus, check_model

__all__ = [
    "Catalog",
    "GGUFInfo",
    "ModelEntry",
    "ModelSource",
    "ModelStatus",
    "PullConfig",
    "PullResult",
    "add_user_model",
    "check_model",
    "pull_model",
    "read_gguf_info",
]
