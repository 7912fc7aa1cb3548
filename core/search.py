"""Semantic search over a store: the seed's cosine search with threshold, limit and expiry.

The query vector is compared with `embedding::vector(N)`, the expression of the store's partial
HNSW index. Small stores are searched exactly (a materialised scan of the store's rows, cheaper
than walking an index shared with every other store); large ones through the index with
pgvector's iterative scan, so the store and expiry filters never leave fewer than k rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, text

from core import validation
from core.embeddings import get_embedder
from core.memories import MEMORY_COLUMNS, memory_from_row
from core.models import MemoryStore, ScoreBreakdown, SearchResult
from core.scope import TenantBound
from core.stores import fetch_store

# Stores up to this size are searched exactly. Measured in docs/BENCHMARKS.md.
EXACT_SEARCH_MAX_ROWS = 20_000
_ITERATIVE_SCAN = text(
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', :ef, true)"
)


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
            where.append("(expires_at IS NULL OR expires_at > now())")
        if not self.include_archived:
            where.append("NOT archived")
        if self.memory_types:
            where.append("memory_type = ANY(:types)")
            params["types"] = list(self.memory_types)
        if self.sources:
            where.append("coalesce(source, '') = ANY(:sources)")
            params["sources"] = list(self.sources)
        return "".join(f" AND {w}" for w in where), params


def vector_candidates(
    conn: Connection, store: MemoryStore, vector: np.ndarray, k: int, filters: Filters
) -> list[tuple[object, float]]:
    """The k nearest memories of the store that pass the filters, with their cosine similarity,
    nearest first. No threshold here: callers cut by similarity after the nearest-k scan."""
    dim = int(store.embedding_dim)
    distance = f"(embedding::vector({dim}) <=> :q)"
    condition, params = filters.sql()
    params.update(q=vector, s=store.id, k=k)
    if store.total_memories <= EXACT_SEARCH_MAX_ROWS:
        sql = (
            f"WITH store_rows AS MATERIALIZED (SELECT * FROM memories WHERE store_id = :s AND embedding_dim = {dim}{condition})"
            f" SELECT {MEMORY_COLUMNS}, 1 - {distance} AS similarity FROM store_rows ORDER BY {distance}, id LIMIT :k"
        )
    else:
        conn.execute(_ITERATIVE_SCAN, {"ef": str(max(40, 2 * k))})
        sql = (
            f"WITH nearest AS MATERIALIZED (SELECT {MEMORY_COLUMNS}, {distance} AS distance FROM memories"
            f" WHERE store_id = :s AND embedding_dim = {dim}{condition} ORDER BY {distance} LIMIT :k)"
            f" SELECT *, 1 - distance AS similarity FROM nearest ORDER BY distance, id"
        )
    return [(row, float(row.similarity)) for row in conn.execute(text(sql), params)]


def count_access(conn: Connection, ids: Sequence[UUID]) -> None:
    """The seed's access bookkeeping: count and timestamp every memory a search returned."""
    if ids:
        conn.execute(
            text("UPDATE memories SET access_count = access_count + 1, last_accessed = now() WHERE id = ANY(:ids)"),
            {"ids": sorted(ids)},
        )


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
    ) -> list[SearchResult]:
        """The seed's searchMemories: the `limit` most similar live memories at or above
        `min_similarity`, most similar first; returned memories have their access counted unless
        `record_access` is False (an analyst inspecting must not change what they inspect)."""
        store = self.get_store(store_id)
        vector = self.embed_query(store, query)
        return self.search_by_embedding(
            store.id, vector, limit, min_similarity,
            record_access=record_access, memory_types=memory_types, sources=sources,
        )

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
    ) -> list[SearchResult]:
        """search_memories with a query vector computed elsewhere (benchmarks, evaluation)."""
        store_id = validation.uuid(store_id, "store id")
        limit = validation.limit(limit)
        min_similarity = validation.similarity(min_similarity)
        filters = Filters(tuple(memory_types), tuple(sources))
        with self.transaction() as conn:
            store = fetch_store(conn, store_id)
            vector = validation.embedding(embedding, store.embedding_dim)
            hits = [(row, sim) for row, sim in vector_candidates(conn, store, vector, limit, filters) if sim >= min_similarity]
            if record_access:
                count_access(conn, [row.id for row, _ in hits])
        return [
            SearchResult(
                memory=memory_from_row(row),
                similarity=sim,
                score=sim,
                breakdown=ScoreBreakdown(similarity=sim, vector_rank=rank, final=sim),
            )
            for rank, (row, sim) in enumerate(hits, start=1)
        ]
