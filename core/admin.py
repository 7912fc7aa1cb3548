"""Tenant administration and API keys: work above any one tenant, so it runs on the owner connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from core import validation
from core.db import Database
from core.errors import ConfigError, Conflict, InvalidInput, NotFound
from core.keys import digest, new_key, visible_prefix
from core.models import ApiKey, Tenant
from core.sql import keys, log, tenants


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


def tenant_of_retrieval(db: Database, entry_id: UUID | str) -> Tenant:
    """The tenant a retrieval log entry belongs to (`memex log show ID` names no tenant)."""
    entry_id = validation.uuid(entry_id, "log entry id")
    with db.owner() as conn:
        tenant_id = log.tenant_of(conn, entry_id)
        tenant = None if tenant_id is None else tenants.get(conn, tenant_id)
    if tenant is None:
        raise NotFound(f"log entry {entry_id} not found")
    return tenant


def create_key(
    db: Database,
    tenant_id: UUID | str,
    *,
    name: str = "",
    user_id: UUID | str | None = None,
    store_id: UUID | str | None = None,
    read_only: bool = False,
    expires_in_days: float | None = None,
) -> tuple[ApiKey, str]:
    """A new API key of the tenant (optionally bound to a user and/or store, read-only, expiring):
    the key's record and the key itself, which is shown now and never again."""
    tenant_id = validation.uuid(tenant_id, "tenant id")
    name = validation.label(name, "key name", 100) if name else ""
    user = None if user_id is None else validation.uuid(user_id, "user id")
    store = None if store_id is None else validation.uuid(store_id, "store id")
    if expires_in_days is not None and (not isinstance(expires_in_days, int | float) or not 0 < expires_in_days <= 3650):
        raise InvalidInput(f"expires-in-days must be a number of days from 1 to 3650, not {expires_in_days!r}")
    expires_at = None if expires_in_days is None else datetime.now(UTC) + timedelta(days=float(expires_in_days))
    secret = new_key()
    with db.owner(tenant_id) as conn:
        record = keys.insert(conn, tenant_id, name, visible_prefix(secret), digest(secret), user, store, bool(read_only), expires_at)
    return record, secret


def list_keys(db: Database, tenant_id: UUID | str | None = None) -> list[ApiKey]:
    """Every key (of one tenant), oldest first: prefixes, scopes and dates, never a secret."""
    with db.owner() as conn:
        return keys.list_all(conn, None if tenant_id is None else validation.uuid(tenant_id, "tenant id"))


def revoke_key(db: Database, key_id: UUID | str) -> ApiKey:
    """Revoke a key: the next request with it is refused like an unknown key."""
    key_id = validation.uuid(key_id, "key id")
    with db.owner() as conn:
        record = keys.revoke(conn, key_id)
    if record is None:
        raise NotFound(f"API key {key_id} not found")
    return record
