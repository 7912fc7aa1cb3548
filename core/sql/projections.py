"""Embedding maps kept in the database (migration 010's store_projections): one row per store and
parameters, the ids placed and their coordinates as blobs, read and written whole."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, text

_SAVE = text(
    "INSERT INTO store_projections (tenant_id, store_id, params, model, memory_count, latest_update, computed_at, fit_seconds, dims,"
    " ids, coords) VALUES (:t, :s, :p, :m, :n, :latest, :at, :seconds, :dims, :ids, :coords)"
    " ON CONFLICT (tenant_id, store_id, params) DO UPDATE SET model = EXCLUDED.model, memory_count = EXCLUDED.memory_count,"
    " latest_update = EXCLUDED.latest_update, computed_at = EXCLUDED.computed_at, fit_seconds = EXCLUDED.fit_seconds,"
    " dims = EXCLUDED.dims, ids = EXCLUDED.ids, coords = EXCLUDED.coords"
)


def save(
    conn: Connection,
    tenant_id: UUID,
    store_id: UUID,
    params: str,
    *,
    model: str,
    memory_count: int,
    latest_update: datetime | None,
    computed_at: datetime,
    fit_seconds: float,
    dims: int,
    ids: bytes,
    coords: bytes,
) -> None:
    conn.execute(
        _SAVE,
        {
            "t": tenant_id,
            "s": store_id,
            "p": params,
            "m": model,
            "n": memory_count,
            "latest": latest_update,
            "at": computed_at,
            "seconds": fit_seconds,
            "dims": dims,
            "ids": ids,
            "coords": coords,
        },
    )


def load(conn: Connection, store_id: UUID, params: str) -> Any | None:
    """The stored row (model, memory_count, latest_update, computed_at, fit_seconds, dims, ids, coords), or None."""
    return conn.execute(
        text(
            "SELECT model, memory_count, latest_update, computed_at, fit_seconds, dims, ids, coords FROM store_projections"
            " WHERE store_id = :s AND params = :p"
        ),
        {"s": store_id, "p": params},
    ).one_or_none()


def delete(conn: Connection, store_id: UUID, params: str | None = None) -> int:
    condition = "" if params is None else " AND params = :p"
    return conn.execute(text(f"DELETE FROM store_projections WHERE store_id = :s{condition}"), {"s": store_id, "p": params}).rowcount
