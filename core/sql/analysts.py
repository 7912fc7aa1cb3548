"""Analysts and their memberships (migration 012). The owner manages them (the functions with a
Connection named `owner`); the explorer, as memex_app, only asks PostgreSQL's functions which
tenants an analyst may open, checks a password, and enters a tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, text

from core.models import Analyst, ApiKey, Membership


def add(owner: Connection, email: str, password_hash: str | None, operator: bool) -> Analyst | None:
    """A new analyst; None when the email is taken."""
    row = owner.execute(
        text("INSERT INTO analysts (email, password_hash, operator) VALUES (:e, :h, :o) ON CONFLICT DO NOTHING RETURNING id"),
        {"e": email, "h": password_hash, "o": operator},
    ).one_or_none()
    return None if row is None else Analyst(row.id, email, operator, password_hash is not None, [])


def update(owner: Connection, email: str, *, password_hash: str | None = None, operator: bool | None = None) -> bool:
    sets: list[str] = []
    params: dict[str, Any] = {"e": email}
    if password_hash is not None:
        sets.append("password_hash = :h, failed_logins = 0, locked_until = NULL")
        params["h"] = password_hash
    if operator is not None:
        sets.append("operator = :o")
        params["o"] = operator
    return owner.execute(text(f"UPDATE analysts SET {', '.join(sets)} WHERE email = :e"), params).rowcount > 0


def remove(owner: Connection, email: str) -> bool:
    return owner.execute(text("DELETE FROM analysts WHERE email = :e"), {"e": email}).rowcount > 0


def grant(owner: Connection, email: str, tenant_id: UUID, role: str) -> bool:
    """Make (or change) a membership; False when there is no such analyst."""
    return (
        owner.execute(
            text(
                "INSERT INTO memberships (analyst_id, tenant_id, role) SELECT id, :t, :r FROM analysts WHERE email = :e"
                " ON CONFLICT (analyst_id, tenant_id) DO UPDATE SET role = EXCLUDED.role"
            ),
            {"e": email, "t": tenant_id, "r": role},
        ).rowcount
        > 0
    )


def revoke(owner: Connection, email: str, tenant_id: UUID) -> bool:
    return (
        owner.execute(
            text("DELETE FROM memberships m USING analysts a WHERE a.id = m.analyst_id AND a.email = :e AND m.tenant_id = :t"),
            {"e": email, "t": tenant_id},
        ).rowcount
        > 0
    )


def list_all(owner: Connection) -> list[Analyst]:
    rows = owner.execute(
        text(
            "SELECT a.id, a.email, a.operator, a.password_hash IS NOT NULL AS local, t.id AS tenant_id, t.name AS tenant, m.role"
            " FROM analysts a LEFT JOIN memberships m ON m.analyst_id = a.id LEFT JOIN tenants t ON t.id = m.tenant_id"
            " ORDER BY a.email, t.name"
        )
    )
    found: dict[UUID, Analyst] = {}
    for r in rows:
        analyst = found.setdefault(r.id, Analyst(r.id, r.email, r.operator, r.local, []))
        if r.tenant_id is not None:
            analyst.memberships.append(Membership(r.tenant_id, r.tenant, r.role))
    return list(found.values())


# As memex_app: the functions of migration 012 ------------------------------------------------------


def tenants_of(conn: Connection, email: str) -> list[Membership]:
    """The tenants an analyst may open, with the role in each (every tenant for an operator)."""
    rows = conn.execute(text("SELECT tenant_id, tenant_name, role FROM memex_analyst_tenants(:e)"), {"e": email})
    return [Membership(r.tenant_id, r.tenant_name, r.role) for r in rows]


def is_operator(conn: Connection, email: str) -> bool:
    return bool(conn.scalar(text("SELECT memex_analyst_is_operator(:e)"), {"e": email}))


def credentials(conn: Connection, email: str) -> tuple[str, datetime | None] | None:
    """(password hash, locked until) of a local account; None for an unknown email or no password."""
    row = conn.execute(text("SELECT password_hash, locked_until FROM memex_analyst_credentials(:e)"), {"e": email}).one_or_none()
    return None if row is None else (row.password_hash, row.locked_until)


def attempt(conn: Connection, email: str, succeeded: bool) -> None:
    conn.execute(text("SELECT memex_analyst_attempt(:e, :ok)"), {"e": email, "ok": succeeded})


def enter(conn: Connection, email: str, tenant_id: UUID) -> str:
    """Enter a tenant for an analyst in this transaction (memex_enter_tenant): the role granted."""
    return str(conn.scalar(text("SELECT memex_enter_tenant(:e, :t)"), {"e": email, "t": tenant_id}))


def tenant_keys(conn: Connection, tenant_id: UUID) -> list[ApiKey]:
    rows = conn.execute(text("SELECT * FROM memex_tenant_keys()"))
    return [ApiKey(tenant_id=tenant_id, **r._mapping) for r in rows]


def create_tenant_key(conn: Connection, values: dict[str, Any]) -> UUID:
    return UUID(
        str(
            conn.scalar(
                text("SELECT memex_tenant_create_key(:name, :prefix, :digest, :user_id, :store_id, :read_only, :expires_at)"), values
            )
        )
    )


def revoke_tenant_key(conn: Connection, key_id: UUID) -> bool:
    return bool(conn.scalar(text("SELECT memex_tenant_revoke_key(:id)"), {"id": key_id}))
