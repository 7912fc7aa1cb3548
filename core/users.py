"""Users of a tenant. Tenant-scoped rows, so the application role manages them under RLS."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Row, text

from core import validation
from core.errors import Conflict, NotFound
from core.models import User
from core.scope import TenantBound

_COLUMNS = "id, tenant_id, name, created_at"


def _user(row: Row) -> User:
    return User(id=row.id, tenant_id=row.tenant_id, name=row.name, created_at=row.created_at)


class UserOps(TenantBound):
    def create_user(self, name: str) -> User:
        name = validation.label(name, "user name", 100)
        with self.transaction() as conn:
            row = conn.execute(
                text(f"INSERT INTO users (tenant_id, name) VALUES (:t, :name) ON CONFLICT DO NOTHING RETURNING {_COLUMNS}"),
                {"t": self.tenant_id, "name": name},
            ).one_or_none()
        if row is None:
            raise Conflict(f"user {name!r} already exists in this tenant")
        return _user(row)

    def list_users(self) -> list[User]:
        with self.transaction() as conn:
            return [_user(r) for r in conn.execute(text(f"SELECT {_COLUMNS} FROM users ORDER BY name"))]

    def get_user(self, user_id: UUID | str) -> User:
        user_id = validation.uuid(user_id, "user id")
        with self.transaction() as conn:
            row = conn.execute(text(f"SELECT {_COLUMNS} FROM users WHERE id = :id"), {"id": user_id}).one_or_none()
        if row is None:
            raise NotFound(f"user {user_id} not found in this tenant")
        return _user(row)

    def find_user(self, name_or_id: str | UUID, *, create: bool = False) -> User:
        """A user by UUID or name; with `create`, a missing name is created."""
        user_id = validation.maybe_uuid(name_or_id)
        if user_id is not None:
            return self.get_user(user_id)
        name = validation.label(name_or_id, "user name", 100)
        with self.transaction() as conn:
            row = conn.execute(text(f"SELECT {_COLUMNS} FROM users WHERE name = :n"), {"n": name}).one_or_none()
        if row is not None:
            return _user(row)
        if not create:
            raise NotFound(f"user {name!r} not found in this tenant (pass --create to create it)")
        try:
            return self.create_user(name)
        except Conflict:  # created by another process meanwhile
            return self.find_user(name)

    def rename_user(self, user_id: UUID | str, name: str) -> User:
        user_id = validation.uuid(user_id, "user id")
        name = validation.label(name, "user name", 100)
        with self.transaction() as conn:
            if conn.scalar(text("SELECT 1 FROM users WHERE name = :n AND id <> :id"), {"n": name, "id": user_id}):
                raise Conflict(f"user {name!r} already exists in this tenant")
            row = conn.execute(
                text(f"UPDATE users SET name = :n WHERE id = :id RETURNING {_COLUMNS}"), {"n": name, "id": user_id}
            ).one_or_none()
        if row is None:
            raise NotFound(f"user {user_id} not found in this tenant")
        return _user(row)

    def delete_user(self, user_id: UUID | str) -> None:
        """Deletes the user with their stores, memories and relationships."""
        user_id = validation.uuid(user_id, "user id")
        with self.transaction() as conn:
            if conn.execute(text("DELETE FROM users WHERE id = :id"), {"id": user_id}).rowcount == 0:
                raise NotFound(f"user {user_id} not found in this tenant")
