"""The tenant a service object works for, and the scope every call of it runs in."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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

# The transaction a service holds open for several of its calls (TenantBound.one_transaction), per
# thread and task: a service object may be shared by threads that each work in their own.
_held: ContextVar[tuple[TenantBound, Connection] | None] = ContextVar("memex_held_transaction", default=None)


class TenantBound:
    """Base of the service's parts. A call opens the tenant scope once: one transaction as
    memex_app with this tenant set (core.db.Database.tenant), or, for a service made from an API
    key, with the key checked by PostgreSQL and its scope set (Database.with_key). A call that
    embeds reads the store's model in a first scope, embeds outside any transaction (a model call
    must not hold a connection), then works in a second scope that checks the model is still the
    store's. `actor` names who acts, for the history of what changes (a key names itself)."""

    def __init__(
        self,
        db: Database,
        tenant_id: UUID | str,
        *,
        actor: str = "python",
        key: str | None = None,
        interface: str = "python",
        analyst: str | None = None,
    ):
        self.db = db
        self.tenant_id = validation.uuid(tenant_id, "tenant id")
        self.actor = actor
        self.interface = interface  # python, cli, api, mcp, explorer: what the retrieval log says searched
        self._key = key
        self.principal: Principal | None = None
        self.analyst = analyst  # an explorer's analyst: every transaction enters the tenant as them
        self.role: str | None = None  # the analyst's role here: viewer, editor or admin

    @classmethod
    def for_key(cls, db: Database, key: str, interface: str = "api") -> Self:
        """The service of whatever tenant this API key belongs to, every transaction of it in the
        key's scope. Unauthenticated for an unknown, revoked or expired key."""
        with db.with_key(key) as (_, principal):
            pass
        svc = cls(db, principal.tenant_id, actor=f"key {principal.key_id} {principal.key_name}".rstrip(), key=key, interface=interface)
        svc.principal = principal
        return svc

    @classmethod
    def for_analyst(cls, db: Database, email: str, tenant_id: UUID | str) -> Self:
        """The service of a tenant as an analyst sees it: every transaction asks PostgreSQL again
        whether the analyst may open the tenant (a revoked membership applies at once) and in
        which role. NotFound when they may not, as for a tenant that does not exist."""
        svc = cls(db, tenant_id, actor=f"analyst {email}", interface="explorer", analyst=email)
        with db.as_analyst(email, svc.tenant_id) as (_, role):
            svc.role = role
        return svc

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """The tenant scope: for the service's own methods (and tests that probe RLS with raw SQL).
        Inside one_transaction(), the transaction it holds."""
        held = _held.get()
        if held is not None and held[0] is self:
            yield held[1]
        elif self.analyst is not None:
            with self.db.as_analyst(self.analyst, self.tenant_id) as (conn, _):
                yield conn
        elif self._key is not None:
            with self.db.with_key(self._key) as (conn, _):
                yield conn
        else:
            with self.db.tenant(self.tenant_id, self.actor) as conn:
                yield conn

    @contextmanager
    def one_transaction(self) -> Iterator[None]:
        """Every call of this service inside the block runs in one transaction, committed at its
        end (rolled back if it raises): an API request that resolves its store and then searches
        presents its key once and commits once. Not for calls that embed: a model call must not
        hold a connection. A MemoryStore read inside the block is current for the rest of it:
        search takes it as is instead of reading it again."""
        if _held.get() is not None:
            raise RuntimeError("one_transaction() is already open in this thread")
        with self.transaction() as conn:
            token = _held.set((self, conn))
            try:
                yield
            finally:
                _held.reset(token)

    def scope_key(self) -> tuple[str | None, str | None, UUID]:
        """What decides this service's scope: its API key, else its analyst, and the tenant. Two
        services with the same key open the same scope (core.service.logwriter groups by it)."""
        return (self._key, self.analyst, self.tenant_id)

    def in_one_transaction(self) -> bool:
        """Whether this call runs inside this service's one_transaction()."""
        held = _held.get()
        return held is not None and held[0] is self

    @property
    def read_only(self) -> bool:
        return (self.principal is not None and self.principal.read_only) or self.role == "viewer"

    def may(self, action: str) -> bool:
        """Whether this caller may `write` (add, edit, curate, import) or `manage` (users, stores,
        keys of the tenant): what the explorer's pages ask before they show an action."""
        if action == "write":
            return not self.read_only
        if action == "manage":
            return self.role in (None, "admin") and not self.read_only
        raise ValueError(f"unknown action {action!r}")

    def require(self, action: str) -> None:
        """Forbidden, worded for this caller, unless it may do `action` (see may)."""
        if not self.may(action):
            raise Forbidden(_refusal(self))

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


def _guard(action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def checked(*args: P.args, **kwargs: P.kwargs) -> R:
            svc = args[0]
            if isinstance(svc, TenantBound):
                svc.require(action)
            return method(*args, **kwargs)

        return checked

    return decorate


def _refusal(svc: TenantBound) -> str:
    if svc.principal is not None:
        return "this API key is read-only"
    if svc.role == "viewer":
        return "a viewer may look, not change"
    return f"only an admin of this tenant may do this, not an {svc.role}"


# A method that changes something: a read-only API key or a viewer is refused before any work
# (the database refuses them too, migrations 008 and 012; this says so in words).
writes = _guard("write")
# A method that manages the tenant (its users, stores, keys, log retention): tenant admins only.
manages = _guard("manage")
