"""A memory's status, defined once: archived, expired or live.

Archived wins: an archived memory is skipped by search whatever its expiry. Expired means an
expiry at or before now. Everything else is live. Stats, lists, search, export and the explorer
all use these definitions, so their counts add up (live + expired + archived = total); the SQL
expressions and the Python function below say the same thing and a test holds them together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

LIVE: Final = "live"
EXPIRED: Final = "expired"
ARCHIVED: Final = "archived"
STATUSES: Final = (LIVE, EXPIRED, ARCHIVED)

# SQL over the memories table (unqualified columns; now() is the transaction's time).
EXPIRED_SQL: Final = "(expires_at IS NOT NULL AND expires_at <= now())"
NOT_EXPIRED_SQL: Final = "(expires_at IS NULL OR expires_at > now())"
STATUS_SQL: Final = f"(CASE WHEN archived THEN '{ARCHIVED}' WHEN {EXPIRED_SQL} THEN '{EXPIRED}' ELSE '{LIVE}' END)"
IS_SQL: Final = {
    LIVE: f"(NOT archived AND {NOT_EXPIRED_SQL})",
    EXPIRED: f"(NOT archived AND {EXPIRED_SQL})",
    ARCHIVED: "archived",
}


def status_of(archived: bool, expires_at: datetime | None, now: datetime) -> str:
    """The status of a memory with these fields at `now`."""
    if archived:
        return ARCHIVED
    if expires_at is not None and expires_at <= now:
        return EXPIRED
    return LIVE
