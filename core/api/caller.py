"""Who is calling, and which store a request means: the API key decides the tenant (PostgreSQL
resolves it), the request may name a user and store where the key is not bound to them."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from uuid import UUID

from core import validation
from core.db import Database
from core.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from core.models import MemoryStore, Principal, StoreName
from core.service import MemoryService

MAX_KEY_CHARS = 200
DEFAULT_STORE = "default"


class Callers:
    """MemoryService objects for API keys. Every transaction of such a service presents its key
    to PostgreSQL again (revocation applies to the next request at once); what is kept here a
    few seconds is only which tenant a key named, to build the object without a round trip."""

    def __init__(self, db: Database, ttl_s: float = 30.0, size: int = 1024):
        self.db = db
        self.ttl_s = ttl_s
        self.size = size
        self._seen: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def service(self, key: str | None, interface: str = "api", *, fresh: bool = False) -> MemoryService:
        """The service of `key`; `fresh` asks PostgreSQL now even if the key was seen lately (for
        a check that is all a request does: the MCP endpoint's authentication)."""
        key = _checked(key)
        svc = None if fresh else self.seen(key, interface)
        if svc is not None:
            return svc
        principal = MemoryService.for_key(self.db, key).principal
        assert principal is not None
        with self._lock:
            self._seen[key] = (time.monotonic(), principal)
            self._seen.move_to_end(key)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return self._service(key, principal, interface)

    def seen(self, key: str | None, interface: str = "api") -> MemoryService | None:
        """The service of a key PostgreSQL resolved in the last `ttl_s` seconds, without asking it
        (no connection: an async route may call this); None when service() must ask."""
        key = _checked(key)
        with self._lock:
            seen = self._seen.get(key)
        if seen is None or time.monotonic() - seen[0] > self.ttl_s:
            return None
        return self._service(key, seen[1], interface)

    def _service(self, key: str, principal: Principal, interface: str) -> MemoryService:
        svc = MemoryService(self.db, principal.tenant_id, actor=f"key {principal.key_id}", key=key, interface=interface)
        svc.principal = principal
        return svc


def _checked(key: str | None) -> str:
    """A key worth presenting to PostgreSQL: present, and no longer than any key memex makes."""
    if not key:
        raise Unauthenticated("missing API key: send Authorization: Bearer <key>")
    if len(key) > MAX_KEY_CHARS:
        raise Unauthenticated("invalid API key")
    return key


def resolve_store(
    svc: MemoryService, user: str | None, store: str | None, *, create: bool, embedding_model: str | None = None
) -> MemoryStore:
    """The store a request means. A key bound to a store or user fixes it (naming another is
    refused); otherwise `store` is a store id, or a name (`default` when absent) of `user`'s
    stores. With `create`, a missing user and store are made (the first write creates them, as
    the original getOrCreateStore did), a new store with `embedding_model` (else the default)."""
    principal = svc.principal
    assert principal is not None
    if principal.store_id is not None:
        bound = svc.get_store(principal.store_id)
        if store is not None and store not in (str(bound.id), bound.store_name):
            raise Forbidden(f"this API key is bound to store {bound.store_name!r}")
        if user is not None and principal.user_id is not None:
            _same_user(svc, principal.user_id, user)
        return bound
    store_id = validation.maybe_uuid(store) if store is not None else None
    if store_id is not None:
        found = svc.get_store(store_id)
        if principal.user_id is not None and found.user_id != principal.user_id:
            raise NotFound(f"memory store {store_id} not found in this tenant")
        return found
    if principal.user_id is not None:
        owner = svc.get_user(principal.user_id)
        if user is not None:
            _same_user(svc, principal.user_id, user)
    elif user is None:
        raise InvalidInput("user: name the user (this API key is not bound to one)")
    else:
        owner = svc.find_user(user, create=create)
    name = store or DEFAULT_STORE
    if create:
        return svc.get_or_create_store(owner.id, name, embedding_model=embedding_model)
    found_store = svc.find_store(owner.id, validation.label(name, "store name", 100))
    if found_store is None:
        raise NotFound(f"user {owner.name!r} has no store {name!r}")
    return found_store


def import_target(svc: MemoryService, user: str | None, store: str | None) -> MemoryStore | StoreName:
    """The store an import writes to, as resolve_store finds it; a missing one (or its missing
    user) by name instead, for the import to create in its own transaction: a refused file
    leaves no empty store behind. A store named by id, or a key's bound store, must exist."""
    try:
        return resolve_store(svc, user, store, create=False)
    except NotFound:
        principal = svc.principal
        assert principal is not None
        if principal.store_id is not None or (store is not None and validation.maybe_uuid(store) is not None):
            raise
        owner = str(principal.user_id) if principal.user_id is not None else user
        assert owner is not None  # resolve_store refused an unbound key that names no user
        return StoreName(owner, store or DEFAULT_STORE)


def _same_user(svc: MemoryService, bound: UUID, named: str) -> None:
    user = svc.get_user(bound)
    if named not in (str(user.id), user.name):
        raise Forbidden(f"this API key is bound to user {user.name!r}")
