"""The SQL of hybrid and text search: the text side's candidates (BM25, core.sql.bm25), the signals
of given memories (cosine, BM25), and the conversation around candidates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, Row, text

from core import hybrid
from core.bm25 import Bm25, Terms
from core.hybrid import Around, Signals
from core.models import MemoryStore
from core.search import Filters
from core.sql import bm25 as bsql
from core.sql.memories import MEMORY_COLUMNS, memory_from_row
from core.sql.search import filter_sql

M_COLUMNS = ", ".join(f"m.{c}" for c in MEMORY_COLUMNS.split(", "))
_BM25 = bsql.BM25_JOIN


def _terms(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    return dict(json.loads(value) if isinstance(value, str) else value)


def _signals(row: Row[Any], *, vectors: bool) -> Signals:
    return Signals(
        memory=memory_from_row(row),
        similarity=float(row.similarity),
        bm25=float(row.bm25 or 0.0),
        terms=_terms(row.terms),
        allowed=bool(row.allowed),
        embedding=row.embedding.to_numpy() if vectors else None,
    )


def _scores(store: MemoryStore, *, terms: bool) -> str:
    """Cosine similarity and BM25 (with each term's share when `terms`: search asks for them only
    for the memories it returns, terms_of)."""
    dim = int(store.embedding_dim)
    return (
        f"1 - (m.embedding::vector({dim}) <=> :q) AS similarity, coalesce(bm.bm25, 0) AS bm25, {'bm.terms' if terms else 'NULL AS terms'}"
    )


def _signals_sql(store: MemoryStore, condition: str, ids: str, embedding: str) -> str:
    """The signals of the store's memories whose ids the SQL array `ids` holds: cosine, BM25 and
    whether the filters (`condition`) let each through."""
    return (
        f"SELECT {M_COLUMNS}{embedding}, {_scores(store, terms=False)}, m.allowed"
        f" FROM (SELECT *, (TRUE{condition}) AS allowed FROM memories WHERE store_id = :s AND id = ANY({ids})) m{bsql.BM25_SUM_JOIN}"
    )


def text_candidates(
    conn: Connection,
    store: MemoryStore,
    vector: np.ndarray,
    found: Terms,
    bm25: Bm25,
    k: int,
    filters: Filters,
    *,
    vectors: bool = False,
) -> list[Signals]:
    """The k best BM25 scores among the memories that pass the filters and hold a driving term;
    ties by id."""
    if not found.drivers:
        return []
    condition, params = filter_sql(filters)
    params.update(bsql.params(found, bm25), q=vector, s=store.id, k=k)
    embedding = ", m.embedding" if vectors else ""
    sql = text(
        f"WITH found AS MATERIALIZED (SELECT m.id, coalesce(bm.bm25, 0) AS bm25 FROM memories m{bsql.BM25_SUM_JOIN}"
        f" WHERE m.store_id = :s AND m.embedding_dim = {int(store.embedding_dim)} AND m.content_tsv @@ {bsql.DRIVERS}"
        f"{condition}"
        f" ORDER BY 2 DESC, 1 LIMIT :k)"
        f" SELECT {M_COLUMNS}{embedding}, {_scores(store, terms=True)}, true AS allowed"
        f" FROM found f JOIN memories m ON m.id = f.id{_BM25} WHERE m.store_id = :s AND m.id = ANY(ARRAY(SELECT id FROM found))"
        f" ORDER BY f.bm25 DESC, f.id"
    )
    return [_signals(r, vectors=vectors) for r in conn.execute(sql, params)]


def signals(
    conn: Connection,
    store: MemoryStore,
    ids: Sequence[UUID],
    vector: np.ndarray,
    found: Terms,
    bm25: Bm25,
    filters: Filters,
    *,
    vectors: bool = False,
) -> dict[UUID, Signals]:
    """Cosine and BM25 of these memories of the store, and whether the filters let
    each through."""
    if not ids:
        return {}
    condition, params = filter_sql(filters)
    params.update(bsql.params(found, bm25), q=vector, s=store.id, ids=list(ids))
    embedding = ", m.embedding" if vectors else ""
    sql = text(_signals_sql(store, condition, ":ids", embedding))
    return {r.id: _signals(r, vectors=vectors) for r in conn.execute(sql, params)}


def terms_of(conn: Connection, store: MemoryStore, ids: Sequence[UUID], found: Terms, bm25: Bm25) -> dict[UUID, dict[str, float]]:
    """The query terms each of these memories holds, with their shares of its BM25."""
    if not ids:
        return {}
    sql = text(f"SELECT m.id, bm.terms FROM memories m{_BM25} WHERE m.store_id = :s AND m.id = ANY(:ids) AND bm.terms IS NOT NULL")
    return {r.id: _terms(r.terms) for r in conn.execute(sql, bsql.params(found, bm25) | {"s": store.id, "ids": list(ids)})}


# The turns around the candidates (core.hybrid.conversation says which): `w` each side of each
# candidate and, when the next candidate of its source may be in its session (at most `reach` turns
# and reach x 30 minutes later), every turn up to it. One probe of the conversation index per side
# (the index's own expression, and ordered as that index is, so the planner takes it: ordered by
# time alone, it read the store's rows by time and skipped the other sources').
_SOURCE = "(CASE WHEN {0}.source IS NULL THEN '' ELSE {0}.source END)"
_AROUND_SQL = (
    f"WITH c AS MATERIALIZED (SELECT id, {_SOURCE.format('memories')} AS src, created_at AS at FROM memories"
    "   WHERE store_id = :s AND id = ANY(:ids)),"
    # the last turn each candidate's forward probe may read: the next candidate when it is within
    # reach, else none (a bound for the index in both cases: a condition OR-ed with others is not)
    " n AS (SELECT c.*, lead(id) OVER w AS nid, lead(at) OVER w AS nat FROM c WINDOW w AS (PARTITION BY src ORDER BY at, id)),"
    " o AS (SELECT id, src, at, nat - at <= :span AS near,"
    "   CASE WHEN nat - at <= :span THEN nat ELSE 'infinity' END AS hi_at,"
    "   CASE WHEN nat - at <= :span THEN nid ELSE 'ffffffff-ffff-ffff-ffff-ffffffffffff' END AS hi_id FROM n),"
    " turns AS (SELECT o.id AS anchor, 0 AS off, o.id, o.at FROM o"
    "   UNION ALL SELECT o.id, -p.n, p.id, p.created_at FROM o CROSS JOIN LATERAL ("
    "     SELECT m.id, m.created_at, row_number() OVER (ORDER BY m.created_at DESC, m.id DESC) AS n FROM ("
    f"       SELECT id, created_at FROM memories m WHERE m.store_id = :s AND {_SOURCE.format('m')} = o.src"
    f"       AND (m.created_at, m.id) < (o.at, o.id) ORDER BY {_SOURCE.format('m')} DESC, m.created_at DESC, m.id DESC LIMIT :w) m) p"
    "   UNION ALL SELECT o.id, p.n, p.id, p.created_at FROM o CROSS JOIN LATERAL ("
    "     SELECT m.id, m.created_at, row_number() OVER (ORDER BY m.created_at, m.id) AS n FROM ("
    f"       SELECT id, created_at FROM memories m WHERE m.store_id = :s AND {_SOURCE.format('m')} = o.src"
    "       AND (m.created_at, m.id) > (o.at, o.id) AND (m.created_at, m.id) <= (o.hi_at, o.hi_id)"
    f"       ORDER BY {_SOURCE.format('m')}, m.created_at, m.id"
    "       LIMIT CASE WHEN o.near THEN greatest(:w, :reach) ELSE :w END) m) p)"
)


def _around_params(ids: Sequence[UUID], window: int) -> dict[str, Any]:
    return {
        "ids": list(ids),
        "w": max(window, 1),
        "reach": hybrid.SESSION_REACH,
        "span": timedelta(microseconds=hybrid.SESSION_GAP * hybrid.SESSION_REACH),
    }


def _conversation(rows: Sequence[Row[Any]], ids: Sequence[UUID], window: int) -> dict[UUID, Around[UUID]]:
    """Runs of turns, one per candidate in conversation order, from rows of (turn, created_at in
    microseconds, the candidates it is placed around, its offsets from them)."""
    runs: dict[UUID, list[tuple[int, UUID, int]]] = {}
    for r in rows:
        for anchor, off in zip(r.anchors, r.offs, strict=True):
            runs.setdefault(anchor, []).append((off, r.nid, r.at_us))
    ordered = [[(i, at) for _, i, at in sorted(run)] for run in runs.values()]
    return hybrid.conversation(ordered, ids, window)


def around_signals(
    conn: Connection,
    store: MemoryStore,
    ids: Sequence[UUID],
    window: int,
    vector: np.ndarray,
    found: Terms,
    bm25: Bm25,
    filters: Filters,
    *,
    vectors: bool = False,
) -> tuple[dict[UUID, Around[UUID]], dict[UUID, Signals]]:
    """Each candidate's conversation (core.hybrid.conversation) and the signals() of the other turns
    within `window` of a candidate, in one statement (a row per turn, each scored once, with the
    same expressions as signals())."""
    if not ids:
        return {}, {}
    condition, params = filter_sql(filters)
    params.update(bsql.params(found, bm25) | _around_params(ids, window), q=vector, s=store.id)
    embedding = ", m.embedding" if vectors else ""
    sql = text(
        f"{_AROUND_SQL}, placed AS MATERIALIZED (SELECT id, (extract(epoch FROM min(at)) * 1000000)::int8 AS at_us,"
        " array_agg(anchor) AS anchors, array_agg(off::int) AS offs,"
        " bool_or(off <> 0 AND abs(off) <= :w) AND NOT id = ANY(:ids) AS scored FROM turns GROUP BY id),"
        f" sig AS MATERIALIZED ({_signals_sql(store, condition, 'ARRAY(SELECT id FROM placed WHERE scored)', embedding)})"
        " SELECT p.id AS nid, p.at_us, p.anchors, p.offs, sig.* FROM placed p LEFT JOIN sig ON sig.id = p.id"
    )
    rows = conn.execute(sql, params).all()
    near = {r.nid: _signals(r, vectors=vectors) for r in rows if r.id is not None}
    return _conversation(rows, ids, window), near
