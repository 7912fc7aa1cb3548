"""A store's memories as a pandas DataFrame, and the curation views over it: what the explorer's
tables and charts start from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd

from core.errors import InvalidInput
from core.models import TABLE_COLUMNS, Memory
from core.status import status_of

FRAME_COLUMNS = [*TABLE_COLUMNS, "status"]


def memory_frame(memories: Sequence[Memory], now: datetime | None = None) -> pd.DataFrame:
    """Memories as rows, in the order given, without vectors; `status` says archived, expired or
    live (core.status) and `id` is text."""
    return table_frame([(str(m.id), *(getattr(m, c) for c in TABLE_COLUMNS[1:])) for m in memories], now)


def table_frame(rows: Sequence[tuple[Any, ...]], now: datetime | None = None) -> pd.DataFrame:
    """Rows of core.models.TABLE_COLUMNS (MemoryOps.memory_table) as memory_frame's frame."""
    now = now or datetime.now(UTC)
    frame = pd.DataFrame.from_records(rows, columns=list(TABLE_COLUMNS), nrows=len(rows))
    frame["status"] = [status_of(archived, expires, now) for archived, expires in zip(frame["archived"], frame["expires_at"], strict=True)]
    for column in ("last_accessed", "expires_at", "created_at", "updated_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _utc(value: date | datetime | pd.Timestamp) -> pd.Timestamp:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def never_retrieved(frame: pd.DataFrame, since: date | datetime) -> pd.DataFrame:
    """Memories no search has returned since `since` (or ever): candidates for archiving. Oldest first."""
    last = pd.to_datetime(frame["last_accessed"], utc=True)
    mask = (frame["access_count"] == 0) | last.isna() | (last < _utc(since))
    return frame[mask].sort_values("created_at", kind="stable")


def expiring(frame: pd.DataFrame, within_days: float, now: datetime | None = None) -> pd.DataFrame:
    """Memories whose expiry falls before now + `within_days`, already expired ones included,
    with `days_left` (negative once expired). Soonest first."""
    if within_days < 0:
        raise InvalidInput(f"within_days must be 0 or more, not {within_days}")
    now_ts = _utc(now or datetime.now(UTC))
    expires = pd.to_datetime(frame["expires_at"], utc=True)
    mask = expires.notna() & (expires <= now_ts + timedelta(days=within_days))
    out = frame[mask].assign(days_left=((expires[mask] - now_ts).dt.total_seconds() / 86400).round(1))
    return out.sort_values("expires_at", kind="stable")


def creation_timeline(frame: pd.DataFrame, by: str, freq: str = "W") -> pd.DataFrame:
    """Memories created per period (`freq`: D, W or M) and per value of `by` (memory_type or source)."""
    if by not in ("memory_type", "source"):
        raise InvalidInput(f"cannot group the timeline by {by!r}")
    if freq not in ("D", "W", "M"):
        raise InvalidInput(f"period must be D, W or M, not {freq!r}")
    created = pd.to_datetime(frame["created_at"], utc=True).dt.tz_localize(None)
    periods = created.dt.to_period(freq).dt.start_time
    keys = frame[by].fillna("(none)")
    counts = pd.DataFrame({"period": periods, by: keys}).groupby(["period", by]).size().reset_index(name="memories")
    return counts.sort_values(["period", by], kind="stable").reset_index(drop=True)


def status_words(frame: pd.DataFrame) -> pd.Series:
    """Each memory's status with its expiry, for tables: "live", "expires 3 Dec 2026",
    "expired 2 Oct 2026" or "archived"."""
    from core.explorer.labels import day

    def words(status: str, expires: pd.Timestamp) -> str:
        if status == "live" and not pd.isna(expires):
            return f"expires {day(expires)}"
        return f"expired {day(expires)}" if status == "expired" else status

    return pd.Series([words(s, e) for s, e in zip(frame["status"], frame["expires_at"])], index=frame.index, dtype=object)
