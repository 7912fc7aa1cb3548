"""Memories: write (upsert by id, small batches; large ones go through core.sql.bulk), read, list,
change, delete."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, Row, text

from core.errors import InvalidInput
from core.fields import DEFAULTS, NAMES, MemoryColumns
from core.models import SORTABLE, TABLE_COLUMNS, Memory, MemoryStore
from core.search import EXACT_MAX_ROWS
from core.sql import bulk
from core.status import IS_SQL, NOT_EXPIRED_SQL

_MEMORY_FIELDS = tuple(f.name for f in fields(Memory))  # once: dataclasses.fields() per row cost 2x memory_from_row
MEMORY_COLUMNS = ", ".join(_MEMORY_FIELDS)
# Multi-row writes lock their rows in id order first (SELECT ... ORDER BY id FOR UPDATE). Without
# it each statement locks rows in the order its plan visits them (index order, heap order), and
# two of them on the same rows deadlock: expiring while a search counts accesses did, in the
# 8-thread load test (tests/test_reliability_faults.py). In one order they only wait.
IN_ID_ORDER = "id IN (SELECT id FROM memories WHERE {} ORDER BY id FOR UPDATE)"
# From this many memories on, a write goes through core.sql.bulk's binary COPY (same upsert, same
# refusal of another store's id): measured faster in docs/BENCHMARKS.md.
COPY_MIN_ROWS = 64
_WRITTEN = [n for n in NAMES if n != "id"]
# What a write of an existing id does, whichever path writes it (executemany here, COPY in
# core.sql.bulk): update the memory in place, never one of another store (that row is left alone
# and the caller reports the id).
ON_CONFLICT_UPDATE = (
    " ON CONFLICT (tenant_id, id) DO UPDATE SET "
    + ", ".join(f"{n} = EXCLUDED.{n}" for n in _WRITTEN)
    + ", updated_at = now() WHERE memories.store_id = EXCLUDED.store_id"
)
INSERT_COLUMNS = "tenant_id, store_id, embedding_dim, " + ", ".join(NAMES)


def _value_sql(name: str, source: str) -> str:
    """A field's value in an INSERT, from a bound parameter or a staging column (`source`)."""
    if name == "metadata":
        return f"CAST({source} AS jsonb)"
    if name == "created_at":
        return f"coalesce({source}, now())"
    return source


# A new row enters the HNSW graph (`indexed`, migration 010) at once only on this path, the small
# writes of agents, and only for a store above the exact-search size; bulk writes leave it out.
_UPSERT = text(
    f"INSERT INTO memories ({INSERT_COLUMNS}, indexed) VALUES (:tenant_id, :store_id, :dim, "
    + ", ".join(_value_sql(n, f":{n}") for n in NAMES)
    + ", :indexed)"
    + ON_CONFLICT_UPDATE
)


def memory_from_row(row: Row[Any]) -> Memory:
    values = {name: getattr(row, name) for name in _MEMORY_FIELDS}
    values["importance"] = float(values["importance"])
    return Memory(**values)


def write(
    conn: Connection,
    tenant_id: UUID,
    store: MemoryStore,
    rows: MemoryColumns,
    *,
    chunk_rows: int = bulk.CHUNK_ROWS,
    on_chunk: Callable[[int], object] | None = None,
) -> None:
    """Insert or update (by id) checked rows with vectors of `store`'s model. An id that belongs
    to another store of the tenant is refused (InvalidInput) and the transaction rolls back.
    From COPY_MIN_ROWS rows on, the rows go by COPY (copy_in)."""
    assert rows.id is not None  # checked rows carry their ids
    if len(rows) >= COPY_MIN_ROWS:
        copy_in(conn, tenant_id, store, rows.chunks(chunk_rows), on_chunk=on_chunk)
        return
    indexed = store.total_memories + len(rows) > EXACT_MAX_ROWS
    params: list[dict[str, Any]] = []
    for i in range(len(rows)):
        values = {n: (DEFAULTS[n] if getattr(rows, n) is None else getattr(rows, n)[i]) for n in NAMES if n != "embedding"}
        values["metadata"] = json.dumps(values["metadata"] or {})
        params.append(
            values
            | {"embedding": rows.embedding[i], "tenant_id": tenant_id, "store_id": store.id, "dim": store.embedding_dim, "indexed": indexed}
        )
    params.sort(key=lambda p: p["id"])  # existing rows are locked in id order (see IN_ID_ORDER)
    conn.execute(_UPSERT, params)
    foreign = conn.scalar(
        text("SELECT id FROM memories WHERE id = ANY(:ids) AND store_id <> :s ORDER BY id LIMIT 1"),
        {"ids": list(rows.id), "s": store.id},
    )
    if foreign is not None:
        raise foreign_id(foreign)


