"""The retrieval log (migration 009): what each search asked and got."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import Connection, Row, text

from core.models import Retrieval

COLUMNS = "id, store_id, at, interface, key_id, key_name, actor, query, mode, params, model, results, near_misses, result_count, latency_ms"


# Who searched, in one word: the API key's name, else the interface (cli, python, explorer).
CALLER = "coalesce(NULLIF(key_name, ''), interface)"
# The ids of what an entry returned: the expression of the index retrieval_log_result_ids (migration 013).
RESULT_IDS = "jsonb_path_query_array(results, '$[*].id')"


def _json(value: Any) -> str:
    """JSON text for a jsonb parameter (orjson: a search's entry is encoded in microseconds)."""
    return orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _entry(row: Row[Any]) -> Retrieval:
    return Retrieval(**row._mapping)


# One statement: synchronous_commit is turned off inside it (no round trip of its own). Sent
# through the driver as it is (psycopg's %(name)s parameters): SQLAlchemy's text() costs ~0.1 ms
# a call for its sixteen parameters (when the log was written inside each search, a tenth of its cost).
_INSERT = (
    "INSERT INTO retrieval_log (tenant_id, id, store_id, at, interface, key_id, key_name, actor, query, mode, params, model,"
    " results, near_misses, result_count, latency_ms) SELECT %(t)s, %(id)s, %(store)s, coalesce(%(at)s, clock_timestamp()),"
    " %(interface)s, CAST(%(key_id)s AS uuid), %(key_name)s, %(actor)s, %(query)s, %(mode)s, CAST(%(params)s AS jsonb), %(model)s,"
    " CAST(%(results)s AS jsonb), CAST(%(near)s AS jsonb), %(count)s, %(latency)s"
    " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS one_round_trip"
)


def insert(conn: Connection, tenant_id: UUID, *entries: Retrieval) -> None:
    """Write entries. The transaction then commits without waiting for the WAL flush: a crash
    may lose the last few entries (and access counts), never a memory, and an otherwise
    read-only search does not pay a disk sync for its log (docs/BENCHMARKS.md)."""
    rows = [
        {
            "t": tenant_id,
            "id": entry.id,
            "store": entry.store_id,
            "at": entry.at,
            "interface": entry.interface,
            "key_id": entry.key_id,
            "key_name": entry.key_name,
            "actor": entry.actor,
            "query": entry.query,
            "mode": entry.mode,
            "params": _json(entry.params),
            "model": entry.model,
            "results": _json(entry.results),
            "near": _json(entry.near_misses),
            "count": entry.result_count,
            "latency": entry.latency_ms,
        }
        for entry in entries
    ]
    conn.exec_driver_sql(_INSERT, rows[0] if len(rows) == 1 else rows)  # one search: no executemany


def get(conn: Connection, entry_id: UUID) -> Retrieval | None:
    row = conn.execute(text(f"SELECT {COLUMNS} FROM retrieval_log WHERE id = :id"), {"id": entry_id}).one_or_none()
    return _entry(row) if row else None


def tenant_of(conn: Connection, entry_id: UUID) -> UUID | None:
    """On the owner connection: the tenant an entry belongs to (`memex log show ID`)."""
    return conn.scalar(text("SELECT tenant_id FROM retrieval_log WHERE id = :id"), {"id": entry_id})


def entries(
    conn: Connection,
    store_id: UUID | None,
    since: datetime | None,
    until: datetime | None,
    contains: str | None,
    empty: bool | None,
    memory_id: UUID | None,
    limit: int,
    offset: int,
    user_id: UUID | None = None,
    caller: str | None = None,
) -> tuple[list[Retrieval], int]:
    """Entries newest first matching every filter given, and how many match."""
    where, params = ["TRUE"], {}
    for condition, name, value in (
        ("store_id = :store", "store", store_id),
        ("store_id IN (SELECT s.id FROM memory_stores s WHERE s.user_id = :user)", "user", user_id),
        ("at >= :since", "since", since),
        ("at < :until", "until", until),
        (
            "query ILIKE :contains",
            "contains",
            None if contains is None else "%" + contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",
        ),
        (f"{RESULT_IDS} @> CAST(:mention AS jsonb)", "mention", None if memory_id is None else json.dumps([str(memory_id)])),
        (f"{CALLER} = :caller", "caller", caller),
    ):
        if value is not None:
            where.append(condition)
            params[name] = value
    if empty is not None:
        where.append("result_count = 0" if empty else "result_count > 0")
    condition = " AND ".join(where)
    total = conn.scalar(text(f"SELECT count(*) FROM retrieval_log WHERE {condition}"), params)
    rows = conn.execute(
        text(f"SELECT {COLUMNS} FROM retrieval_log WHERE {condition} ORDER BY at DESC, id LIMIT :limit OFFSET :offset"),
        {**params, "limit": limit, "offset": offset},
    )
    return [_entry(r) for r in rows], int(total or 0)


def callers(conn: Connection, store_id: UUID | None, user_id: UUID | None) -> list[tuple[str, int]]:
    """Who searched a store (or a user's stores), with how many searches each, busiest first."""
    where = "store_id = :store" if store_id else "store_id IN (SELECT s.id FROM memory_stores s WHERE s.user_id = :user)"
    rows = conn.execute(
        text(f"SELECT {CALLER}, count(*) FROM retrieval_log WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1"),
        {"store": store_id, "user": user_id},
    )
    return [(r[0], int(r[1])) for r in rows]


def prune(conn: Connection, store_id: UUID | None) -> int:
    """Apply each store's retention (days, entries): what it removed."""
    where = " AND s.id = :store" if store_id else ""
    old = conn.execute(
        text(
            "DELETE FROM retrieval_log l USING memory_stores s WHERE s.tenant_id = l.tenant_id AND s.id = l.store_id"
            f" AND s.log_retention_days IS NOT NULL AND l.at < now() - make_interval(days => s.log_retention_days){where}"
        ),
        {"store": store_id},
    ).rowcount
    surplus = conn.execute(
        text(
            "DELETE FROM retrieval_log l USING (SELECT r.id FROM (SELECT l2.id, s.log_retention_entries AS keep,"
            " row_number() OVER (PARTITION BY l2.store_id ORDER BY l2.at DESC, l2.id) AS n"
            " FROM retrieval_log l2 JOIN memory_stores s ON s.tenant_id = l2.tenant_id AND s.id = l2.store_id"
            f" WHERE s.log_retention_entries IS NOT NULL{where}) r WHERE r.n > r.keep) x WHERE l.id = x.id"
        ),
        {"store": store_id},
    ).rowcount
    return int(old) + int(surplus)


def set_retention(conn: Connection, store_id: UUID, days: int | None, entries: int | None) -> None:
    conn.execute(
        text("UPDATE memory_stores SET log_retention_days = :days, log_retention_entries = :entries WHERE id = :id"),
        {"days": days, "entries": entries, "id": store_id},
    )


def retention(conn: Connection, store_id: UUID) -> tuple[int | None, int | None]:
    row = conn.execute(text("SELECT log_retention_days, log_retention_entries FROM memory_stores WHERE id = :id"), {"id": store_id}).one()
    return row[0], row[1]
