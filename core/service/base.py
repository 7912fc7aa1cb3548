"""The tenant a service object works for, and the scope every call of it runs in."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Final, ParamSpec, Self, TypeVar
from uuid import UUID

import numpy as np
from sqlalchemy import Connection

from core import validation
from core.db import Database
from core.embeddings import get_embedder
from core.errors import Forbidden
from core.models import MemoryStore, Principal
from core.sql import stores, tenants


class _Unset:
    """Marks an argument the caller did not pass (None is a value: 'clear this field')."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final[Any] = _Unset()


P = ParamSpec("P")
R = TypeVar("R")


class TenantBound:
    """Base of the service's parts. A call opens the tenant scope once: one transaction as
    memex_app with this tenant set (core.db.Database.tenant), or, for a service made from an API
    key, with the key checked by PostgreSQL and its scope set (Database.with_key). A call that
    embeds reads the store's model in a first scope, embeds outside any transaction (a model call
    must not hold a connection), then works in a second scope that checks the model is still the
    store's. `actor` names who acts, for the history of what changes (a key names itself)."""

    def __init__(self, db: Database, tenant_id: UUID | str, *, actor: str = "python", key: str | None = None, interface: str = "python"):
        self.db = db
        self.tenant_id = validation.uuid(tenant_id, "tenant id")
        self.actor = actor
        self.interface = interface  # python, cli, api, mcp, explorer: what the retrieval log says searched
        self._key = key
        self.principal: Principal | None = None

    @classmethod
    def for_key(cls, db: Database, key: str, interface: str = "api") -> Self:
        """The service of whatever tenant this API key belongs to, every transaction of it in the
        key's scope. Unauthenticated for an unknown, revoked or expired key."""
        with db.with_key(key) as (_, principal):
            pass
        svc = cls(db, principal.tenant_id, actor=f"key {principal.key_id} {principal.key_name}".rstrip(), key=key, interface=interface)
        svc.principal = principal
        return svc

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The tenant scope: for the service's own methods (and tests that probe RLS with raw SQL)."""
        if self._key is not None:
            with self.db.with_key(self._key) as (conn, _):
                yield conn
        else:
            with self.db.tenant(self.tenant_id, self.actor) as conn:
                yield conn

    @property
    def read_only(self) -> bool:
        return self.principal is not None and self.principal.read_only

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


def writes(method: Callable[P, R]) -> Callable[P, R]:
    """Marks a method that changes something: a read-only API key is refused before any work (the
    database refuses it too, migration 008; this says so in words instead of 'not found')."""

    @functools.wraps(method)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        svc = args[0]
        if isinstance(svc, TenantBound) and svc.read_only:
            raise Forbidden("this API key is read-only")
        return method(*args, **kwargs)

    return checked
