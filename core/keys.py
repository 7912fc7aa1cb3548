"""The API key format: a random secret with a visible prefix, kept only as a hash.

A key reads `mx_` followed by 43 URL-safe characters (256 random bits). Its first 11 characters
(`mx_` and 8 more) are its visible prefix, shown in lists so operators can tell keys apart; the
database stores only the SHA-256 of the whole key, and memex_authenticate() compares hashes.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from core import validation
from core.errors import InvalidInput

PREFIX = "mx_"
VISIBLE = 11


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> bytes:
    """What the database stores and compares: memex_authenticate hashes the presented key alike."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def visible_prefix(key: str) -> str:
    return key[:VISIBLE]


def checked_options(name: str, expires_in_days: float | None) -> str:
    """The key's name, checked, once its expiry is: what a caller checks before it creates the
    tenant, user or store a key names, so that a refused key leaves nothing behind."""
    if expires_in_days is not None and (not isinstance(expires_in_days, int | float) or not 0 < expires_in_days <= 3650):
        given = f"{expires_in_days:g}" if isinstance(expires_in_days, int | float) else repr(expires_in_days)  # -3, not -3.0
        raise InvalidInput(f"expires-in-days must be a number of days above 0 and at most 3650, not {given}")
    return validation.label(name, "key name", 100) if name else ""


def key_values(
    name: str, user_id: UUID | str | None, store_id: UUID | str | None, read_only: bool, expires_in_days: float | None
) -> dict[str, Any]:
    """A new key's checked record (`secret`: the key itself, never stored) and its hash."""
    name = checked_options(name, expires_in_days)
    secret = new_key()
    return {
        "secret": secret,
        "name": name,
        "prefix": visible_prefix(secret),
        "digest": digest(secret),
        "user_id": None if user_id is None else validation.uuid(user_id, "user id"),
        "store_id": None if store_id is None else validation.uuid(store_id, "store id"),
        "read_only": bool(read_only),
        "expires_at": None if expires_in_days is None else datetime.now(UTC) + timedelta(days=float(expires_in_days)),
    }
