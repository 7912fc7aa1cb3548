"""API keys, on the owner connection: memex_app has no privilege on the table (migration 008);
it only presents a key to memex_authenticate() (core.db.Database.with_key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, text

from core.models import ApiKey

COLUMNS = "id, tenant_id, name, prefix, user_id, store_id, read_only, expires_at, created_at, last_used_at, revoked_at"


def _key(row: Row[Any]) -> ApiKey:
    return ApiKey(**row._mapping)


def insert(
    conn: Connection,
    tenant_id: UUID,
    *,
    name: str,
    prefix: str,
    digest: bytes,
    user_id: UUID | None,
    store_id: UUID | None,
    read_only: bool,
    expires_at: datetime | None,
) -> ApiKey:
    row = conn.execute(
        text(
            "INSERT INTO api_keys (tenant_id, name, prefix, secret_sha256, user_id, store_id, read_only, expires_at)"
            f" VALUES (:t, :name, :prefix, :digest, :u, :s, :ro, :exp) RETURNING {COLUMNS}"
        ),
        {"t": tenant_id, "name": name, "prefix": prefix, "digest": digest, "u": user_id, "s": store_id, "ro": read_only, "exp": expires_at},
    ).one()
    return _key(row)


def list_all(conn: Connection, tenant_id: UUID | None) -> list[ApiKey]:
    where = " WHERE tenant_id = :t" if tenant_id else ""
    return [_key(r) for r in conn.execute(text(f"SELECT {COLUMNS} FROM api_keys{where} ORDER BY created_at, id"), {"t": tenant_id})]


def revoke(conn: Connection, key_id: UUID) -> ApiKey | None:
    """Revoke a key (kept, for the record of who used it); None when there is no such key."""
    row = conn.execute(
        text(f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id RETURNING {COLUMNS}"), {"id": key_id}
    ).one_or_none()
    return _key(row) if row else None
