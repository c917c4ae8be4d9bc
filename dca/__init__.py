"""dca: divide and conquer of ability for small local language models.

``import dca`` stays light: heavy libraries (llama_cpp, faiss, sentence_transformers,
torch) are imported inside the functions that need them.
"""

from dca.errors import DcaError

__version__ = "0.1.0"

__all__ = ["Answer", "Assistant", "Conversation", "DcaError", "__version__"]


def __getattr__(name: str) -> object:
    # The API module is imported on first use, so `import dca` stays light.
    if name in ("Answer", "Assistant", "Conversation"):
        from dca import api

        return getattr(api, name)
    raise AttributeError(f"module 'dca' has no attribute {name!r}")
