"""World knowledge: load documents, chunk, embed, store (FAISS + SQLite), retrieve with citations."""

from dca.knowledge.chunking import Chunk, ChunkConfig, split_sections
from dca.knowledge.ingest import IngestConfig, IngestReport, add_paths, remove_paths, sync_folder
from dca.knowledge.loaders import LoadConfig, discover_files, load_sections
from dca.knowledge.retrieval import Hit, SearchConfig, search
from dca.knowledge.sections import Section
from dca.knowledge.store import KnowledgeIndex, list_indexes

__all__ = [
    "Chunk",
    "ChunkConfig",
    "Hit",
    "IngestConfig",
    "IngestReport",
    "KnowledgeIndex",
    "LoadConfig",
    "SearchConfig",
    "Section",
    "add_paths",
    "discover_files",
    "list_indexes",
    "load_sections",
    "remove_paths",
    "search",
    "split_sections",
    "sync_folder",
]
