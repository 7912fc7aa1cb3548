"""The tenant a service object works for, and the scope every call of it runs in."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final
from uuid import UUID

import numpy as np
from sqlalchemy import Connection

from core import validation
from core.db import Database
from core.embeddings import get_embedder
from core.models import MemoryStore
from core.sql import stores, tenants


class _Unset:
    """Marks an argument the caller did not pass (None is a value: 'clear this field')."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()


class TenantBound:
    """Base of the service's parts. A call opens the tenant scope once: one transaction as
    memex_app with this tenant set (core.db.Database.tenant). A call that embeds reads the store's
    model in a first scope, embeds outside any transaction (a model call must not hold a
    connection), then works in a second scope that checks the model is still the store's."""

    def __init__(self, db: Database, tenant_id: UUID | str):
        self.db = db
        self.tenant_id = validation.uuid(tenant_id, "tenant id")

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The tenant scope: for the service's own methods (and tests that probe RLS with raw SQL)."""
        with self.db.tenant(self.tenant_id) as conn:
            yield conn

    def _store(self, store_id: UUID | str) -> MemoryStore:
        """A store, read in a scope of its own: for calls that embed before they write."""
        with self.transaction() as conn:
            return stores.fetch(conn, validation.uuid(store_id, "store id"))

    def session_identity(self) -> tuple[str, str]:
        """(role, tenant) as PostgreSQL reports them inside this service's transactions."""
        with self.transaction() as conn:
            return tenants.session_identity(conn)


def embed_texts(store: MemoryStore, texts: list[str]) -> np.ndarray:
    """Vectors of `store`'s model for these texts, in one request."""
    return get_embedder(store.embedding_model, store.embedding_dim).embed(texts)
