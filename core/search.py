"""What a search is, and how its candidates become an order: pure, shared by search itself
(core.service.search), the retrieval debugger (core.explain) and evaluation.

Modes:
- vector   the seed's search: cosine similarity at or above a threshold, most similar first.
- text     PostgreSQL full-text search (websearch_to_tsquery, ranked by ts_rank_cd).
- hybrid   reciprocal rank fusion of the vector and text rankings.
- weighted relevance + importance + recency (generative agents), over the vector candidates.
Each mode can be diversified with maximal marginal relevance. The threshold gates the vector
side of every mode; expired and archived memories are never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np

from core import validation
from core.errors import InvalidInput
from core.models import Memory, ScoreBreakdown, SearchResult
from core.ranking import MODES, RRF_K, Weights, maximal_marginal_relevance, recency, reciprocal_rank_fusion, weighted_scores
from core.status import ARCHIVED, EXPIRED, LIVE
from core.supersede import KEEP, POLICIES

# How many candidates each side contributes when a mode re-ranks (hybrid, weighted, MMR).
CANDIDATE_POOL = 50
# Stores of up to this many memories are searched exactly; only the rows of bigger ones are in the
# HNSW graphs (migration 010: a row's `indexed` flag, set by MemoryService.index_pending).
EXACT_MAX_ROWS = 7_500


@dataclass(frozen=True)
class SearchTuning:
    """How the database looks for the nearest memories: speed against exactness, never what a
    mode means. The defaults are measured (docs/BENCHMARKS.md); `memex bench` varies them.

    - exact_max_rows: stores up to this size are searched exactly (among 1M memories exact search
      wins up to 5k memories, HNSW from 10k on: p50 ~13 vs ~5 ms at 10k).
    - ef_search: hnsw.ef_search floor: recall@10 of a 100k store among 1M memories 0.955 at 40,
      0.99 at 64 (index built with ef_construction 128, migration 005), for ~1 ms more.
    - iterative_scan: pgvector's iterative index scan, so the store and expiry filters never leave
      fewer than k rows ("off" to measure without).
    - bitmap_min_rows: exact search of a store above this size reads its rows with a bitmap heap
      scan (each page once) instead of an index scan (a buffer pin per row): 1.5-1.9x faster at
      5k-20k memories, which the planner does not see when a store's rows lie together.
    """

    exact_max_rows: int = EXACT_MAX_ROWS
    ef_search: int = 64
    iterative_scan: str = "relaxed_order"
    bitmap_min_rows: int = 2_000

    def __post_init__(self) -> None:
        if self.iterative_scan not in ("off", "relaxed_order", "strict_order"):
            raise InvalidInput(f"iterative_scan must be off, relaxed_order or strict_order, not {self.iterative_scan!r}")


@dataclass(frozen=True)
class Filters:
    """What a search may return besides the threshold: types, sources, expired, archived."""

    memory_types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    include_expired: bool = False
    include_archived: bool = False

    @property
    def statuses(self) -> tuple[str, ...]:
        """The memory statuses (core.status) a search may return."""
        return (LIVE,) + ((EXPIRED,) if self.include_expired else ()) + ((ARCHIVED,) if self.include_archived else ())


@dataclass(frozen=True)
class SearchParams:
    """Everything that decides a search's answer, checked once."""

    limit: int = 5
    min_similarity: float = 0.7
    mode: str = "vector"
    filters: Filters = field(default_factory=Filters)
    weights: Weights = field(default_factory=Weights)
    rrf_k: int = RRF_K
    mmr_lambda: float | None = None
    tuning: SearchTuning = field(default_factory=SearchTuning)
    superseded: str = KEEP  # what to do with memories a newer one updates or contradicts (core.supersede)

    def checked(self) -> SearchParams:
        if self.mode not in MODES:
            raise InvalidInput(f"unknown search mode {str(self.mode)[:40]!r}; choose one of {', '.join(MODES)}")
        if self.mmr_lambda is not None and not 0 <= validation.similarity(self.mmr_lambda, "mmr_lambda") <= 1:
            raise InvalidInput(f"mmr_lambda must be between 0 and 1, not {self.mmr_lambda}")
        if self.superseded not in POLICIES:
            raise InvalidInput(f"superseded must be one of {', '.join(POLICIES)}, not {str(self.superseded)[:40]!r}")
        return SearchParams(
            limit=validation.limit(self.limit),
            min_similarity=validation.similarity(self.min_similarity),
            mode=self.mode,
            filters=self.filters,
            weights=self.weights,
            rrf_k=validation.limit(self.rrf_k, "rrf_k", 10_000),
            mmr_lambda=self.mmr_lambda,
            tuning=self.tuning,
            superseded=self.superseded,
        )

    @property
    def pool(self) -> int:
        """Candidates fetched per side: the limit itself for plain vector search."""
        if self.mode == "vector" and self.mmr_lambda is None and self.superseded == KEEP:
            return self.limit
        return max(CANDIDATE_POOL, 4 * self.limit)

    def to_dict(self) -> dict[str, Any]:
        """Every setting, as JSON (the retrieval log keeps it; from_dict reads it back)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchParams:
        filters = data.get("filters") or {}
        return cls(
            limit=data["limit"],
            min_similarity=data["min_similarity"],
            mode=data["mode"],
            filters=Filters(
                tuple(filters.get("memory_types", ())),
                tuple(filters.get("sources", ())),
                bool(filters.get("include_expired", False)),
                bool(filters.get("include_archived", False)),
            ),
            weights=Weights(**data["weights"]) if data.get("weights") else Weights(),
            rrf_k=data.get("rrf_k", RRF_K),
            mmr_lambda=data.get("mmr_lambda"),
            tuning=SearchTuning(**data["tuning"]) if data.get("tuning") else SearchTuning(),
        )

    @property
    def needs_vectors(self) -> bool:
        """Whether ranking needs the candidates' vectors (MMR compares them)."""
        return self.mmr_lambda is not None


