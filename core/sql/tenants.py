"""Tenants. Only the owner lists, creates, renames and deletes them; memex_app sees its own row."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, text

from core.models import Tenant, TenantFigures

COLUMNS = "id, name, created_at"


def _tenant(row: Row[Any]) -> Tenant:
    return Tenant(id=row.id, name=row.name, created_at=row.created_at)


def insert(conn: Connection, name: str) -> Tenant | None:
    """A new tenant; None when the name is taken."""
    row = conn.execute(
        text(f"INSERT INTO tenants (name) VALUES (:n) ON CONFLICT DO NOTHING RETURNING {COLUMNS}"), {"n": name}
    ).one_or_none()
    return _tenant(row) if row else None


def list_all(conn: Connection) -> list[Tenant]:
    return [_tenant(r) for r in conn.execute(text(f"SELECT {COLUMNS} FROM tenants ORDER BY name"))]


def figures(conn: Connection) -> TenantFigures:
    """The users, stores and memories of the tenant in force (row-level security shows no other's)."""
    row = conn.execute(
        text(
            "SELECT (SELECT count(*) FROM users) AS users, (SELECT count(*) FROM memory_stores) AS stores,"
            " (SELECT coalesce(sum(total_memories), 0) FROM memory_stores) AS memories"
        )
    ).one()
    return TenantFigures(users=row.users, stores=row.stores, memories=row.memories)


def get(conn: Connection, tenant_id: UUID) -> Tenant | None:
    row = conn.execute(text(f"SELECT {COLUMNS} FROM tenants WHERE id = :id"), {"id": tenant_id}).one_or_none()
    return _tenant(row) if row else None


def by_name(conn: Connection, name: str) -> Tenant | None:
    row = conn.execute(text(f"SELECT {COLUMNS} FROM tenants WHERE name = :n"), {"n": name}).one_or_none()
    return _tenant(row) if row else None


def name_taken(conn: Connection, name: str, except_id: UUID) -> bool:
    return bool(conn.scalar(text("SELECT 1 FROM tenants WHERE name = :n AND id <> :id"), {"n": name, "id": except_id}))


def rename(conn: Connection, tenant_id: UUID, name: str) -> Tenant | None:
    row = conn.execute(text(f"UPDATE tenants SET name = :n WHERE id = :id RETURNING {COLUMNS}"), {"n": name, "id": tenant_id}).one_or_none()
    return _tenant(row) if row else None


def delete(conn: Connection, tenant_id: UUID) -> bool:
    """Deletes the tenant and, by cascade, everything it holds."""
    return conn.execute(text("DELETE FROM tenants WHERE id = :id"), {"id": tenant_id}).rowcount > 0


def session_identity(conn: Connection) -> tuple[str, str]:
    """(role, tenant) as PostgreSQL reports them inside the current transaction."""
    role, tenant = conn.execute(text("SELECT current_user, current_setting('app.current_tenant_id', true)")).one()
    return role, tenant
