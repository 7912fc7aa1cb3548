"""A store's memories as a pandas DataFrame: what the explorer's tables and charts start from."""

from __future__ import annotations

from uuid import UUID

import pandas as pd
from sqlalchemy import text

from core import validation
from core.service import MemoryService
from core.stores import fetch_store

FRAME_COLUMNS = [
    "id", "content", "memory_type", "source", "importance", "access_count", "last_accessed",
    "expires_at", "created_at", "updated_at", "archived", "metadata", "expired", "status",
]


def memory_frame(svc: MemoryService, store_id: UUID | str) -> pd.DataFrame:
    """Every memory of the store (expired and archived included, `status` says which: archived,
    expired or live), without vectors, newest first."""
    store_id = validation.uuid(store_id, "store id")
    with svc.transaction() as conn:
        fetch_store(conn, store_id)
        rows = conn.execute(
            text(
                "SELECT id, content, memory_type, source, importance::float AS importance, access_count, last_accessed,"
                " expires_at, created_at, updated_at, archived, metadata,"
                " (expires_at IS NOT NULL AND expires_at <= now()) AS expired,"
                " CASE WHEN archived THEN 'archived' WHEN expires_at <= now() THEN 'expired' ELSE 'live' END AS status"
                " FROM memories WHERE store_id = :s ORDER BY created_at DESC, id"
            ),
            {"s": store_id},
        ).all()
    frame = pd.DataFrame([tuple(r) for r in rows], columns=FRAME_COLUMNS)
    frame["id"] = frame["id"].astype(str)
    return frame
