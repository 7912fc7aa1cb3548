"""Search over a store, in four modes, each result with the breakdown of its score.

- vector   the seed's search: cosine similarity at or above a threshold, most similar first.
- text     PostgreSQL full-text search (websearch_to_tsquery, ranked by ts_rank_cd).
- hybrid   reciprocal rank fusion of the vector and text rankings.
- weighted relevance + importance + recency (generative agents), over the vector candidates.
Each mode can be diversified with maximal marginal relevance. The threshold gates the vector
side of every mode; expired and archived memories are never returned.

Vectors are compared with `embedding::vector(N)`, the expression of the store's partial HNSW
index. Small stores are searched exactly (a materialised scan of the store's rows is cheaper than
walking an index shared with every other store); larger ones through the index with pgvector's
iterative scan, so the store and expiry filters never leave fewer than k rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, Row, text

from core import validation
from core.embeddings import get_embedder
from core.errors import InvalidInput
from core.memories import LIVE, MEMORY_COLUMNS, memory_from_row
from core.models import MemoryStore, ScoreBreakdown, SearchResult
from core.ranking import MODES, RRF_K, Weights, maximal_marginal_relevance, recency, reciprocal_rank_fusion, weighted_scores
from core.scope import TenantBound
from core.stores import fetch_store

# Stores up to this size are searched exactly (docs/BENCHMARKS.md, "crossover"): among 1M
# memories exact search wins up to 5k memories, HNSW from 10k on (p50 ~13 vs ~5 ms at 10k).
EXACT_SEARCH_MAX_ROWS = 7_500
# How many candidates each side contributes when a mode re-ranks (hybrid, weighted, MMR).
CANDIDATE_POOL = 50
# hnsw.ef_search floor: recall@10 of a 100k store among 1M memories 0.955 at 40, 0.99 at 64
# (index built with ef_construction 128, migration 005), for ~1 ms more. Measured in docs/BENCHMARKS.md.
HNSW_EF_SEARCH = 64
# Transaction-local settings of the HNSW path. force_custom_plan: psycopg prepares a statement on
# its 5th run and PostgreSQL may then switch to a generic plan, which cannot know whether the store
# is big; at 1M memories it chose the store's btree for a 100k store: ~300 ms instead of ~3 ms.
_ITERATIVE_SCAN = text(
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
    f" set_config('hnsw.ef_search', CAST(greatest(CAST(:ef AS int), {HNSW_EF_SEARCH}) AS text), true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)
# Exact search of a store above this size reads its rows with a bitmap heap scan (each page once)
# instead of an index scan (a buffer pin per row): 1.5-1.9x faster at 5k-20k memories, which the
# planner does not see when a store's rows lie together. Transaction-local, restored after.
_BITMAP_MIN_ROWS = 2_000
_BITMAP_ONLY = text("SELECT current_setting('enable_indexscan'), set_config('enable_indexscan', 'off', true)")
_RESTORE_INDEXSCAN = text("SELECT set_config('enable_indexscan', :was, true)")
# websearch_to_tsquery parses what people type (quotes, "or", -exclusions); every remaining term
# must match. OR-ing the terms instead was measured worse for hybrid search (docs/RETRIEVAL.md):
# common words then pull in noise that displaces good vector candidates.
TSQUERY = "websearch_to_tsquery('english', :query)"


@dataclass(frozen=True)
class Filters:
    """What a search may return besides the threshold: types, sources, expired, archived."""

    memory_types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    include_expired: bool = False
    include_archived: bool = False

    def sql(self) -> tuple[str, dict[str, object]]:
        where, params = [], {}
        if not self.include_expired:
            where.append(LIVE)
        if not self.include_archived:
            where.append("NOT archived")
        if self.memory_types:
            where.append("memory_type = ANY(:types)")
            params["types"] = list(self.memory_types)
        if self.sources:
            where.append("coalesce(source, '') = ANY(:sources)")
            params["sources"] = list(self.sources)
        return "".join(f" AND {w}" for w in where), params


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

    def checked(self) -> SearchParams:
        if self.mode not in MODES:
            raise InvalidInput(f"unknown search mode {str(self.mode)[:40]!r}; choose one of {', '.join(MODES)}")
        if self.mmr_lambda is not None and not 0 <= validation.similarity(self.mmr_lambda, "mmr_lambda") <= 1:
            raise InvalidInput(f"mmr_lambda must be between 0 and 1, not {self.mmr_lambda}")
        return SearchParams(
            limit=validation.limit(self.limit),
            min_similarity=validation.similarity(self.min_similarity),
            mode=self.mode,
            filters=self.filters,
            weights=self.weights,
            rrf_k=validation.limit(self.rrf_k, "rrf_k", 10_000),
            mmr_lambda=self.mmr_lambda,
        )

    @property
    def pool(self) -> int:
        """Candidates fetched per side: the limit itself for plain vector search."""
        if self.mode == "vector" and self.mmr_lambda is None:
            return self.limit
        return max(CANDIDATE_POOL, 4 * self.limit)


def distance_sql(store: MemoryStore) -> str:
    """Cosine distance to the query vector :q, in the expression of the store's partial HNSW index."""
    return f"(embedding::vector({int(store.embedding_dim)}) <=> :q)"


