"""The SQL of hybrid and text search: the text side's candidates (BM25, core.sql.bm25), the signals
of given memories (cosine, BM25, session link), and the conversation around candidates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, Row, text

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
        session_prev=row.session_prev,
        allowed=bool(row.allowed),
        embedding=row.embedding.to_numpy() if vectors else None,
    )


def _scores(store: MemoryStore) -> str:
    dim = int(store.embedding_dim)
    return f"1 - (m.embedding::vector({dim}) <=> :q) AS similarity, coalesce(bm.bm25, 0) AS bm25, bm.terms, m.session_prev"


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


@dataclass(frozen=True)
class Neighbour:
    id: UUID
    offset: int  # -1 the memory right before the candidate, +1 right after, ...
    session_prev: UUID | None


# For each candidate: its session's first memory, and the `window` memories before and after it in
# its source's order (the session is checked in Python: a memory belongs to the candidate's session
# when the chain of session_prev links reaches it).
_AROUND_SQL = (
    "SELECT c.id AS anchor, c.session_prev AS anchor_prev, st.id AS session, n.id, n.off, n.session_prev"
    " FROM (SELECT id, store_id, coalesce(source, '') AS src, created_at, session_prev FROM memories"
    "       WHERE store_id = :s AND id = ANY(:ids)) c"
    " LEFT JOIN LATERAL (SELECT p.id FROM memories p WHERE p.store_id = c.store_id AND coalesce(p.source, '') = c.src"
    "       AND p.session_prev IS NULL AND (p.created_at, p.id) <= (c.created_at, c.id)"
    "       ORDER BY p.created_at DESC, p.id DESC LIMIT 1) st ON true"
    " LEFT JOIN LATERAL ("
    "   (SELECT p.id, -row_number() OVER (ORDER BY p.created_at DESC, p.id DESC) AS off, p.session_prev FROM ("
    "       SELECT id, created_at, session_prev FROM memories p WHERE p.store_id = c.store_id AND coalesce(p.source, '') = c.src"
    "       AND (p.created_at, p.id) < (c.created_at, c.id) ORDER BY p.created_at DESC, p.id DESC LIMIT :w) p)"
    "   UNION ALL"
    "   (SELECT p.id, row_number() OVER (ORDER BY p.created_at, p.id) AS off, p.session_prev FROM ("
    "       SELECT id, created_at, session_prev FROM memories p WHERE p.store_id = c.store_id AND coalesce(p.source, '') = c.src"
    "       AND (p.created_at, p.id) > (c.created_at, c.id) ORDER BY p.created_at, p.id LIMIT :w) p)"
    " ) n ON true"
)
_AROUND = text(_AROUND_SQL)


def around(conn: Connection, store: MemoryStore, ids: Sequence[UUID], window: int) -> dict[UUID, Around]:
    """Each candidate's session and its neighbours in it (core.hybrid.Around), up to `window` turns
    each side (at least one, to know whether the session holds another memory)."""
    if not ids:
        return {}
    rows = conn.execute(_AROUND, {"s": store.id, "ids": list(ids), "w": max(window, 1)}).all()
    found: dict[UUID, tuple[UUID | None, UUID, list[Neighbour]]] = {}
    for r in rows:
        entry = found.setdefault(r.anchor, (r.anchor_prev, r.session, []))
        if r.id is not None:
            entry[2].append(Neighbour(r.id, int(r.off), r.session_prev))
    return {anchor: chain(anchor, prev, session, near, window) for anchor, (prev, session, near) in found.items()}


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
) -> tuple[dict[UUID, Around], dict[UUID, Signals]]:
    """around() and the signals() of every memory it read around the candidates, in one statement
    (each neighbour scored once, with the same expressions as signals())."""
    if not ids:
        return {}, {}
    condition, params = filter_sql(filters)
    params.update(bsql.params(found, bm25), q=vector, s=store.id, ids=list(ids), w=max(window, 1))
    embedding = ", m.embedding" if vectors else ""
    sql = text(
        f"WITH a AS MATERIALIZED (SELECT x.*, row_number() OVER (PARTITION BY x.id) = 1 AS first FROM ({_AROUND_SQL}) x),"
        f" sig AS MATERIALIZED (SELECT {M_COLUMNS}{embedding}, {_scores(store)}, m.allowed"
        f" FROM (SELECT *, (TRUE{condition}) AS allowed FROM memories WHERE store_id = :s AND id = ANY(ARRAY(SELECT DISTINCT a.id FROM a WHERE a.id IS NOT NULL))) m{_BM25})"
        " SELECT a.anchor, a.anchor_prev, a.session AS session_start, a.id AS nid, a.off, a.session_prev AS nprev, sig.*"
        " FROM a LEFT JOIN sig ON sig.id = a.id AND a.first"
    )
    rows = conn.execute(sql, params).all()
    found_rows: dict[UUID, tuple[UUID | None, UUID, list[Neighbour]]] = {}
    near: dict[UUID, Signals] = {}
    for r in rows:
        entry = found_rows.setdefault(r.anchor, (r.anchor_prev, r.session_start, []))
        if r.nid is not None:
            entry[2].append(Neighbour(r.nid, int(r.off), r.nprev))
            if r.id is not None and r.nid not in near:
                near[r.nid] = _signals(r, vectors=vectors)
    arounds = {anchor: chain(anchor, prev, session, nb, window) for anchor, (prev, session, nb) in found_rows.items()}
    return arounds, near


def chain(anchor: UUID, anchor_prev: UUID | None, session: UUID, near: Sequence[Neighbour], window: int) -> Around:
    """The neighbours of `anchor` that are in its session: before it, while each links to the next;
    after it, while each links to the previous."""
    before_rows = sorted((n for n in near if n.offset < 0), key=lambda n: -n.offset)
    after_rows = sorted((n for n in near if n.offset > 0), key=lambda n: n.offset)
    before: list[UUID] = []
    link = anchor_prev
    for n in before_rows:
        if link != n.id:
            break
        before.append(n.id)
        link = n.session_prev
    after: list[UUID] = []
    last = anchor
    for n in after_rows:
        if n.session_prev != last:
            break
        after.append(n.id)
        last = n.id
    return Around(session, bool(before or after), tuple(before[:window]), tuple(after[:window]))
