"""The API key format: a random secret with a visible prefix, kept only as a hash.

A key reads `mx_` followed by 43 URL-safe characters (256 random bits). Its first 11 characters
(`mx_` and 8 more) are its visible prefix, shown in lists so operators can tell keys apart; the
database stores only the SHA-256 of the whole key, and memex_authenticate() compares hashes.
"""

from __future__ import annotations

import hashlib
import secrets

PREFIX = "mx_"
VISIBLE = 11


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> bytes:
    """What the database stores and compares: memex_authenticate hashes the presented key alike."""
    return hashlib.sha256(key.encode("utf-8")).digest()


def visible_prefix(key: str) -> str:
    return key[:VISIBLE]
