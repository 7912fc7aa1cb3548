"""Memory stores: one per (tenant, user, store name), each with its embedding model."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, Row, text

from core.errors import Conflict, NotFound
from core.models import MemoryStore, StoreStats
from core.status import STATUS_SQL, STATUSES

COLUMNS = "id, tenant_id, user_id, store_name, embedding_model, embedding_dim, total_memories, last_accessed, created_at"


def store_from_row(row: Row[Any]) -> MemoryStore:
    return MemoryStore(**row._mapping)


def fetch(conn: Connection, store_id: UUID, *, lock: str = "") -> MemoryStore:
    """The store; NotFound if this tenant has no such store. `lock` (a row-lock clause such as
    "FOR UPDATE") holds the row until the transaction ends."""
    row = conn.execute(text(f"SELECT {COLUMNS} FROM memory_stores WHERE id = :id {lock}"), {"id": store_id}).one_or_none()
    if row is None:
        raise NotFound(f"memory store {store_id} not found in this tenant")
    return store_from_row(row)


def same_model(conn: Connection, store: MemoryStore) -> MemoryStore:
    """In a write transaction: the store still has the model its new vectors came from.

    Vectors are embedded before the transaction (a model call must not hold a connection), so a
    model change may commit in between; two models of one size would pass every constraint. The
    store row stays locked until commit, so a model change waits for the write instead. The lock
    is the one the counter trigger takes on the same row at the end of the insert (FOR NO KEY
    UPDATE): a weaker one would have to be upgraded there, and two writers doing that deadlock.
    """
    current = fetch(conn, store.id, lock="FOR NO KEY UPDATE")
    if (current.embedding_model, current.embedding_dim) != (store.embedding_model, store.embedding_dim):
        raise Conflict(f"the store's embedding model changed to {current.embedding_model} meanwhile; nothing was written, try again")
    return current


def user_exists(conn: Connection, user_id: UUID) -> bool:
    return bool(conn.scalar(text("SELECT 1 FROM users WHERE id = :id"), {"id": user_id}))


def upsert(conn: Connection, tenant_id: UUID, user_id: UUID, name: str, model: str, dim: int) -> MemoryStore:
    """The seed's getOrCreateStore: creating touches nothing else, finding marks it accessed."""
    row = conn.execute(
        text(
            "INSERT INTO memory_stores (tenant_id, user_id, store_name, embedding_model, embedding_dim)"
            " VALUES (:t, :u, :name, :model, :dim)"
            " ON CONFLICT (tenant_id, user_id, store_name) DO UPDATE SET last_accessed = now()"
            f" RETURNING {COLUMNS}"
        ),
        {"t": tenant_id, "u": user_id, "name": name, "model": model, "dim": dim},
    ).one()
    return store_from_row(row)


def find(conn: Connection, user_id: UUID, name: str) -> MemoryStore | None:
    row = conn.execute(
        text(f"SELECT {COLUMNS} FROM memory_stores WHERE user_id = :u AND store_name = :n"), {"u": user_id, "n": name}
    ).one_or_none()
    return store_from_row(row) if row else None


def list_all(conn: Connection, user_id: UUID | None) -> list[MemoryStore]:
    where = " WHERE user_id = :u" if user_id is not None else ""
    rows = conn.execute(text(f"SELECT {COLUMNS} FROM memory_stores{where} ORDER BY store_name, created_at"), {"u": user_id})
    return [store_from_row(r) for r in rows]


def name_taken(conn: Connection, user_id: UUID, name: str, except_id: UUID) -> bool:
    sql = "SELECT 1 FROM memory_stores WHERE user_id = :u AND store_name = :n AND id <> :id"
    return bool(conn.scalar(text(sql), {"u": user_id, "n": name, "id": except_id}))


def rename(conn: Connection, store_id: UUID, name: str) -> MemoryStore:
    row = conn.execute(
        text(f"UPDATE memory_stores SET store_name = :n WHERE id = :id RETURNING {COLUMNS}"), {"n": name, "id": store_id}
    ).one()
    return store_from_row(row)


