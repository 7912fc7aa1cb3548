"""Memory stores: one per (tenant, user, store name), each with its embedding model."""

from __future__ import annotations

from uuid import UUID

import numpy as np

from core import validation
from core.config import get_settings
from core.embeddings import get_embedder, resolve_model
from core.errors import Conflict, Forbidden, NotFound
from core.keys import key_values
from core.models import ApiKey, MemoryStore, Progress, StoreStats
from core.service.base import TenantBound, manages
from core.sql import analysts, stores

REEMBED_BATCH = 256


class StoreOps(TenantBound):
    @manages
    def get_or_create_store(
        self,
        user_id: UUID | str,
        store_name: str = "default",
        embedding_model: str | None = None,
        embedding_dim: int | None = None,
    ) -> MemoryStore:
        """The seed's getOrCreateStore: creating touches nothing else, finding marks it accessed.

        A model named here must match the store's if it exists already: a store's vectors all
        come from one model.
        """
        user_id = validation.uuid(user_id, "user id")
        store_name = validation.label(store_name, "store name", 100)
        model = embedding_model or get_settings().default_embedding_model
        _, dim = resolve_model(model, embedding_dim)
        with self.transaction() as conn:
            if not stores.user_exists(conn, user_id):
                raise NotFound(f"user {user_id} not found in this tenant")
            store = stores.upsert(conn, self.tenant_id, user_id, store_name, model, dim)
        if embedding_model and (store.embedding_model, store.embedding_dim) != (embedding_model, dim):
            raise Conflict(f"store {store_name!r} uses {store.embedding_model} ({store.embedding_dim}d), not {embedding_model} ({dim}d)")
        return store

    def get_store(self, store_id: UUID | str) -> MemoryStore:
        return self._store(store_id)

    def find_store(self, user_id: UUID | str, store_name: str) -> MemoryStore | None:
        with self.transaction() as conn:
            return stores.find(conn, validation.uuid(user_id, "user id"), store_name)

    def list_stores(self, user_id: UUID | str | None = None) -> list[MemoryStore]:
        with self.transaction() as conn:
            return stores.list_all(conn, None if user_id is None else validation.uuid(user_id, "user id"))

    @manages
    def rename_store(self, store_id: UUID | str, store_name: str) -> MemoryStore:
        store_id = validation.uuid(store_id, "store id")
        store_name = validation.label(store_name, "store name", 100)
        with self.transaction() as conn:
            store = stores.fetch(conn, store_id)
            if stores.name_taken(conn, store.user_id, store_name, store_id):
                raise Conflict(f"this user already has a store named {store_name!r}")
            return stores.rename(conn, store_id, store_name)

    @manages
    def delete_store(self, store_id: UUID | str) -> int:
        """Deletes the store with its memories and their relationships; returns the memories removed."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            removed = stores.delete(conn, store_id)
        if removed is None:
            raise NotFound(f"memory store {store_id} not found in this tenant")
        return removed

    @manages
    def set_store_model(
        self,
        store_id: UUID | str,
        embedding_model: str,
        embedding_dim: int | None = None,
        *,
        reembed: bool = False,
        progress: Progress | None = None,
    ) -> MemoryStore:
        """Change a store's model. A store with memories changes only with `reembed=True`, which
        embeds every memory with the new model and swaps all vectors in one transaction; a write
        to the store meanwhile refuses the swap (nothing is changed, run it again)."""
        store_id = validation.uuid(store_id, "store id")
        _, dim = resolve_model(embedding_model, embedding_dim)
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            rows = stores.contents(conn, store_id)
            before = stores.snapshot(conn, store_id)
        if rows and not reembed:
            raise Conflict(f"the store holds {len(rows)} memories embedded with its current model; re-embed them all to change it")
        embedder = get_embedder(embedding_model, dim)
        vectors: list[tuple[UUID, np.ndarray]] = []
        for start in range(0, len(rows), REEMBED_BATCH):
            batch = rows[start : start + REEMBED_BATCH]
            vectors += zip([i for i, _ in batch], embedder.embed([c for _, c in batch]))
            if progress:
                progress(len(vectors), len(rows))
        with self.transaction() as conn:
            stores.fetch(conn, store_id, lock="FOR UPDATE")  # writers of the store wait from here (same_model)
            if stores.snapshot(conn, store_id) != before:
                raise Conflict("memories of the store changed while it was re-embedded; nothing was changed, run it again")
            return stores.set_model(conn, store_id, embedding_model, dim, vectors)

    def tenant_keys(self) -> list[ApiKey]:
        """The API keys of this tenant, for its admins (records and prefixes, never a secret)."""
        self._require_analyst_admin()
        with self.transaction() as conn:
            return analysts.tenant_keys(conn, self.tenant_id)

    @manages
    def create_tenant_key(
        self,
        name: str = "",
        *,
        user_id: UUID | str | None = None,
        store_id: UUID | str | None = None,
        read_only: bool = False,
        expires_in_days: float | None = None,
    ) -> tuple[UUID, str]:
        """A new API key of this tenant made by its admin: its id and the key, shown only now."""
        self._require_analyst_admin()
        values = key_values(name, user_id, store_id, read_only, expires_in_days)
        with self.transaction() as conn:
            return analysts.create_tenant_key(conn, values), values["secret"]

    @manages
    def revoke_tenant_key(self, key_id: UUID | str) -> None:
        self._require_analyst_admin()
        key_id = validation.uuid(key_id, "key id")
        with self.transaction() as conn:
            if not analysts.revoke_tenant_key(conn, key_id):
                raise NotFound(f"API key {key_id} not found in this tenant")

    def _require_analyst_admin(self) -> None:
        if self.analyst is None:
            raise Forbidden("keys are managed by the tenant's admins in the explorer, or by operators (memex keys)")

    def store_stats(self, store_id: UUID | str) -> StoreStats:
        """Counts by status (live + expired + archived = total), type and source, and usage."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            return stores.stats(conn, store_id)
