"""Tenant administration and API keys: work above any one tenant, so it runs on the owner connection."""

from __future__ import annotations

from uuid import UUID

from core import validation
from core.db import Database
from core.errors import ConfigError, Conflict, InvalidInput, NotFound
from core.keys import key_values
from core.models import Analyst, ApiKey, Tenant
from core.passwords import hash_password
from core.sql import analysts, keys, log, tenants


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
        raise NotFound(f"tenant {name!r} not found")
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
    values = key_values(name, user_id, store_id, read_only, expires_in_days)
    with db.owner(tenant_id) as conn:
        record = keys.insert(conn, tenant_id, **{k: v for k, v in values.items() if k != "secret"})
    return record, values["secret"]


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


ROLES = ("viewer", "editor", "admin")


def _email(email: str) -> str:
    address = validation.label(email, "email", 320).lower()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise InvalidInput(f"{address!r} is not an email address")
    return address


def add_analyst(db: Database, email: str, password: str | None = None, *, operator: bool = False) -> Analyst:
    """A new analyst: with a password, a local account; without, signed in by OpenID Connect."""
    email = _email(email)
    hashed = None if password is None else hash_password(password)
    with db.owner() as conn:
        made = analysts.add(conn, email, hashed, operator)
    if made is None:
        raise Conflict(f"analyst {email} already exists")
    return made


def set_analyst(db: Database, email: str, *, password: str | None = None, operator: bool | None = None) -> None:
    """A new password (it also unlocks the account), or the operator flag on or off."""
    email = _email(email)
    hashed = None if password is None else hash_password(password)
    with db.owner() as conn:
        if not analysts.update(conn, email, password_hash=hashed, operator=operator):
            raise NotFound(f"analyst {email} not found")


def remove_analyst(db: Database, email: str) -> None:
    email = _email(email)
    with db.owner() as conn:
        if not analysts.remove(conn, email):
            raise NotFound(f"analyst {email} not found")


def grant(db: Database, email: str, tenant_id: UUID | str, role: str) -> None:
    """Let an analyst open a tenant as viewer, editor or admin (a second grant changes the role)."""
    email = _email(email)
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    tenant_id = validation.uuid(tenant_id, "tenant id")
    with db.owner() as conn:
        if not analysts.grant(conn, email, tenant_id, role):
            raise NotFound(f"analyst {email} not found")


def revoke(db: Database, email: str, tenant_id: UUID | str) -> None:
    """End an analyst's membership of a tenant: their next page shows nothing of it."""
    email = _email(email)
    tenant_id = validation.uuid(tenant_id, "tenant id")
    with db.owner() as conn:
        if not analysts.revoke(conn, email, tenant_id):
            raise NotFound(f"analyst {email} is not a member of tenant {tenant_id}")


def list_analysts(db: Database) -> list[Analyst]:
    with db.owner() as conn:
        return analysts.list_all(conn)
