"""The tenant a service object works for, and the transaction every call of it runs in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from uuid import UUID

from sqlalchemy import Connection, text

from core import validation
from core.db import Database


class _Unset:
    """Marks an argument the caller did not pass (None is a value: 'clear this field')."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()


class TenantBound:
    """Base of the service's parts: each call is one transaction as memex_app in this tenant."""

    def __init__(self, db: Database, tenant_id: UUID | str):
        self.db = db
        self.tenant_id = validation.uuid(tenant_id, "tenant id")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.db.tenant(self.tenant_id) as conn:
            yield conn

    def session_identity(self) -> tuple[str, str]:
        """(role, tenant) as PostgreSQL reports them inside this service's transactions."""
        with self.transaction() as conn:
            role, tenant = conn.execute(text("SELECT current_user, current_setting('app.current_tenant_id', true)")).one()
        return role, tenant
