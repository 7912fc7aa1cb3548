"""Tenant administration: the only tenant-wide work, so it runs on the owner connection."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Row, text

from core import validation
from core.db import Database
from core.errors import ConfigError, Conflict, NotFound
from core.models import Tenant

_COLUMNS = "id, name, created_at"


def _tenant(row: Row) -> Tenant:
    return Tenant(id=row.id, name=row.name, created_at=row.created_at)


def create_tenant(db: Database, name: str) -> Tenant:
    name = validation.label(name, "tenant name", 100)
    with db.owner() as conn:
        row = conn.execute(
            text(f"INSERT INTO tenants (name) VALUES (:n) ON CONFLICT DO NOTHING RETURNING {_COLUMNS}"), {"n": name}
        ).one_or_none()
    if row is None:
        raise Conflict(f"tenant {name!r} already exists")
    return _tenant(row)


def list_tenants(db: Database) -> list[Tenant]:
    with db.owner() as conn:
        return [_tenant(r) for r in conn.execute(text(f"SELECT {_COLUMNS} FROM tenants ORDER BY name"))]


def get_tenant(db: Database, tenant_id: UUID | str) -> Tenant:
    """A tenant by id. Works without the owner connection: memex_app sees its own tenant row."""
    tenant_id = validation.uuid(tenant_id, "tenant id")
    with db.tenant(tenant_id) as conn:
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM tenants WHERE id = :id"), {"id": tenant_id}).one_or_none()
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return _tenant(row)


def find_tenant(db: Database, name_or_id: str | UUID, *, create: bool = False) -> Tenant:
    """A tenant by UUID or by name (names need the owner connection); `create` makes a missing name."""
    tenant_id = validation.maybe_uuid(name_or_id)
    if tenant_id is not None:
        return get_tenant(db, tenant_id)
    name = validation.label(name_or_id, "tenant name", 100)
    if db.admin is None:
        raise ConfigError(f"tenant {name!r} given by name: pass its UUID, or set MEMEX_ADMIN_DATABASE_URL to resolve names")
    with db.owner() as conn:
        row = conn.execute(text(f"SELECT {_COLUMNS} FROM tenants WHERE name = :n"), {"n": name}).one_or_none()
    if row is not None:
        return _tenant(row)
    if not create:
        raise NotFound(f"tenant {name!r} not found (pass --create to create it)")
    try:
        return create_tenant(db, name)
    except Conflict:  # created by another process meanwhile
        return find_tenant(db, name)


def rename_tenant(db: Database, tenant_id: UUID | str, name: str) -> Tenant:
    tenant_id = validation.uuid(tenant_id, "tenant id")
    name = validation.label(name, "tenant name", 100)
    with db.owner() as conn:
        if conn.scalar(text("SELECT 1 FROM tenants WHERE name = :n AND id <> :id"), {"n": name, "id": tenant_id}):
            raise Conflict(f"tenant {name!r} already exists")
        row = conn.execute(
            text(f"UPDATE tenants SET name = :n WHERE id = :id RETURNING {_COLUMNS}"), {"n": name, "id": tenant_id}
        ).one_or_none()
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return _tenant(row)


def delete_tenant(db: Database, tenant_id: UUID | str) -> None:
    """Deletes the tenant and, by cascade, its users, stores, memories and relationships."""
    tenant_id = validation.uuid(tenant_id, "tenant id")
    with db.owner(tenant_id) as conn:
        if conn.execute(text("DELETE FROM tenants WHERE id = :id"), {"id": tenant_id}).rowcount == 0:
            raise NotFound(f"tenant {tenant_id} not found")
