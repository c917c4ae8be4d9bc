"""dca: divide and conquer of ability for small local language models.

``import dca`` stays light: heavy libraries (llama_cpp, faiss, sentence_transformers,
torch) are imported inside the functions that need them.
"""

from dca.errors import DcaError

__version__ = "0.1.0"

__all__ = ["DcaError", "__version__"]
