"""The SQL of BM25 (core.bm25): a query's terms with their document frequencies in a store
(memory_lexemes, migration 011), and the expressions that score a memory and match the driving
terms. One fragment scores wherever a score is needed (search's text side, hybrid's signals, the
debugger's scan), so they all get the same floats; a memory's terms are summed in lexeme order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

from core.bm25 import Bm25, Terms, choose
from core.models import MemoryStore

_TERMS = text(
    "SELECT q.lexeme, coalesce(l.df, 0) AS df"
    " FROM (SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :query))) q"
    " LEFT JOIN memory_lexemes l ON l.store_id = :s AND l.lexeme = q.lexeme"
    " UNION ALL SELECT '', coalesce((SELECT df FROM memory_lexemes WHERE store_id = :s AND lexeme = ''), 0)"
)

# BM25 of memory `m` for the terms :lex with weights :idf: each matched term's share
# idf * tf (k1 + 1) / (tf + k1 (1 - b + b len / avglen)), tf its positions, len the memory's number
# of distinct lexemes. ts_filter(setweight(...)) keeps only the query's lexemes before unnesting.
_SHARES = (
    "SELECT u.lexeme, q.idf * u.tf * (:k1 + 1) / (u.tf + :k1 * (1 - :b + :b * length(m.content_tsv) / :avglen)) AS w"
    " FROM (SELECT x.lexeme, CAST(coalesce(array_length(x.positions, 1), 1) AS float8) AS tf"
    " FROM unnest(ts_filter(setweight(m.content_tsv, 'A', CAST(:lex AS text[])), '{a}')) x) u"
    " JOIN unnest(CAST(:lex AS text[]), CAST(:idf AS float8[])) AS q(lexeme, idf) USING (lexeme)"
)
# Joined as `bm` (bm.bm25 NULL when no term matches; bm.terms each matched term's share).
BM25_JOIN = f" LEFT JOIN LATERAL (SELECT sum(t.w ORDER BY t.lexeme) AS bm25, jsonb_object_agg(t.lexeme, t.w) AS terms FROM ({_SHARES}) t) bm ON true"
# The same sum without the breakdown (bm.bm25 only): for ranking many rows; the same floats.
_SUM = f"SELECT sum(t.w ORDER BY t.lexeme) AS bm25 FROM ({_SHARES}) t"
BM25_SUM_JOIN = f" LEFT JOIN LATERAL ({_SUM}) bm ON true"


def _any_of(lexemes: str) -> str:
    """The OR of the lexemes of a text[] parameter, each quoted as tsquery input wants (quotes
    doubled, backslashes escaped); NULL when there are none (then nothing matches)."""
    return (
        "(SELECT CAST(string_agg('''' || replace(replace(l, '\\', '\\\\'), '''', '''''') || '''', ' | ') AS tsquery)"
        f" FROM unnest(CAST({lexemes} AS text[])) AS l)"
    )


# Whether memory `m` holds one of the terms that drive the text side's lookup (core.bm25).
DRIVERS = _any_of(":drive")
# The same sum as a value of memory `m`, 0 where it holds none of the query's terms: the subquery
# runs only for a memory that holds one. Scanning every memory of a 20k store, the lateral join ran
# it for each (~3 us a row: 70-80 ms of the debugger's 250 ms scan).
BM25_SUM = f"CASE WHEN m.content_tsv @@ {_any_of(':lex')} THEN coalesce(({_SUM}), 0) ELSE 0 END"


def terms(conn: Connection, store: MemoryStore, query: str, budget: int) -> Terms:
    """The query's terms in this store, their weights, and which drive the lookup (core.bm25)."""
    rows = conn.execute(_TERMS, {"query": query, "s": store.id}).all()
    total = next((int(r.df) for r in rows if r.lexeme == ""), 0)
    return choose([(r.lexeme, int(r.df)) for r in rows if r.lexeme != ""], store.total_memories, total, budget)


def params(found: Terms, bm25: Bm25) -> dict[str, Any]:
    """The parameters BM25_JOIN and DRIVERS read."""
    return {
        "lex": found.lexemes,
        "idf": found.idfs,
        "k1": bm25.k1,
        "b": bm25.b,
        "avglen": max(found.average_length, 1e-9),
        "drive": found.drivers,
    }