def vector_candidates(conn: Connection, store: MemoryStore, vector: np.ndarray, k: int, filters: Filters) -> list[Row]:
    """The k nearest memories of the store that pass the filters, nearest first, each with its
    `similarity` and `embedding`. No threshold here: it is applied after the nearest-k scan."""
    dim = int(store.embedding_dim)
    distance = distance_sql(store)
    condition, params = filters.sql()
    params.update(q=vector, s=store.id, k=k)
    if store.total_memories <= EXACT_SEARCH_MAX_ROWS:
        # Only (id, distance) is materialised, each distance computed once; the k winners are then
        # read by primary key. The fence keeps the planner off the HNSW index, shared with every
        # other store, where a small store's rows are too rare to be found (docs/BENCHMARKS.md).
        sql = (
            f"WITH store_rows AS MATERIALIZED (SELECT id, {distance} AS distance FROM memories"
            f" WHERE store_id = :s AND embedding_dim = {dim}{condition}),"
            f" nearest AS (SELECT id, distance FROM store_rows ORDER BY distance, id LIMIT :k)"
            f" SELECT {MEMORY_COLUMNS}, embedding, 1 - distance AS similarity FROM nearest JOIN memories USING (id)"
            f" ORDER BY distance, id"
        )
        if store.total_memories > _BITMAP_MIN_ROWS:
            was = conn.execute(_BITMAP_ONLY).scalar()
            rows = conn.execute(text(sql), params).all()
            conn.execute(_RESTORE_INDEXSCAN, {"was": was})
            return rows
    else:
        conn.execute(_ITERATIVE_SCAN, {"ef": str(max(40, 2 * k))})
        sql = (
            f"WITH nearest AS MATERIALIZED (SELECT {MEMORY_COLUMNS}, embedding, {distance} AS distance FROM memories"
            f" WHERE store_id = :s AND embedding_dim = {dim}{condition} ORDER BY {distance} LIMIT :k)"
            f" SELECT *, 1 - distance AS similarity FROM nearest ORDER BY distance, id"
        )
    return conn.execute(text(sql), params).all()


def text_candidates(conn: Connection, store: MemoryStore, query: str, vector: np.ndarray, k: int, filters: Filters) -> list[Row]:
    """The k best full-text matches of the store, best first, each with `text_rank`, and its
    `similarity` to the query vector (so every result can show both)."""
    condition, params = filters.sql()
    params.update(q=vector, s=store.id, k=k, query=query)
    sql = (
        f"SELECT {MEMORY_COLUMNS}, embedding, 1 - {distance_sql(store)} AS similarity,"
        f" ts_rank_cd(content_tsv, tsq) AS text_rank"
        f" FROM memories, {TSQUERY} AS tsq"
        f" WHERE store_id = :s AND content_tsv @@ tsq{condition} ORDER BY text_rank DESC, id LIMIT :k"
    )
    return conn.execute(text(sql), params).all()


def count_access(conn: Connection, ids: Sequence[UUID]) -> None:
    """The seed's access bookkeeping: count and timestamp every memory a search returned."""
    if ids:
        conn.execute(
            # rows locked in id order, as every multi-row write does (core.memories.IN_ID_ORDER)
            text("UPDATE memories SET access_count = access_count + 1, last_accessed = now()"
                 " WHERE id IN (SELECT id FROM memories WHERE id = ANY(:ids) ORDER BY id FOR UPDATE)"),
            {"ids": sorted(ids)},
        )


@dataclass
class _Candidate:
    row: Row
    similarity: float
    vector_rank: int | None = None
    text_rank: float | None = None
    text_position: int | None = None
    fused: float | None = None
    recency: float | None = None
    score: float = 0.0
    mmr: float | None = None


def hours_since(moments: Sequence[datetime], now: datetime) -> np.ndarray:
    return np.array([(now - m).total_seconds() / 3600 for m in moments], dtype=float)


