"""Search an index: dense (FAISS), BM25 (SQLite FTS5) or hybrid (the two fused: a convex combination
of their normalised scores by default, reciprocal rank fusion on request)."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

from dca.choices import RETRIEVAL_MODES
from dca.config import Paths
from dca.errors import ConfigError, require_utf8
from dca.knowledge.embedding import Embedder
from dca.knowledge.store import StoredChunk
from dca.knowledge.stores import Store

MODES = RETRIEVAL_MODES
_WORD = re.compile(r"\w+", re.UNICODE)
# English function words, left out of the keyword query: OR-ed in, "what is ... how does it"
# matched every chunk that has them and pushed the chunks holding the content words down
# (issue 31: the demo question ranked docs/overview.md nowhere in the top 50 by BM25).
_STOPWORDS = """a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she should
    so some such than that the their theirs them themselves then there these they this those through to
    too under until up very was we were what when where which while who whom why will with would you
    your yours yourself yourselves"""
STOPWORDS = frozenset(_STOPWORDS.split())


MAX_K = 1000  # more results than this is a mistake (and FAISS takes 64-bit k only up to its limits)


@dataclass(frozen=True, kw_only=True)
class SearchConfig:
    """How `dca index search` ranks chunks."""

    k: int = 5  # chunks to return
    mode: str = "hybrid"  # dense | bm25 | hybrid
    source: str = ""  # glob on the source path, e.g. "*.md" or "*/docs/*"; "" = all
    candidates: int = 50  # per-method candidates fused by hybrid search
    # hybrid fuses the two methods' scores, each min-max normalised over its candidates (a
    # convex combination, Bruch et al. 2023; reciprocal rank fusion, which sees ranks only, found
    # the gold source in the top 3 less often on every set measured: lab/NOTEBOOK.md, "Fusing
    # dense and keyword rankings"). dense_weight: the dense ranking's share of the fused score (the
    # keyword ranking has the rest); None: equal shares (what dca ships; lab/fusion_weight_table.py
    # measures others)
    dense_weight: float | None = None
    # adaptive k: after the best hit, stop at the first whose score is below this fraction of
    # the best one's (0: always k hits); k stays the most
    cutoff: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.k <= MAX_K:
            raise ConfigError(f"k must be between 1 and {MAX_K}, got {self.k}")
        if not 0 <= self.cutoff < 1:
            raise ConfigError(f"the adaptive-k cutoff must be in [0, 1), got {self.cutoff}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.dense_weight is not None and not 0 <= self.dense_weight <= 1:
            raise ConfigError(f"dense_weight must be between 0 and 1, got {self.dense_weight}")
        if self.candidates < self.k:
            object.__setattr__(self, "candidates", self.k)


@dataclass(frozen=True, kw_only=True)
class Hit:
    """One retrieved chunk with its rank and score (higher is better)."""

    rank: int
    score: float
    chunk: StoredChunk
    similarity: float | None = None  # cosine with the query when dense search saw the chunk (dense, hybrid)

    def to_json(self) -> dict[str, object]:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(self.score, 6),
            "similarity": None if self.similarity is None else round(self.similarity, 6),
            "id": c.id,
            "path": c.path,
            "heading": c.heading,
            "page": c.page,
            "char_start": c.char_start,
            "char_end": c.char_end,
            "text": c.text,
        }


def _source_ok(path: str, pattern: str) -> bool:
    return not pattern or fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, f"*/{pattern}")


def dense_ranking(index: Store, embedder: Embedder, query: str, n: int) -> list[tuple[int, float]]:
    vectors = index.vectors()
    total = vectors.ntotal  # once: a PostgreSQL store counts its rows to answer
    if total == 0:
        return []
    scores, ids = vectors.search(embedder.embed([query]), min(n, total))
    return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]


def bm25_ranking(index: Store, query: str, n: int) -> list[tuple[int, float]]:
    words = _WORD.findall(query.lower())
    terms = [w for w in words if w not in STOPWORDS] or words  # a query of stopwords alone keeps them
    if not terms:
        return []
    return index.keyword_ranking(terms, n)


def fuse_convex(
    rankings: list[list[tuple[int, float]]], weights: Sequence[float] | None = None
) -> list[tuple[int, float]]:
    """The mean over rankings of each chunk's min-max normalised score (0 where a ranking lacks
    it): in [0, 1], 1 for a chunk best in every ranking. Scores keep what ranks throw away: a
    clear winner of one method stays far ahead of that method's runners-up, and a near tie stays
    a tie, where reciprocal rank fusion would turn both into the same steps of 1 / (60 + rank). A
    ranking whose candidates all score the same gives each of them 1; an empty one adds nothing.
    ``weights`` (one per ranking) replace the equal shares of the mean (``SearchConfig.dense_weight``)."""
    scores: dict[int, float] = {}
    shares = weights if weights is not None else [1.0 / len(rankings)] * len(rankings) if rankings else []
    for ranking, share in zip(rankings, shares, strict=True):
        if not ranking:
            continue
        low = min(score for _, score in ranking)
        spread = max(score for _, score in ranking) - low
        for chunk_id, score in ranking:
            normalised = (score - low) / spread if spread > 0 else 1.0
            scores[chunk_id] = scores.get(chunk_id, 0.0) + share * normalised
    return sorted(scores.items(), key=lambda item: -item[1])


def search(index: Store, query: str, *, embedder: Embedder | None, config: SearchConfig) -> list[Hit]:
    """The top ``config.k`` chunks for ``query``."""
    if not require_utf8(query, "query").strip():
        raise ConfigError("the query is empty; give some words to search for")
    n = config.candidates * (5 if config.source else 1)
    similarity: dict[int, float] = {}
    if config.mode == "bm25":
        ranked = bm25_ranking(index, query, n)
    else:
        if embedder is None:
            raise ConfigError(f"{config.mode} search needs an embedder")
        dense = dense_ranking(index, embedder, query, n)
        similarity = dict(dense)
        if config.mode == "dense":
            ranked = dense
        else:
            rankings = [dense, bm25_ranking(index, query, n)]
            weights = None if config.dense_weight is None else (config.dense_weight, 1 - config.dense_weight)
            ranked = fuse_convex(rankings, weights)
    chunks = index.get_chunks([chunk_id for chunk_id, _ in ranked])
    hits: list[Hit] = []
    for chunk_id, score in ranked:
        chunk = chunks.get(chunk_id)  # a concurrent writer may have deleted it since
        if chunk is None or not _source_ok(chunk.path, config.source):
            continue
        hits.append(Hit(rank=len(hits) + 1, score=score, chunk=chunk, similarity=similarity.get(chunk_id)))
        if len(hits) == config.k:
            break
    return adaptive_k(hits, config.cutoff)


def adaptive_k(hits: list[Hit], cutoff: float) -> list[Hit]:
    """The leading hits down to the first whose score falls below ``cutoff`` x the best score.

    >>> from types import SimpleNamespace as S
    >>> [h.rank for h in adaptive_k([Hit(rank=r, score=s, chunk=S()) for r, s in ((1, 0.032), (2, 0.030), (3, 0.016))], 0.6)]
    [1, 2]
    """
    if cutoff <= 0 or not hits or hits[0].score <= 0:
        return hits
    floor = cutoff * hits[0].score
    kept = [hits[0]]
    for hit in hits[1:]:
        if hit.score < floor:
            break
        kept.append(hit)
    return kept


def search_index(
    index: Store, query: str, config: SearchConfig, *, paths: Paths, embedder: Embedder | None = None
) -> list[Hit]:
    """``search``, loading the index's own embedder unless the mode is bm25 or one is given."""
    if embedder is None and config.mode != "bm25":
        from dca.knowledge.embedding import load_embedder

        embedder = load_embedder(index.manifest.embedder, paths=paths)
    return search(index, query, embedder=embedder, config=config)


def location_label(path: str, heading: str = "", page: int | None = None) -> str:
    """Where a passage sits, as prompts and listings show it.

    >>> location_label("docs/a.pdf", "Intro > Scope", 3)
    'docs/a.pdf > Intro > Scope (page 3)'
    """
    return path + (f" > {heading}" if heading else "") + (f" (page {page})" if page else "")