def delete(conn: Connection, store_id: UUID) -> int | None:
    """Delete the store with its memories; the number of memories removed, None if no such store."""
    count = conn.scalar(text("SELECT count(*) FROM memories WHERE store_id = :id"), {"id": store_id})
    if conn.execute(text("DELETE FROM memory_stores WHERE id = :id"), {"id": store_id}).rowcount == 0:
        return None
    return int(count or 0)


def contents(conn: Connection, store_id: UUID) -> list[tuple[UUID, str]]:
    """(id, content) of every memory of the store, by id: what a re-embed embeds."""
    return [
        (r.id, r.content) for r in conn.execute(text("SELECT id, content FROM memories WHERE store_id = :s ORDER BY id"), {"s": store_id})
    ]


def snapshot(conn: Connection, store_id: UUID) -> tuple[Any, ...]:
    """What changes when any memory of the store is added, removed or edited."""
    return tuple(conn.execute(text("SELECT count(*), max(updated_at) FROM memories WHERE store_id = :s"), {"s": store_id}).one())


def set_model(conn: Connection, store_id: UUID, model: str, dim: int, vectors: list[tuple[UUID, np.ndarray]]) -> MemoryStore:
    """Give the store a new model and its memories their new vectors, in the caller's transaction
    (the dimension may change: the store foreign key is checked at commit)."""
    conn.execute(text("SET CONSTRAINTS memories_store_fk DEFERRED"))
    row = conn.execute(
        text(f"UPDATE memory_stores SET embedding_model = :m, embedding_dim = :dim WHERE id = :id RETURNING {COLUMNS}"),
        {"m": model, "dim": dim, "id": store_id},
    ).one()
    if vectors:
        conn.execute(
            text("UPDATE memories SET embedding = :e, embedding_dim = :dim, updated_at = now() WHERE id = :id"),
            [{"id": i, "e": v, "dim": dim} for i, v in vectors],
        )
    return store_from_row(row)


def stats(conn: Connection, store_id: UUID) -> StoreStats:
    """A store's figures; its statuses (core.status) add up to its total."""
    agg = conn.execute(
        text(
            "SELECT count(*) AS total, avg(importance)::float AS mean_importance,"
            " coalesce(sum(access_count), 0) AS total_accesses,"
            " count(*) FILTER (WHERE access_count = 0) AS never_accessed,"
            " min(created_at) AS oldest, max(created_at) AS newest"
            " FROM memories WHERE store_id = :s"
        ),
        {"s": store_id},
    ).one()
    params = {"s": store_id}
    by_status = dict.fromkeys(STATUSES, 0) | dict(
        conn.execute(text(f"SELECT {STATUS_SQL}, count(*) FROM memories WHERE store_id = :s GROUP BY 1"), params).all()
    )
    by_type: dict[str, int] = dict(
        conn.execute(text("SELECT memory_type, count(*) FROM memories WHERE store_id = :s GROUP BY 1 ORDER BY 2 DESC, 1"), params).all()
    )
    by_source: dict[str, int] = dict(
        conn.execute(
            text("SELECT coalesce(source, '(none)'), count(*) FROM memories WHERE store_id = :s GROUP BY 1 ORDER BY 2 DESC, 1"), params
        ).all()
    )
    relationships: dict[str, int] = dict(
        conn.execute(
            text(
                "SELECT r.relationship_type, count(*) FROM memory_relationships r"
                " JOIN memories m ON m.tenant_id = r.tenant_id AND m.id = r.source_memory_id"
                " WHERE m.store_id = :s GROUP BY 1 ORDER BY 2 DESC, 1"
            ),
            params,
        ).all()
    )
    return StoreStats(
        store_id=store_id,
        total=agg.total,
        live=by_status["live"],
        expired=by_status["expired"],
        archived=by_status["archived"],
        by_type=by_type,
        by_source=by_source,
        relationships_by_type=relationships,
        mean_importance=agg.mean_importance,
        total_accesses=int(agg.total_accesses),
        never_accessed=agg.never_accessed,
        oldest=agg.oldest,
        newest=agg.newest,
    )