def rank_candidates(
    vector_rows: Sequence[Row], text_rows: Sequence[Row], params: SearchParams, now: datetime
) -> list[_Candidate]:
    """Order candidates by the mode's score; the vector side passes the threshold first."""
    vector_rows = [r for r in vector_rows if r.similarity >= params.min_similarity]
    pool: dict[UUID, _Candidate] = {}
    for position, row in enumerate(vector_rows, start=1):
        pool[row.id] = _Candidate(row, float(row.similarity), vector_rank=position)
    for position, row in enumerate(text_rows, start=1):
        candidate = pool.setdefault(row.id, _Candidate(row, float(row.similarity)))
        candidate.text_rank, candidate.text_position = float(row.text_rank), position
    if params.mode == "vector":
        ranked = [pool[r.id] for r in vector_rows]
        for c in ranked:
            c.score = c.similarity
    elif params.mode == "text":
        ranked = [pool[r.id] for r in text_rows]
        for c in ranked:
            c.score = c.text_rank or 0.0
    elif params.mode == "hybrid":
        fused = reciprocal_rank_fusion([[r.id for r in vector_rows], [r.id for r in text_rows]], params.rrf_k)
        ranked = sorted((pool[i] for i in fused), key=lambda c: (-fused[c.row.id], -c.similarity))
        for c in ranked:
            c.fused = c.score = fused[c.row.id]
    else:  # weighted
        ranked = [pool[r.id] for r in vector_rows]
        if ranked:
            ages = hours_since([c.row.last_accessed or c.row.created_at for c in ranked], now)
            fresh = recency(ages, params.weights.half_life_hours)
            scores = weighted_scores(
                np.array([c.similarity for c in ranked]), np.array([float(c.row.importance) for c in ranked]), fresh, params.weights
            )
            for c, f, s in zip(ranked, fresh, scores):
                c.recency, c.score = float(f), float(s)
            ranked.sort(key=lambda c: (-c.score, -c.similarity))
    if params.mmr_lambda is not None and ranked:
        vectors = np.array([c.row.embedding.to_numpy() for c in ranked], dtype=np.float32)
        picks = maximal_marginal_relevance(np.array([c.score for c in ranked]), vectors, params.limit, params.mmr_lambda)
        for index, value in picks:
            ranked[index].mmr = value
        ranked = [ranked[index] for index, _ in picks]
    return ranked[: params.limit]


def to_result(c: _Candidate, params: SearchParams) -> SearchResult:
    row = c.row
    weighted = params.mode == "weighted"
    return SearchResult(
        memory=memory_from_row(row),
        similarity=c.similarity,
        score=c.score,
        breakdown=ScoreBreakdown(
            similarity=c.similarity,
            vector_rank=c.vector_rank,
            text_rank=c.text_rank,
            text_position=c.text_position,
            fused=c.fused,
            importance=float(row.importance) if weighted else None,
            recency=c.recency,
            relevance=max(0.0, min(1.0, c.similarity)) if weighted else None,
            mmr=c.mmr,
            final=c.score,
        ),
    )


def run_search(
    conn: Connection, store: MemoryStore, query: str | None, vector: np.ndarray, params: SearchParams, *, record_access: bool
) -> list[SearchResult]:
    """One search inside an open tenant transaction."""
    vector_rows = vector_candidates(conn, store, vector, params.pool, params.filters) if params.mode != "text" else []
    text_rows: list[Row] = []
    if params.mode in ("text", "hybrid"):
        if query is None:
            raise InvalidInput(f"{params.mode} search needs the query text, not only its vector")
        text_rows = text_candidates(conn, store, query, vector, params.pool, params.filters)
    ranked = rank_candidates(vector_rows, text_rows, params, datetime.now(timezone.utc))
    if record_access:
        count_access(conn, [c.row.id for c in ranked])
    return [to_result(c, params) for c in ranked]


class SearchOps(TenantBound):
    def embed_query(self, store: MemoryStore, query: str) -> np.ndarray:
        return get_embedder(store.embedding_model, store.embedding_dim).embed_one(validation.query(query))

    def search_memories(
        self,
        store_id: UUID | str,
        query: str,
        limit: int = 5,
        min_similarity: float = 0.7,
        *,
        record_access: bool = True,
        memory_types: Sequence[str] = (),
        sources: Sequence[str] = (),
        mode: str = "vector",
        weights: Weights | None = None,
        rrf_k: int = RRF_K,
        mmr_lambda: float | None = None,
        query_embedding: Sequence[float] | np.ndarray | None = None,
    ) -> list[SearchResult]:
        """The seed's searchMemories: the `limit` best live memories for the query, in `mode`
        (default: the seed's cosine search at or above `min_similarity`). Returned memories have
        their access counted unless `record_access` is False, so an analyst's inspection does
        not change the statistics it inspects. `query_embedding` skips embedding the query
        (evaluation embeds many queries in one batch)."""
        query = validation.query(query)
        params = SearchParams(
            limit, min_similarity, mode, Filters(tuple(memory_types), tuple(sources)), weights or Weights(), rrf_k, mmr_lambda
        ).checked()
        store = self.get_store(store_id)
        vector = self.embed_query(store, query) if query_embedding is None else query_embedding
        vector = validation.embedding(vector, store.embedding_dim)
        with self.transaction() as conn:
            return run_search(conn, fetch_store(conn, store.id), query, vector, params, record_access=record_access)

    def search_by_embedding(
        self,
        store_id: UUID | str,
        embedding: Sequence[float] | np.ndarray,
        limit: int = 5,
        min_similarity: float = 0.7,
        *,
        record_access: bool = True,
        memory_types: Sequence[str] = (),
        sources: Sequence[str] = (),
        mode: str = "vector",
        weights: Weights | None = None,
    ) -> list[SearchResult]:
        """Vector or weighted search with a query vector computed elsewhere (benchmarks, agents
        that embed themselves): one transaction, no model in the path."""
        params = SearchParams(limit, min_similarity, mode, Filters(tuple(memory_types), tuple(sources)), weights or Weights()).checked()
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            store = fetch_store(conn, store_id)
            vector = validation.embedding(embedding, store.embedding_dim)
            return run_search(conn, store, None, vector, params, record_access=record_access)
