"""What a search is, and how its candidates become an order: pure, shared by search itself
(core.service.search), the retrieval debugger (core.explain) and evaluation.

Modes:
- vector   the seed's search: cosine similarity at or above a threshold, most similar first.
- text     BM25 over PostgreSQL's English lexemes, any query term matching (core.bm25).
- hybrid   cosine similarity and BM25 fused over their candidates, with the conversation around
           them: neighbours, sessions, dates (core.hybrid; its settings: core.ranking.Fusion).
- weighted relevance + importance + recency (generative agents), over the vector candidates.
Each mode can be diversified with maximal marginal relevance. The threshold gates the vector
side of every mode; expired and archived memories are never returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from uuid import UUID

import numpy as np

from core import validation
from core.bm25 import Bm25
from core.errors import InvalidInput
from core.models import Memory, ScoreBreakdown, SearchResult
from core.ranking import MODES, Fusion, Weights, maximal_marginal_relevance, recency, weighted_scores
from core.status import ARCHIVED, EXPIRED, LIVE
from core.supersede import KEEP, POLICIES
from core.turns import Turns

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

    - text_budget: the text side's index lookup reads at most this many postings: the rarest query
      terms drive it while their document frequencies fit (core.bm25). Every term fits in stores
      of a few hundred memories; in large ones, terms that common only add to the scores of
      memories found otherwise. Each posting costs a read of its row (~35 µs at 100k memories):
      5,000 took hybrid search to 250 ms there; 1,000 changed no result of docs/RETRIEVAL.md.
    """

    exact_max_rows: int = EXACT_MAX_ROWS
    ef_search: int = 64
    iterative_scan: str = "relaxed_order"
    bitmap_min_rows: int = 2_000
    text_budget: int = 1_000

    def __post_init__(self) -> None:
        if self.iterative_scan not in ("off", "relaxed_order", "strict_order"):
            raise InvalidInput(f"iterative_scan must be off, relaxed_order or strict_order, not {self.iterative_scan!r}")
        if isinstance(self.text_budget, bool) or not isinstance(self.text_budget, int) or self.text_budget < 0:
            raise InvalidInput(f"text_budget must be a whole number >= 0, not {self.text_budget!r}")


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
    mmr_lambda: float | None = None
    tuning: SearchTuning = field(default_factory=SearchTuning)
    superseded: str = KEEP  # what to do with memories a newer one updates or contradicts (core.supersede)
    fusion: Fusion = field(default_factory=Fusion)
    bm25: Bm25 = field(default_factory=Bm25)

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
            mmr_lambda=self.mmr_lambda,
            tuning=self.tuning,
            superseded=self.superseded,
            fusion=self.fusion,
            bm25=self.bm25,
        )

    @property
    def pool(self) -> int:
        """Candidates fetched per side: the limit itself for plain vector search; for hybrid, the
        fusion's depth (the limit when larger)."""
        if self.mode == "vector" and self.mmr_lambda is None and self.superseded == KEEP:
            return self.limit
        if self.mode == "hybrid":
            return max(self.fusion.depth, self.limit)
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
            mmr_lambda=data.get("mmr_lambda"),
            tuning=SearchTuning(**data["tuning"]) if data.get("tuning") else SearchTuning(),
            superseded=data.get("superseded", KEEP),
            fusion=Fusion(**data["fusion"]) if data.get("fusion") else Fusion(),
            bm25=Bm25(**data["bm25"]) if data.get("bm25") else Bm25(),
        )

    @property
    def needs_vectors(self) -> bool:
        """Whether ranking needs the candidates' vectors (MMR compares them)."""
        return self.mmr_lambda is not None


@dataclass(frozen=True)
class Hit:
    """A memory as a search side found it: its similarity to the query and, from the text side,
    its BM25 score (and the query terms it holds, each with its share); its vector when the
    ranking needs it."""

    memory: Memory
    similarity: float
    text_rank: float | None = None
    embedding: np.ndarray | None = None
    terms: dict[str, float] | None = None


