"""The SQL of search: nearest memories of a store, and the full scan the retrieval debugger
explains (the text side's SQL: core.sql.bm25, core.sql.hybrid).

Vectors are compared with `embedding::vector(N)`, the expression of the store's partial HNSW
index. Small stores are searched exactly (a materialised scan of the store's rows is cheaper than
walking an index shared with every other store); larger ones through the index with pgvector's
iterative scan, so the store and expiry filters never leave fewer than k rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, text

from core.bm25 import Bm25, Terms
from core.models import Memory, MemoryStore
from core.search import Filters, Hit, Scan, SearchTuning
from core.sql import bm25 as bsql
from core.sql.memories import MEMORY_COLUMNS, memory_from_row
from core.status import EXPIRED_SQL, IS_SQL

# Transaction-local settings of the HNSW path. force_custom_plan: psycopg prepares a statement on
# its 5th run and PostgreSQL may then switch to a generic plan, which cannot know whether the store
# is big; at 1M memories it chose the store's btree for a 100k store: ~300 ms instead of ~3 ms.
# The query itself puts plan_cache_mode back once it is planned (a one-time filter, no round trip):
# the statements after it in the transaction (the retrieval log's INSERT) keep their cached plans,
# unless the caller's are planned for their parameters too (hybrid: custom_plans_after).
_INDEX_SETTINGS = text(
    "SELECT current_setting('plan_cache_mode'), set_config('hnsw.iterative_scan', :scan, true),"
    " set_config('hnsw.ef_search', CAST(greatest(CAST(:ef AS int), CAST(:floor AS int)) AS text), true),"
    " set_config('plan_cache_mode', 'force_custom_plan', true)"
)
_RESTORE_PLAN_CACHE = "(SELECT set_config('plan_cache_mode', :plan_cache_mode, true)) IS NOT NULL"
_BITMAP_ONLY = text("SELECT current_setting('enable_indexscan'), set_config('enable_indexscan', 'off', true)")
_RESTORE_INDEXSCAN = text("SELECT set_config('enable_indexscan', :was, true)")


def filter_sql(filters: Filters) -> tuple[str, dict[str, object]]:
    """The filters as ` AND ...` conditions on memories, and their parameters."""
    where = ["(" + " OR ".join(IS_SQL[s] for s in filters.statuses) + ")"]
    params: dict[str, object] = {}
    if filters.memory_types:
        where.append("memory_type = ANY(:types)")
        params["types"] = list(filters.memory_types)
    if filters.sources:
        where.append("coalesce(source, '') = ANY(:sources)")
        params["sources"] = list(filters.sources)
    return "".join(f" AND {w}" for w in where), params


def distance_sql(store: MemoryStore) -> str:
    """Cosine distance to the query vector :q, in the expression of the store's partial HNSW index."""
    return f"(embedding::vector({int(store.embedding_dim)}) <=> :q)"


def _hit(row: Any, *, vectors: bool) -> Hit:
    return Hit(
        memory=memory_from_row(row),
        similarity=float(row.similarity),
        embedding=row.embedding.to_numpy() if vectors else None,
    )


def vector_candidates(
    conn: Connection,
    store: MemoryStore,
    vector: np.ndarray,
    k: int,
    filters: Filters,
    tuning: SearchTuning,
    *,
    vectors: bool = False,
    custom_plans_after: bool = False,
) -> list[Hit]:
    """The k nearest memories of the store that pass the filters, nearest first. No threshold
    here: it is applied after the nearest-k scan. `custom_plans_after`: on the HNSW path, the
    statements after it in the transaction are planned for their parameters too (hybrid's are)."""
    dim = int(store.embedding_dim)
    distance = distance_sql(store)
    condition, params = filter_sql(filters)
    params.update(q=vector, s=store.id, k=k)
    embedding = ", embedding" if vectors else ""
    if store.total_memories <= tuning.exact_max_rows:
        # Only (id, distance) is materialised, each distance computed once; the k winners are then
        # read by primary key. The fence keeps the planner off the HNSW index, shared with every
        # other store, where a small store's rows are too rare to be found (docs/BENCHMARKS.md).
        sql = text(
            f"WITH store_rows AS MATERIALIZED (SELECT id, {distance} AS distance FROM memories"
            f" WHERE store_id = :s AND embedding_dim = {dim}{condition}),"
            f" nearest AS (SELECT id, distance FROM store_rows ORDER BY distance, id LIMIT :k)"
            f" SELECT {MEMORY_COLUMNS}{embedding}, 1 - distance AS similarity FROM nearest JOIN memories USING (id)"
            f" ORDER BY distance, id"
        )
        if store.total_memories > tuning.bitmap_min_rows:
            was = conn.execute(_BITMAP_ONLY).scalar()
            rows = conn.execute(sql, params).all()
            conn.execute(_RESTORE_INDEXSCAN, {"was": was})
            return [_hit(r, vectors=vectors) for r in rows]
    else:
        # The HNSW graph holds the rows marked `indexed` (migration 010); rows a bulk write left
        # out of it (until MemoryService.index_pending) are scanned exactly, through the partial
        # index memories_unindexed (an empty delta costs one index probe). Both sides give
        # (id, distance) only; the k best of the two are read by primary key.
        was = conn.execute(
            _INDEX_SETTINGS, {"scan": tuning.iterative_scan, "ef": str(max(40, 2 * k)), "floor": str(tuning.ef_search)}
        ).scalar()
        restore = ""
        if not custom_plans_after:
            restore = f" WHERE {_RESTORE_PLAN_CACHE}"
            params["plan_cache_mode"] = was
        sql = text(
            f"WITH ann AS MATERIALIZED (SELECT id, {distance} AS distance FROM memories"
            f" WHERE store_id = :s AND embedding_dim = {dim} AND indexed{condition} ORDER BY {distance} LIMIT :k),"
            f" delta AS MATERIALIZED (SELECT id, {distance} AS distance FROM memories"
            f" WHERE store_id = :s AND embedding_dim = {dim} AND NOT indexed{condition}),"
            f" nearest AS (SELECT id, distance FROM ann UNION ALL"
            f" (SELECT id, distance FROM delta ORDER BY distance, id LIMIT :k) ORDER BY distance, id LIMIT :k)"
            f" SELECT {MEMORY_COLUMNS}{embedding}, 1 - distance AS similarity FROM nearest JOIN memories USING (id)"
            f"{restore} ORDER BY distance, id"
        )
    return [_hit(r, vectors=vectors) for r in conn.execute(sql, params)]


