"""Memory history (migration 009): written by the database's own triggers, read here; purge and
prune go through the functions the migration grants."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, text

from core.models import HistoryEvent

COLUMNS = "memory_id, store_id, version, event, at, actor, changes, snapshot, merged_into"


def _event(row: Row[Any]) -> HistoryEvent:
    return HistoryEvent(**row._mapping)


def events(conn: Connection, memory_id: UUID) -> list[HistoryEvent]:
    """Every recorded event of one memory, oldest first."""
    rows = conn.execute(text(f"SELECT {COLUMNS} FROM memory_history WHERE memory_id = :id ORDER BY version"), {"id": memory_id})
    return [_event(r) for r in rows]


def since(conn: Connection, memory_ids: list[UUID], at: datetime) -> list[HistoryEvent]:
    """The events of these memories after a moment, oldest first (what a replay explains)."""
    rows = conn.execute(
        text(f"SELECT {COLUMNS} FROM memory_history WHERE memory_id = ANY(:ids) AND at > :at ORDER BY at, version"),
        {"ids": memory_ids, "at": at},
    )
    return [_event(r) for r in rows]


def in_store(conn: Connection, store_id: UUID, limit: int) -> list[HistoryEvent]:
    """The latest events of a store, newest first."""
    rows = conn.execute(
        text(f"SELECT {COLUMNS} FROM memory_history WHERE store_id = :s ORDER BY at DESC, version DESC LIMIT :n"),
        {"s": store_id, "n": limit},
    )
    return [_event(r) for r in rows]


def mark(conn: Connection, *, event: str = "", merged_into: UUID | None = None) -> None:
    """Tell the history triggers what the next writes of this transaction are (a restore, a merge)."""
    conn.execute(
        text("SELECT set_config('app.history_event', :event, true), set_config('app.merged_into', :into, true)"),
        {"event": event, "into": str(merged_into) if merged_into else ""},
    )


def purge(conn: Connection, memory_id: UUID) -> tuple[int, int, int]:
    """memex_purge_memory: (memories, history events, log entries) removed."""
    row = conn.execute(text("SELECT * FROM memex_purge_memory(:id)"), {"id": memory_id}).one()
    return int(row[0]), int(row[1]), int(row[2])


def prune(conn: Connection, older_than: datetime) -> int:
    return int(conn.scalar(text("SELECT memex_prune_history(:at)"), {"at": older_than}) or 0)