@dataclass(frozen=True)
class Scan:
    """Every memory of a store scored for one query the way every search side scores it, as
    arrays, one entry per memory (the retrieval debugger reads tens of thousands: no object each).
    `keys` holds the ids' 16 bytes, `distance` the cosine distance (similarity = 1 - distance),
    `text_rank` its BM25 (0 where it holds no query term), `text_match` whether it holds a term
    that drives the text side's lookup (core.bm25), `allowed` whether the search's filters
    (status, type, source) let it through; `source` a number per source (memories of one
    conversation share it) and `created` created_at in microseconds: the conversation order."""

    keys: np.ndarray  # (n, 16) uint8
    distance: np.ndarray
    text_match: np.ndarray
    text_rank: np.ndarray
    expired: np.ndarray
    archived: np.ndarray
    allowed: np.ndarray
    source: np.ndarray  # int32
    created: np.ndarray  # int64

    def __len__(self) -> int:
        return len(self.keys)

    @cached_property
    def similarity(self) -> np.ndarray:
        return 1.0 - self.distance

    def id(self, i: int) -> UUID:
        return UUID(bytes=self.keys[i].tobytes())

    @cached_property
    def sort_key(self) -> tuple[np.ndarray, np.ndarray]:
        """The ids as two big-endian integers (low, high): sorted by them, ids sort as PostgreSQL
        and Python sort UUIDs."""
        halves = np.ascontiguousarray(self.keys).view(">u8").reshape(len(self), 2)
        return halves[:, 1], halves[:, 0]

    @cached_property
    def by_distance(self) -> np.ndarray:
        """The allowed memories nearest first, ties broken by id as the service's SQL breaks them."""
        low, high = self.sort_key
        order = np.lexsort((low, high, self.distance))
        return order[self.allowed[order]]

    @cached_property
    def by_text(self) -> np.ndarray:
        """The allowed text matches best first, ties broken by id as the service's SQL breaks them."""
        low, high = self.sort_key
        order = np.lexsort((low, high, -self.text_rank))
        return order[(self.allowed & self.text_match)[order]]

    @cached_property
    def turns(self) -> Turns[int]:
        """Each source's memories in conversation order (created_at, then id), by position, indexed
        once for core.hybrid.conversation (the debugger walks them twice per explanation)."""
        low, high = self.sort_key
        order = np.lexsort((low, high, self.created, self.source))
        cuts = np.flatnonzero(np.diff(self.source[order])) + 1
        return Turns.of_positions([run for run in np.split(order, cuts) if len(run)], self.created)

    @cached_property
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
    # hybrid (core.hybrid): how the score was made
    lift: float | None = None
    lifted_by: UUID | None = None
    session_bonus: float | None = None
    date_boost: float | None = None
    date: str | None = None
    origin: str | None = None

    @property
    def id(self) -> UUID:
        return self.hit.memory.id

    @property
    def similarity(self) -> float:
        return self.hit.similarity


def hours_since(moments: Sequence[datetime], now: datetime) -> np.ndarray:
    return np.array([(now - m).total_seconds() / 3600 for m in moments], dtype=float)


def rank_candidates(vector_hits: Sequence[Hit], text_hits: Sequence[Hit], params: SearchParams, now: datetime) -> list[Candidate]:
    """Order the candidates of vector, text or weighted search by the mode's score; the vector side
    passes the threshold first. MMR, when asked, re-orders the result (diversify)."""
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
        raise InvalidInput("hybrid search ranks its pool with core.hybrid.rank")
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
    return diversify(ranked, params)[: params.limit]


def diversify(ranked: list[Candidate], params: SearchParams) -> list[Candidate]:
    """Maximal marginal relevance over an order, when the search asks for it."""
    if params.mmr_lambda is None or not ranked:
        return ranked
    vectors = np.array([c.hit.embedding for c in ranked], dtype=np.float32)
    picks = maximal_marginal_relevance(np.array([c.score for c in ranked]), vectors, params.limit, params.mmr_lambda)
    for index, value in picks:
        ranked[index].mmr = value
    return [ranked[index] for index, _ in picks]


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
            terms=c.hit.terms if c.text_rank else None,
            lift=c.lift,
            lifted_by=str(c.lifted_by) if c.lifted_by else None,
            session_bonus=c.session_bonus,
            date_boost=c.date_boost,
            date=c.date,
            origin=c.origin,
        ),
    )
