"""The SQL of BM25 and of hybrid search: a query's terms with their document frequencies, the text
side's candidates, the signals of given memories (cosine, context cosine, BM25), the conversation
around candidates, and the same signals for every memory of a store (the retrieval debugger).

BM25 is computed by one SQL fragment (`_BM25`) wherever a score is needed, so search and the
debugger get the same floats; its terms are summed in lexeme order. Document frequencies come from
memory_lexemes (migration 011); the weights from core.bm25.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, Row, text

from core.bm25 import Bm25, Terms, choose
from core.hybrid import Around, Signals
from core.models import MemoryStore
from core.search import Filters
from core.sql.memories import MEMORY_COLUMNS, memory_from_row
from core.sql.search import filter_sql

M_COLUMNS = ", ".join(f"m.{c}" for c in MEMORY_COLUMNS.split(", "))

_TERMS = text(
    "SELECT q.lexeme, coalesce(l.df, 0) AS df"
    " FROM (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :query))) q"
    " LEFT JOIN memory_lexemes l ON l.store_id = :s AND l.lexeme = q.lexeme"
    " UNION ALL SELECT '', coalesce((SELECT df FROM memory_lexemes WHERE store_id = :s AND lexeme = ''), 0)"
)

# BM25 of memory `m` for the terms :lex with weights :idf (core.bm25): each matched term's share
# idf * tf (k1 + 1) / (tf + k1 (1 - b + b len / avglen)), tf its positions, len the memory's number
# of distinct lexemes. ts_filter(setweight(...)) keeps only the query's lexemes before unnesting.
_BM25 = (
    " LEFT JOIN LATERAL (SELECT sum(t.w ORDER BY t.lexeme) AS bm25, jsonb_object_agg(t.lexeme, t.w) AS terms FROM ("
    "SELECT u.lexeme, q.idf * u.tf * (:k1 + 1) / (u.tf + :k1 * (1 - :b + :b * length(m.content_tsv) / :avglen)) AS w"
    " FROM (SELECT x.lexeme, CAST(coalesce(array_length(x.positions, 1), 1) AS float8) AS tf"
    " FROM unnest(ts_filter(setweight(m.content_tsv, 'A', CAST(:lex AS text[])), '{a}')) x) u"
    " JOIN unnest(CAST(:lex AS text[]), CAST(:idf AS float8[])) AS q(lexeme, idf) USING (lexeme)) t) bm ON true"
)
# The OR of the driving lexemes, each quoted as tsquery input wants (quotes doubled, backslashes escaped).
_DRIVERS = (
    "(SELECT CAST(string_agg('''' || replace(replace(l, '\\', '\\\\'), '''', '''''') || '''', ' | ') AS tsquery)"
    " FROM unnest(CAST(:drive AS text[])) AS l)"
)


def terms(conn: Connection, store: MemoryStore, query: str, budget: int) -> Terms:
    """The query's terms in this store, their weights, and which drive the lookup (core.bm25)."""
    rows = conn.execute(_TERMS, {"query": query, "s": store.id}).all()
    total = next((int(r.df) for r in rows if r.lexeme == ""), 0)
    return choose([(r.lexeme, int(r.df)) for r in rows if r.lexeme != ""], store.total_memories, total, budget)


def _bm25_params(found: Terms, bm25: Bm25) -> dict[str, Any]:
    return {
        "lex": found.lexemes,
        "idf": found.idfs,
        "k1": bm25.k1,
        "b": bm25.b,
        "avglen": max(found.average_length, 1e-9),
        "drive": found.drivers,
    }


def _terms(value: Any) -> dict[str, float]:
    if value is None:
        return {}
    return dict(json.loads(value) if isinstance(value, str) else value)


def _signals(row: Row[Any], *, vectors: bool) -> Signals:
    return Signals(
        memory=memory_from_row(row),
        similarity=float(row.similarity),
        context_similarity=None if row.context_similarity is None else float(row.context_similarity),
        bm25=float(row.bm25 or 0.0),
        terms=_terms(row.terms),
        session_prev=row.session_prev,
        allowed=bool(row.allowed),
        embedding=row.embedding.to_numpy() if vectors else None,
    )


