"""Tenant administration: the only tenant-wide work, so it runs on the owner connection."""

from __future__ import annotations

from uuid import UUID

from core import validation
from core.db import Database
from core.errors import ConfigError, Conflict, NotFound
from core.models import Tenant
from core.sql import tenants


def create_tenant(db: Database, name: str) -> Tenant:
    name = validation.label(name, "tenant name", 100)
    with db.owner() as conn:
        tenant = tenants.insert(conn, name)
    if tenant is None:
        raise Conflict(f"tenant {name!r} already exists")
    return tenant


def list_tenants(db: Database) -> list[Tenant]:
    with db.owner() as conn:
        return tenants.list_all(conn)


def get_tenant(db: Database, tenant_id: UUID | str) -> Tenant:
    """A tenant by id. Works without the owner connection: memex_app sees its own tenant row."""
    tenant_id = validation.uuid(tenant_id, "tenant id")
    with db.tenant(tenant_id) as conn:
        tenant = tenants.get(conn, tenant_id)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


def find_tenant(db: Database, name_or_id: str | UUID, *, create: bool = False) -> Tenant:
    """A tenant by UUID or by name (names need the owner connection); `create` makes a missing name."""
    tenant_id = validation.maybe_uuid(name_or_id)
    if tenant_id is not None:
        return get_tenant(db, tenant_id)
    name = validation.label(name_or_id, "tenant name", 100)
    if db.admin is None:
        raise ConfigError(f"tenant {name!r} given by name: pass its UUID, or set MEMEX_ADMIN_DATABASE_URL to resolve names")
    with db.owner() as conn:
        tenant = tenants.by_name(conn, name)
        if tenant is None and create:
            tenant = tenants.insert(conn, name) or tenants.by_name(conn, name)  # or made meanwhile by another process
    if tenant is None:
        raise NotFound(f"tenant {name!r} not found (pass --create to create it)")
    return tenant


def rename_tenant(db: Database, tenant_id: UUID | str, name: str) -> Tenant:
    tenant_id = validation.uuid(tenant_id, "tenant id")
    name = validation.label(name, "tenant name", 100)
    with db.owner() as conn:
        if tenants.name_taken(conn, name, tenant_id):
            raise Conflict(f"tenant {name!r} already exists")
        tenant = tenants.rename(conn, tenant_id, name)
    if tenant is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return tenant


def delete_tenant(db: Database, tenant_id: UUID | str) -> None:
    """Deletes the tenant and, by cascade, its users, stores, memories and relationships."""
    tenant_id = validation.uuid(tenant_id, "tenant id")
    with db.owner(tenant_id) as conn:
        if not tenants.delete(conn, tenant_id):
            raise NotFound(f"tenant {tenant_id} not found")