def copy_in(
    conn: Connection,
    tenant_id: UUID,
    store: MemoryStore,
    chunks: Iterable[MemoryColumns],
    *,
    on_chunk: Callable[[int], object] | None = None,
) -> None:
    """write() by COPY, a chunk of checked rows at a time, each made (by whatever produces them:
    an import reading its file) while the server moves the one before. The rows stay out of the
    HNSW graph (`indexed` false: searched exactly until index_pending); `on_chunk(rows)` is told
    as each chunk lands."""
    move = {"t": tenant_id, "s": store.id, "dim": int(store.embedding_dim)}
    for count in bulk.staged(conn, chunks):
        if conn.execute(_MOVE, move).rowcount != count:
            foreign = conn.scalar(
                text(f"SELECT b.id FROM {bulk.STAGING} b JOIN memories m USING (id) WHERE m.store_id <> :s ORDER BY b.id LIMIT 1"),
                move,
            )
            raise foreign_id(foreign)
        if on_chunk:
            on_chunk(count)


def foreign_id(memory_id: UUID) -> InvalidInput:
    return InvalidInput(
        f"memory id {memory_id} already belongs to another store of this tenant (to copy it, import with new ids: --new-ids, or new_ids=true over HTTP)"
    )


# The COPY path's move from the staging table: the same columns and upsert as _UPSERT.
# ORDER BY id: existing rows are locked in id order, as every multi-row write does.
_MOVE = text(
    f"INSERT INTO memories ({INSERT_COLUMNS}) SELECT :t, :s, :dim, "
    + ", ".join(_value_sql(n, n) for n in NAMES)
    + f" FROM {bulk.STAGING} ORDER BY id"
    + ON_CONFLICT_UPDATE
)