def _scores(store: MemoryStore) -> str:
    dim = int(store.embedding_dim)
    return (
        f"1 - (m.embedding::vector({dim}) <=> :q) AS similarity,"
        " CASE WHEN m.context_embedding IS NOT NULL THEN 1 - (m.context_embedding <=> :q) END AS context_similarity,"
        " coalesce(bm.bm25, 0) AS bm25, bm.terms, m.session_prev"
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
    ties to the newest, then the greater id."""
    if not found.drivers:
        return []
    condition, params = filter_sql(filters)
    params.update(_bm25_params(found, bm25), q=vector, s=store.id, k=k)
    embedding = ", m.embedding" if vectors else ""
    sql = text(
        f"WITH found AS MATERIALIZED (SELECT m.id, m.created_at AS at, coalesce(bm.bm25, 0) AS bm25 FROM memories m{_BM25}"
        f" WHERE m.store_id = :s AND m.embedding_dim = {int(store.embedding_dim)} AND m.content_tsv @@ {_DRIVERS}"
        f"{condition}"
        f" ORDER BY 3 DESC, 2 DESC, 1 DESC LIMIT :k)"
        f" SELECT {M_COLUMNS}{embedding}, {_scores(store)}, true AS allowed"
        f" FROM found f JOIN memories m ON m.store_id = :s AND m.id = f.id{_BM25}"
        f" ORDER BY f.bm25 DESC, f.at DESC, f.id DESC"
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
    """Cosine, context cosine and BM25 of these memories of the store, and whether the filters let
    each through."""
    if not ids:
        return {}
    condition, params = filter_sql(filters)
    params.update(_bm25_params(found, bm25), q=vector, s=store.id, ids=list(ids))
    embedding = ", m.embedding" if vectors else ""
    sql = text(
        f"SELECT {M_COLUMNS}{embedding}, {_scores(store)}, m.allowed"
        f" FROM (SELECT *, (TRUE{condition}) AS allowed FROM memories WHERE store_id = :s AND id = ANY(:ids)) m{_BM25}"
    )
    return {r.id: _signals(r, vectors=vectors) for r in conn.execute(sql, params)}


@dataclass(frozen=True)
class Neighbour:
    id: UUID
    offset: int  # -1 the memory right before the candidate, +1 right after, ...
    session_prev: UUID | None


# For each candidate: its session's first memory, and the `window` memories before and after it in
# its source's order (the session is checked in Python: a memory belongs to the candidate's session
# when the chain of session_prev links reaches it).
_AROUND = text(
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


@dataclass(frozen=True)
class ScanExtra:
    """What the debugger's scan adds for hybrid and text search, per memory."""

    context_similarity: float | None
    bm25: float
    terms: dict[str, float]
    session_prev: UUID | None


def scan_extra(conn: Connection, store: MemoryStore, vector: np.ndarray, found: Terms, bm25: Bm25) -> dict[UUID, ScanExtra]:
    """Context cosine, BM25 (with the matched terms) and session link of every memory of the store,
    with the expressions search uses."""
    params = _bm25_params(found, bm25) | {"q": vector, "s": store.id}
    sql = text(
        "SELECT m.id, CASE WHEN m.context_embedding IS NOT NULL THEN 1 - (m.context_embedding <=> :q) END AS context_similarity,"
        f" coalesce(bm.bm25, 0) AS bm25, bm.terms, m.session_prev FROM memories m{_BM25}"
        f" WHERE m.store_id = :s AND m.embedding_dim = {int(store.embedding_dim)}"
    )
    return {
        r.id: ScanExtra(
            None if r.context_similarity is None else float(r.context_similarity), float(r.bm25), _terms(r.terms), r.session_prev
        )
        for r in conn.execute(sql, params)
    }
