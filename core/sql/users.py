"""Users of a tenant: tenant-scoped rows, managed by the application role under RLS."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, text

from core.models import User

COLUMNS = "id, tenant_id, name, created_at"


def _user(row: Row[Any]) -> User:
    return User(id=row.id, tenant_id=row.tenant_id, name=row.name, created_at=row.created_at)


def insert(conn: Connection, tenant_id: UUID, name: str) -> User | None:
    """A new user; None when the name is taken."""
    row = conn.execute(
        text(f"INSERT INTO users (tenant_id, name) VALUES (:t, :name) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"),
        {"t": tenant_id, "name": name},
    ).one_or_none()
    return _user(row) if row else None


def list_all(conn: Connection) -> list[User]:
    return [_user(r) for r in conn.execute(text(f"SELECT {COLUMNS} FROM users ORDER BY name"))]


def get(conn: Connection, user_id: UUID) -> User | None:
    row = conn.execute(text(f"SELECT {COLUMNS} FROM users WHERE id = :id"), {"id": user_id}).one_or_none()
    return _user(row) if row else None


def by_name(conn: Connection, name: str) -> User | None:
    row = conn.execute(text(f"SELECT {COLUMNS} FROM users WHERE name = :n"), {"n": name}).one_or_none()
    return _user(row) if row else None


def rename(conn: Connection, user_id: UUID, name: str) -> User | None:
    """None when there is no such user; the caller checks the name is free first."""
    row = conn.execute(text(f"UPDATE users SET name = :n WHERE id = :id RETURNING {COLUMNS}"), {"n": name, "id": user_id}).one_or_none()
    return _user(row) if row else None


def name_taken(conn: Connection, name: str, except_id: UUID) -> bool:
    return bool(conn.scalar(text("SELECT 1 FROM users WHERE name = :n AND id <> :id"), {"n": name, "id": except_id}))


def delete(conn: Connection, user_id: UUID) -> bool:
    """Deletes the user with their stores, memories and relationships (cascade)."""
    return conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id}).rowcount > 0
