"""Users of a tenant."""

from __future__ import annotations

from uuid import UUID

from core import validation
from core.errors import Conflict, NotFound
from core.models import Tenant, TenantFigures, User
from core.service.base import TenantBound, manages
from core.sql import tenants, users


class UserOps(TenantBound):
    def get_tenant(self) -> Tenant:
        """This service's own tenant, read in its scope (row-level security shows no other)."""
        with self.transaction() as conn:
            found = tenants.get(conn, self.tenant_id)
        if found is None:
            raise NotFound(f"tenant {self.tenant_id} not found")
        return found

    def tenant_figures(self) -> TenantFigures:
        """How many users, stores and memories the tenant holds, in one statement."""
        with self.transaction() as conn:
            return tenants.figures(conn)

    @manages
    def create_user(self, name: str) -> User:
        name = validation.label(name, "user name", 100)
        with self.transaction() as conn:
            user = users.insert(conn, self.tenant_id, name)
        if user is None:
            raise Conflict(f"user {name!r} already exists in this tenant")
        return user

    def list_users(self) -> list[User]:
        with self.transaction() as conn:
            return users.list_all(conn)

    def get_user(self, user_id: UUID | str) -> User:
        user_id = validation.uuid(user_id, "user id")
        with self.transaction() as conn:
            user = users.get(conn, user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found in this tenant")
        return user

    def find_user(self, name_or_id: str | UUID, *, create: bool = False) -> User:
        """A user by UUID or name; with `create`, a missing name is created (a name created by
        another process meanwhile is found, not duplicated)."""
        user_id = validation.maybe_uuid(name_or_id)
        if user_id is not None:
            return self.get_user(user_id)
        name = validation.label(name_or_id, "user name", 100)
        with self.transaction() as conn:
            user = users.by_name(conn, name)
            if user is None and create:
                user = users.insert(conn, self.tenant_id, name) or users.by_name(conn, name)
        if user is None:
            raise NotFound(f"user {name!r} not found in this tenant")
        return user

    @manages
    def rename_user(self, user_id: UUID | str, name: str) -> User:
        user_id = validation.uuid(user_id, "user id")
        name = validation.label(name, "user name", 100)
        with self.transaction() as conn:
            if users.name_taken(conn, name, user_id):
                raise Conflict(f"user {name!r} already exists in this tenant")
            user = users.rename(conn, user_id, name)
        if user is None:
            raise NotFound(f"user {user_id} not found in this tenant")
        return user

    @manages
    def delete_user(self, user_id: UUID | str) -> None:
        """Deletes the user with their stores, memories and relationships."""
        user_id = validation.uuid(user_id, "user id")
        with self.transaction() as conn:
            if not users.delete(conn, user_id):
                raise NotFound(f"user {user_id} not found in this tenant")
