"""The SQL of hybrid and text search: the text side's candidates (BM25, core.sql.bm25), the signals
of given memories (cosine, BM25), and the conversation around candidates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
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
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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


def _scores(store: MemoryStore) -> str:
    dim = int(store.embedding_dim)
    return f"1 - (m.embedding::vector({dim}) <=> :q) AS similarity, coalesce(bm.bm25, 0) AS bm25, bm.terms"


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
        f" SELECT {M_COLUMNS}{embedding}, {_scores(store)}, true AS allowed"
        f" FROM found f JOIN memories m ON m.store_id = :s AND m.id = f.id{_BM25}"
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
    sql = text(
        f"SELECT {M_COLUMNS}{embedding}, {_scores(store)}, m.allowed"
        f" FROM (SELECT *, (TRUE{condition}) AS allowed FROM memories WHERE store_id = :s AND id = ANY(:ids)) m{_BM25}"
    )
    return {r.id: _signals(r, vectors=vectors) for r in conn.execute(sql, params)}


def terms_of(conn: Connection, store: MemoryStore, ids: Sequence[UUID], found: Terms, bm25: Bm25) -> dict[UUID, dict[str, float]]:
    """The query terms each of these memories holds, with their shares of its BM25."""
    if not ids:
        return {}
    sql = text(f"SELECT m.id, bm.terms FROM memories m{_BM25} WHERE m.store_id = :s AND m.id = ANY(:ids) AND bm.terms IS NOT NULL")
    return {r.id: _terms(r.terms) for r in conn.execute(sql, bsql.params(found, bm25) | {"s": store.id, "ids": list(ids)})}


# The turns around the candidates (core.hybrid.conversation says which): `w` each side of each
# candidate and, when the next candidate of its source may be in its session (at most `reach` turns
# and reach x 30 minutes later), every turn up to it. One probe of the conversation index per side.
_AROUND_SQL = (
    "WITH c AS MATERIALIZED (SELECT id, coalesce(source, '') AS src, created_at AS at FROM memories"
    "   WHERE store_id = :s AND id = ANY(:ids)),"
    " o AS (SELECT c.*, lead(id) OVER w AS nid, lead(at) OVER w AS nat FROM c WINDOW w AS (PARTITION BY src ORDER BY at, id)),"
    " turns AS (SELECT o.id AS anchor, 0 AS off, o.id, o.at FROM o"
    "   UNION ALL SELECT o.id, -p.n, p.id, p.created_at FROM o CROSS JOIN LATERAL ("
    "     SELECT m.id, m.created_at, row_number() OVER (ORDER BY m.created_at DESC, m.id DESC) AS n FROM ("
    "       SELECT id, created_at FROM memories m WHERE m.store_id = :s AND coalesce(m.source, '') = o.src"
    "       AND (m.created_at, m.id) < (o.at, o.id) ORDER BY m.created_at DESC, m.id DESC LIMIT :w) m) p"
    "   UNION ALL SELECT o.id, p.n, p.id, p.created_at FROM o CROSS JOIN LATERAL ("
    "     SELECT m.id, m.created_at, row_number() OVER (ORDER BY m.created_at, m.id) AS n FROM ("
    "       SELECT id, created_at FROM memories m WHERE m.store_id = :s AND coalesce(m.source, '') = o.src"
    "       AND (m.created_at, m.id) > (o.at, o.id)"
    "       AND (o.nat IS NULL OR o.nat - o.at > :span OR (m.created_at, m.id) <= (o.nat, o.nid))"
    "       ORDER BY m.created_at, m.id"
    "       LIMIT CASE WHEN o.nat - o.at <= :span THEN greatest(:w, :reach) ELSE :w END) m) p)"
)


def _around_params(ids: Sequence[UUID], window: int) -> dict[str, Any]:
    return {
        "ids": list(ids),
        "w": max(window, 1),
        "reach": hybrid.SESSION_REACH,
        "span": timedelta(microseconds=hybrid.SESSION_GAP * hybrid.SESSION_REACH),
    }


def _conversation(turns: Iterable[tuple[UUID, int, UUID, datetime]], ids: Sequence[UUID], window: int) -> dict[UUID, Around[UUID]]:
    """Runs of turns (one per candidate, in order) from (candidate, offset, turn, created_at) rows."""
    runs: dict[UUID, list[tuple[int, UUID, int]]] = {}
    for anchor, off, turn, at in turns:
        runs.setdefault(anchor, []).append((int(off), turn, _micros(at)))
    ordered = [[(i, at) for _, i, at in sorted(run)] for run in runs.values()]
    return hybrid.conversation(ordered, ids, window)


def _micros(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


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
    """Each candidate's conversation (core.hybrid.conversation) and the signals() of the turns
    within `window` of a candidate, in one statement (each scored once, with the same expressions
    as signals())."""
    if not ids:
        return {}, {}
    condition, params = filter_sql(filters)
    params.update(bsql.params(found, bm25) | _around_params(ids, window), q=vector, s=store.id)
    embedding = ", m.embedding" if vectors else ""
    sql = text(
        f"{_AROUND_SQL}, a AS MATERIALIZED (SELECT * FROM turns),"
        f" sig AS MATERIALIZED (SELECT {M_COLUMNS}{embedding}, {_scores(store)}, m.allowed"
        f" FROM (SELECT *, (TRUE{condition}) AS allowed FROM memories WHERE store_id = :s"
        f" AND id = ANY(ARRAY(SELECT DISTINCT a.id FROM a WHERE a.off <> 0 AND abs(a.off) <= :w))) m{_BM25})"
        " SELECT a.anchor, a.off, a.id AS nid, a.at, sig.* FROM a LEFT JOIN sig ON sig.id = a.id"
    )
    rows = conn.execute(sql, params).all()
    near: dict[UUID, Signals] = {}
    for r in rows:
        if r.id is not None and r.nid not in near:
            near[r.nid] = _signals(r, vectors=vectors)
    return _conversation(((r.anchor, r.off, r.nid, r.at) for r in rows), ids, window), near