def scan(conn: Connection, store: MemoryStore, vector: np.ndarray, filters: Filters, found: Terms, bm25: Bm25) -> Scan:
    """Every memory of the store with the service's own expressions (no index: exact), narrow:
    what ranking needs (distance, BM25 and whether a driving term matches, the conversation
    order, statuses), no content, metadata or vector; the memories themselves are read by id, for the
    few that are shown (rows_by_id). The columns come back as one row of binary strings, one per
    column (each aggregate sees the rows in the same order), read by numpy: 20k memories cost no
    Python object each."""
    distance = distance_sql(store)
    condition, params = filter_sql(filters)
    sql = (
        "SELECT count(*), string_agg(uuid_send(id), ''), string_agg(float8send(distance), ''),"
        " string_agg(boolsend(text_match), ''), string_agg(float8send(text_rank), ''), string_agg(boolsend(expired), ''),"
        " string_agg(boolsend(archived), ''), string_agg(boolsend(allowed), ''),"
        " string_agg(int4send(src), ''), string_agg(int8send(at), '') FROM ("
        "SELECT *, dense_rank() OVER (ORDER BY source_key)::int4 AS src FROM ("
        f"SELECT m.id, {distance} AS distance, coalesce(m.content_tsv @@ {bsql.DRIVERS}, false) AS text_match,"
        f" {bsql.BM25_SUM} AS text_rank, {EXPIRED_SQL} AS expired, archived, (TRUE{condition}) AS allowed,"
        " coalesce(m.source, '') AS source_key, (extract(epoch FROM m.created_at) * 1000000)::int8 AS at"
        f" FROM memories m WHERE m.store_id = :s AND m.embedding_dim = {int(store.embedding_dim)}"
        # OFFSET 0 keeps the window's sort on these narrow rows; without it PostgreSQL sorted whole
        # rows (their vectors too, 34 MB for 20k memories) and computed the distances after
        " OFFSET 0) AS narrow) AS scanned"
    )
    params.update(bsql.params(found, bm25), q=vector, s=store.id)
    n, ids, distances, matches, ranks, expired, archived, allowed, sources, created = conn.execute(text(sql), params).one()

    def flags(blob: bytes | None) -> np.ndarray:
        return np.frombuffer(blob or b"", dtype=np.uint8).astype(bool)

    return Scan(
        keys=np.frombuffer(ids or b"", dtype=np.uint8).reshape(int(n), 16),
        distance=np.frombuffer(distances or b"", dtype=">f8").astype(np.float64),
        text_match=flags(matches),
        text_rank=np.frombuffer(ranks or b"", dtype=">f8").astype(np.float64),
        expired=flags(expired),
        archived=flags(archived),
        allowed=flags(allowed),
        source=np.frombuffer(sources or b"", dtype=">i4").astype(np.int32),
        created=np.frombuffer(created or b"", dtype=">i8").astype(np.int64),
    )


def previews(conn: Connection, memory_ids: Sequence[UUID], chars: int) -> dict[UUID, tuple[str, bool]]:
    """The first `chars` characters of these memories' content, and whether it goes on, by id."""
    if not memory_ids:  # as existing_ids: no statement for none
        return {}
    rows = conn.execute(
        text("SELECT id, left(content, :n), length(content) > :n FROM memories WHERE id = ANY(:ids)"), {"ids": list(memory_ids), "n": chars}
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def rows_by_id(conn: Connection, memory_ids: Sequence[UUID], *, vectors: bool) -> dict[UUID, tuple[Memory, np.ndarray | None]]:
    """These memories (and their vectors when asked), by id."""
    embedding = ", embedding" if vectors else ""
    rows = conn.execute(text(f"SELECT {MEMORY_COLUMNS}{embedding} FROM memories WHERE id = ANY(:ids)"), {"ids": list(memory_ids)})
    return {r.id: (memory_from_row(r), r.embedding.to_numpy() if vectors else None) for r in rows}