def get(conn: Connection, memory_id: UUID, *, lock: str = "") -> Memory | None:
    row = conn.execute(text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = :id {lock}"), {"id": memory_id}).one_or_none()
    return memory_from_row(row) if row else None


def get_many(conn: Connection, memory_ids: Sequence[UUID], *, lock: bool = False) -> dict[UUID, Memory]:
    """The memories of these ids visible in the tenant, by id (locked in id order with `lock`)."""
    suffix = " ORDER BY id FOR UPDATE" if lock else ""
    rows = conn.execute(text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ANY(:ids){suffix}"), {"ids": list(memory_ids)})
    return {r.id: memory_from_row(r) for r in rows}


def existing_ids(conn: Connection, memory_ids: Sequence[UUID]) -> set[UUID]:
    """Which of these ids the tenant holds. No statement for none: after an import's rows, in its
    transaction, the planner's statistics predate them and it filtered the tenant's rows one by one
    (0.3 s after 20,000) to find nothing."""
    if not memory_ids:
        return set()
    return set(conn.scalars(text("SELECT id FROM memories WHERE id = ANY(:ids)"), {"ids": list(memory_ids)}))


def update(conn: Connection, memory_id: UUID, changes: dict[str, Any], *, if_updated_at: datetime | None = None) -> Memory | None:
    """Apply checked changes; None when the memory is not there, or (with `if_updated_at`) was
    changed since that time."""
    params = {**changes, "id": memory_id, "seen": if_updated_at}
    if "metadata" in params:
        params["metadata"] = json.dumps(params["metadata"])
    assignments = ", ".join(f"{n} = {_value_sql(n, ':' + n) if n == 'metadata' else ':' + n}" for n in changes)
    guard = " AND updated_at = :seen" if if_updated_at is not None else ""
    row = conn.execute(
        text(f"UPDATE memories SET {assignments}, updated_at = now() WHERE id = :id{guard} RETURNING {MEMORY_COLUMNS}"), params
    ).one_or_none()
    return memory_from_row(row) if row else None


def update_many(conn: Connection, memory_ids: Sequence[UUID], assignments: str, params: dict[str, Any]) -> int:
    """One SET clause on many memories, rows locked in id order; returns how many exist."""
    sql = f"UPDATE memories SET {assignments}, updated_at = now() WHERE {IN_ID_ORDER.format('id = ANY(:ids)')}"
    return conn.execute(text(sql), {**params, "ids": list(memory_ids)}).rowcount


def delete(conn: Connection, memory_ids: Sequence[UUID]) -> int:
    """Delete memories (their relationships go by cascade), rows locked in id order."""
    return conn.execute(text(f"DELETE FROM memories WHERE {IN_ID_ORDER.format('id = ANY(:ids)')}"), {"ids": list(memory_ids)}).rowcount


def purge_expired(conn: Connection, store_id: UUID | None) -> int:
    condition = f"NOT {NOT_EXPIRED_SQL}" + (" AND store_id = :s" if store_id else "")
    return conn.execute(text(f"DELETE FROM memories WHERE {IN_ID_ORDER.format(condition)}"), {"s": store_id}).rowcount


def count_access(conn: Connection, memory_ids: Sequence[UUID]) -> None:
    """The seed's access bookkeeping: count and timestamp every memory a search returned. Usage,
    not an edit: updated_at stays. Through memex_record_access() (migration 008), the one write a
    read-only API key may cause; it locks the rows in id order like every multi-row write."""
    if memory_ids:
        conn.execute(text("SELECT memex_record_access(CAST(:ids AS uuid[]))"), {"ids": sorted(memory_ids)})


def set_usage(conn: Connection, usage: Sequence[tuple[UUID, int, datetime | None]]) -> int:
    """Access counts and last-access times as given (a usage history loaded from elsewhere)."""
    return conn.execute(
        text(
            "UPDATE memories SET access_count = u.n, last_accessed = u.at"
            " FROM unnest(CAST(:ids AS uuid[]), CAST(:ns AS int[]), CAST(:ats AS timestamptz[])) AS u(id, n, at)"
            " WHERE memories.id = u.id"
        ),
        {"ids": [u[0] for u in usage], "ns": [u[1] for u in usage], "ats": [u[2] for u in usage]},
    ).rowcount


def where_listing(
    store_id: UUID,
    *,
    memory_types: Sequence[str] | None,
    sources: Sequence[str] | None,
    metadata_json: str | None,
    text_contains: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    min_importance: float | None,
    max_importance: float | None,
    statuses: Sequence[str],
) -> tuple[str, dict[str, Any]]:
    """The WHERE clause of a listing and its parameters (every argument already checked)."""
    where = ["store_id = :store_id", "(" + " OR ".join(IS_SQL[s] for s in statuses) + ")"]
    params: dict[str, Any] = {"store_id": store_id}
    if memory_types:
        where.append("memory_type = ANY(:types)")
        params["types"] = list(memory_types)
    if sources:
        where.append("coalesce(source, '') = ANY(:sources)")
        params["sources"] = [s or "" for s in sources]
    if metadata_json:
        where.append("metadata @> CAST(:meta AS jsonb)")
        params["meta"] = metadata_json
    if text_contains:
        pattern = text_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append("(content ILIKE :pattern OR metadata::text ILIKE :pattern)")
        params["pattern"] = f"%{pattern}%"
    for column, op, name, value in (
        ("created_at", ">=", "after", created_after),
        ("created_at", "<", "before", created_before),
        ("importance", ">=", "min_imp", min_importance),
        ("importance", "<=", "max_imp", max_importance),
    ):
        if value is not None:
            where.append(f"{column} {op} :{name}")
            params[name] = value
    return " AND ".join(where), params


def list_page(
    conn: Connection,
    condition: str,
    params: dict[str, Any],
    order_by: str,
    descending: bool,
    limit: int,
    offset: int,
    after: tuple[Any, UUID] | None = None,
) -> tuple[list[Memory], int]:
    """One page of the memories matching `condition` (from where_listing), and how many match.
    The order is `order_by` (nulls last), then id. `after` (the order value and id of the last row
    of the previous page) starts the page right after that row, whatever was written meanwhile."""
    assert order_by in SORTABLE
    direction, beyond = ("DESC", "<") if descending else ("ASC", ">")
    total = conn.scalar(text(f"SELECT count(*) FROM memories WHERE {condition}"), params)
    page = condition
    if after is not None:
        value, last_id = after
        params = {**params, "after_value": value, "after_id": last_id}
        if value is None:  # the previous page ended among the nulls, which come last
            page += f" AND {order_by} IS NULL AND id > :after_id"
        else:
            page += f" AND ({order_by} {beyond} :after_value OR ({order_by} = :after_value AND id > :after_id) OR {order_by} IS NULL)"
    rows = conn.execute(
        text(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE {page} ORDER BY {order_by} {direction} NULLS LAST, id LIMIT :limit OFFSET :offset"
        ),
        {**params, "limit": limit, "offset": offset},
    )
    return [memory_from_row(r) for r in rows], int(total or 0)


def in_store(conn: Connection, store_id: UUID, *, statuses: Sequence[str] | None = None) -> list[Memory]:
    """Every memory of a store (of these statuses), oldest first, without vectors."""
    condition = "" if statuses is None else " AND (" + " OR ".join(IS_SQL[s] for s in statuses) + ")"
    rows = conn.execute(
        text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE store_id = :s{condition} ORDER BY created_at, id"), {"s": store_id}
    )
    return [memory_from_row(r) for r in rows]


# TABLE_COLUMNS in their order, `id` as text and importance as a float (the frame's types)
_TABLE_CAST = {"id": "id::text", "importance": "importance::float8"}
_TABLE = text(
    f"SELECT {', '.join(_TABLE_CAST.get(c, c) for c in TABLE_COLUMNS)} FROM memories WHERE store_id = :s ORDER BY created_at DESC, id DESC"
)


def table(conn: Connection, store_id: UUID) -> list[tuple[Any, ...]]:
    """Every memory of a store as rows of TABLE_COLUMNS, newest first: plain rows, no Memory
    object each (for 20,000 memories that halves the time, docs/BENCHMARKS.md). Tuples, not
    SQLAlchemy rows: pandas probes each row for attributes, and a row answers a missing one by
    raising, which cost a frame of 20,000 rows 0.3 s."""
    return [tuple(row) for row in conn.execute(_TABLE, {"s": store_id})]


def with_vectors(conn: Connection, store_id: UUID, dim: int, *, statuses: Sequence[str] | None = None) -> tuple[list[Memory], np.ndarray]:
    """Every memory of a store with its vector, oldest first."""
    condition = "" if statuses is None else " AND (" + " OR ".join(IS_SQL[s] for s in statuses) + ")"
    rows = conn.execute(
        text(f"SELECT {MEMORY_COLUMNS}, embedding FROM memories WHERE store_id = :s{condition} ORDER BY created_at, id"), {"s": store_id}
    ).all()
    vectors = np.array([r.embedding.to_numpy() for r in rows], dtype=np.float32).reshape(len(rows), dim)
    return [memory_from_row(r) for r in rows], vectors


def stream_for_export(
    conn: Connection, store_id: UUID, *, embeddings: bool, batch: int = 1000
) -> Iterator[tuple[Memory, np.ndarray | None]]:
    """Every memory of a store, oldest first, read in batches through a server-side cursor."""
    vector = ", embedding" if embeddings else ""
    result = conn.execution_options(yield_per=batch).execute(
        text(f"SELECT {MEMORY_COLUMNS}{vector} FROM memories WHERE store_id = :s ORDER BY created_at, id"), {"s": store_id}
    )
    for row in result:
        yield memory_from_row(row), (row.embedding.to_numpy() if embeddings else None)


def orphan_ids(conn: Connection, store_id: UUID) -> set[UUID]:
    """The store's memories with no relationship at either end (edges to other stores count)."""
    return set(
        conn.scalars(
            text(
                "SELECT m.id FROM memories m WHERE m.store_id = :s AND NOT EXISTS ("
                " SELECT 1 FROM memory_relationships r WHERE r.tenant_id = m.tenant_id"
                " AND (r.source_memory_id = m.id OR r.target_memory_id = m.id))"
            ),
            {"s": store_id},
        )
    )


def index_batch(conn: Connection, store_id: UUID, rows: int) -> int:
    """Put up to `rows` of the store's unindexed memories into the HNSW graph (migration 010),
    locked in id order, skipping rows another transaction holds; returns how many. Neither
    updated_at nor any field a history records changes: it is where a row is searched from."""
    # The rows are picked once, in a CTE: as `id IN (subquery)` the planner may run the locking
    # subquery once per row of memories, and then the LIMIT bounds nothing (120 rows for a batch of 50).
    return conn.execute(
        text(
            "WITH picked AS (SELECT id FROM memories WHERE store_id = :s AND NOT indexed ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED)"
            " UPDATE memories m SET indexed = true FROM picked WHERE m.id = picked.id"
        ),
        {"s": store_id, "n": rows},
    ).rowcount


def unindexed_count(conn: Connection, store_id: UUID) -> int:
    """The store's memories outside the HNSW graph (found through the partial index memories_unindexed)."""
    return int(conn.scalar(text("SELECT count(*) FROM memories WHERE store_id = :s AND NOT indexed"), {"s": store_id}) or 0)


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"


def vectors(conn: Connection, store_id: UUID, dim: int) -> tuple[list[str], np.ndarray]:
    """(ids as text, an (n, dim) float32 matrix) of every memory of the store, oldest first: one
    binary COPY parsed by numpy as fixed-width records (no object per row; a map of 20k reads its
    vectors this way instead of building 20k Memory objects)."""
    raw: Any = conn.connection.driver_connection  # psycopg's connection: COPY is its own API
    with raw.cursor() as cur:
        sql = "COPY (SELECT id, embedding FROM memories WHERE store_id = %s ORDER BY created_at, id) TO STDOUT (FORMAT BINARY)"
        with cur.copy(sql, (store_id,)) as copy:
            data = b"".join(bytes(block) for block in copy)
    if not data.startswith(_COPY_HEADER):
        raise RuntimeError("unexpected COPY output")
    start = 19 + int.from_bytes(data[15:19], "big")  # signature, flags, header extension
    record = np.dtype(
        [("fields", ">i2"), ("id_len", ">i4"), ("id", "S16"), ("v_len", ">i4"), ("dim", ">i2"), ("unused", ">i2"), ("v", ">f4", (dim,))]
    )
    body = data[start:-2]  # the trailer is int16 -1
    if len(body) % record.itemsize:
        raise RuntimeError("COPY records of an unexpected size: a vector of another dimension?")
    rows = np.frombuffer(body, dtype=record)
    if len(rows) and not ((rows["fields"] == 2).all() and (rows["id_len"] == 16).all() and (rows["dim"] == dim).all()):
        raise RuntimeError("COPY records of an unexpected layout")
    hexed = np.ascontiguousarray(rows["id"]).tobytes().hex()  # not .tolist(): numpy strips trailing NUL bytes of S16
    ids = [f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}" for h in (hexed[i : i + 32] for i in range(0, len(hexed), 32))]
    return ids, rows["v"].astype(np.float32)