@dataclass(frozen=True)
class Hit:
    """A memory as a search side found it: its similarity to the query and, from the text side,
    its text rank; its vector when the ranking needs it."""

    memory: Memory
    similarity: float
    text_rank: float | None = None
    embedding: np.ndarray | None = None


@dataclass(frozen=True)
class Scan:
    """Every memory of a store scored for one query the way every search side scores it, as
    arrays, one entry per memory (the retrieval debugger reads tens of thousands: no object each).
    `keys` holds the ids' 16 bytes, `distance` the cosine distance (similarity = 1 - distance),
    `text_rank` 0 where the memory does not match the query's words, `allowed` whether the
    search's filters (status, type, source) let it through."""

    keys: np.ndarray  # (n, 16) uint8
    distance: np.ndarray
    text_match: np.ndarray
    text_rank: np.ndarray
    expired: np.ndarray
    archived: np.ndarray
    allowed: np.ndarray

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def similarity(self) -> np.ndarray:
        return 1.0 - self.distance

    def id(self, i: int) -> UUID:
        return UUID(bytes=self.keys[i].tobytes())

    def sort_key(self) -> tuple[np.ndarray, np.ndarray]:
        """The ids as two big-endian integers (low, high): sorted by them, ids sort as PostgreSQL
        and Python sort UUIDs."""
        halves = np.ascontiguousarray(self.keys).view(">u8").reshape(len(self), 2)
        return halves[:, 1], halves[:, 0]

    def positions(self) -> dict[bytes, int]:
        """Each id's 16 bytes to its position."""
        blob = np.ascontiguousarray(self.keys).tobytes()
        return {blob[16 * i : 16 * i + 16]: i for i in range(len(self))}


@dataclass
class Candidate:
    hit: Hit
    vector_rank: int | None = None
    text_rank: float | None = None
    text_position: int | None = None
    fused: float | None = None
    recency: float | None = None
    score: float = 0.0
    mmr: float | None = None

    @property
    def id(self) -> UUID:
        return self.hit.memory.id

    @property
    def similarity(self) -> float:
        return self.hit.similarity


def hours_since(moments: Sequence[datetime], now: datetime) -> np.ndarray:
    return np.array([(now - m).total_seconds() / 3600 for m in moments], dtype=float)


def rank_candidates(vector_hits: Sequence[Hit], text_hits: Sequence[Hit], params: SearchParams, now: datetime) -> list[Candidate]:
    """Order candidates by the mode's score; the vector side passes the threshold first."""
    vector_hits = [h for h in vector_hits if h.similarity >= params.min_similarity]
    pool: dict[UUID, Candidate] = {}
    for position, hit in enumerate(vector_hits, start=1):
        pool[hit.memory.id] = Candidate(hit, vector_rank=position)
    for position, hit in enumerate(text_hits, start=1):
        candidate = pool.setdefault(hit.memory.id, Candidate(hit))
        candidate.text_rank, candidate.text_position = hit.text_rank, position
    if params.mode == "vector":
        ranked = [pool[h.memory.id] for h in vector_hits]
        for c in ranked:
            c.score = c.similarity
    elif params.mode == "text":
        ranked = [pool[h.memory.id] for h in text_hits]
        for c in ranked:
            c.score = c.text_rank or 0.0
    elif params.mode == "hybrid":
        fused = reciprocal_rank_fusion([[h.memory.id for h in vector_hits], [h.memory.id for h in text_hits]], params.rrf_k)
        ranked = sorted((pool[i] for i in fused), key=lambda c: (-fused[c.id], -c.similarity))  # type: ignore[index]
        for c in ranked:
            c.fused = c.score = fused[c.id]
    else:  # weighted
        ranked = [pool[h.memory.id] for h in vector_hits]
        if ranked:
            ages = hours_since([c.hit.memory.last_accessed or c.hit.memory.created_at for c in ranked], now)
            fresh = recency(ages, params.weights.half_life_hours)
            scores = weighted_scores(
                np.array([c.similarity for c in ranked]), np.array([c.hit.memory.importance for c in ranked]), fresh, params.weights
            )
            for c, f, s in zip(ranked, fresh, scores):
                c.recency, c.score = float(f), float(s)
            ranked.sort(key=lambda c: (-c.score, -c.similarity))
    if params.mmr_lambda is not None and ranked:
        vectors = np.array([c.hit.embedding for c in ranked], dtype=np.float32)
        picks = maximal_marginal_relevance(np.array([c.score for c in ranked]), vectors, params.limit, params.mmr_lambda)
        for index, value in picks:
            ranked[index].mmr = value
        ranked = [ranked[index] for index, _ in picks]
    return ranked[: params.limit]


def to_result(c: Candidate, params: SearchParams) -> SearchResult:
    weighted = params.mode == "weighted"
    memory = c.hit.memory
    return SearchResult(
        memory=memory,
        similarity=c.similarity,
        score=c.score,
        breakdown=ScoreBreakdown(
            similarity=c.similarity,
            vector_rank=c.vector_rank,
            text_rank=c.text_rank,
            text_position=c.text_position,
            fused=c.fused,
            importance=memory.importance if weighted else None,
            recency=c.recency,
            relevance=max(0.0, min(1.0, c.similarity)) if weighted else None,
            mmr=c.mmr,
            final=c.score,
        ),
    )
