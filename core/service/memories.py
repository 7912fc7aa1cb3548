"""Memories: add (one, a batch embedded in one request, or many with their vectors through COPY),
read, list, change, expire, archive, delete."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import numpy as np

from core import validation
from core.errors import Conflict, InvalidInput, NotFound
from core.fields import FIELDS, MemoryColumns, NewMemory
from core.models import SORTABLE, Memory, MemoryPage, MemoryStore
from core.service import indexing
from core.service.base import UNSET, TenantBound, embed_texts, writes
from core.sql import memories, stores
from core.sql.bulk import CHUNK_ROWS
from core.status import ARCHIVED, EXPIRED, LIVE

MAX_PAGE = 10_000
CHECKS = {f.name: f.check for f in FIELDS}


def check_batch(items: Iterable[NewMemory | dict[str, Any]], dim: int) -> list[NewMemory]:
    """Every item checked (a dict is read as NewMemory's fields); the first bad one is named."""
    items = list(items)
    checked = []
    for n, item in enumerate(items, start=1):
        try:
            checked.append((item if isinstance(item, NewMemory) else NewMemory.from_mapping(item)).checked(dim))
        except InvalidInput as exc:
            if len(items) == 1:
                raise
            raise InvalidInput(f"memory {n} of the batch: {exc}") from None
    if len({item.id for item in checked}) != len(checked):
        raise InvalidInput("the batch contains the same memory id twice")
    return checked


def with_vectors(store: MemoryStore, items: list[NewMemory]) -> MemoryColumns:
    """The items as columns, each with its vector: given ones as they are, the rest embedded with
    the store's model in one request (outside any transaction)."""
    missing = [i for i, item in enumerate(items) if item.embedding is None]
    vectors = np.zeros((len(items), store.embedding_dim), dtype=np.float32)
    for i, item in enumerate(items):
        if item.embedding is not None:
            vectors[i] = item.embedding
    if missing:
        vectors[missing] = embed_texts(store, [items[i].content for i in missing])
    return MemoryColumns.from_memories(items, vectors)


class MemoryOps(TenantBound):
    def add_memory(
        self,
        store_id: UUID | str,
        content: str,
        memory_type: str = "fact",
        source: str | None = None,
        importance: float = 0.5,
        metadata: dict[str, Any] | None = None,
        *,
        expires_at: datetime | str | None = None,
        created_at: datetime | str | None = None,
        id: UUID | str | None = None,
        embedding: Sequence[float] | np.ndarray | None = None,
    ) -> Memory:
        """The seed's addMemory: embed the content with the store's model and store it."""
        item = NewMemory(content, memory_type, source, importance, metadata, expires_at, created_at, id, embedding)
        return self.add_memories(store_id, [item])[0]

    @writes
    def add_memories(self, store_id: UUID | str, items: Iterable[NewMemory | dict[str, Any]]) -> list[Memory]:
        """A batch: every item checked first, one embedding request, one transaction (all or
        nothing). An item with the id of a memory of this store updates it."""
        store = self._store(store_id)
        checked = check_batch(items, store.embedding_dim)
        if not checked:
            return []
        rows = with_vectors(store, checked)
        with self.transaction() as conn:
            store = stores.same_model(conn, store)
            memories.write(conn, self.tenant_id, store, rows)
            written = memories.get_many(conn, [item.id for item in checked])  # type: ignore[misc]
        if len(rows) >= memories.COPY_MIN_ROWS:
            indexing.schedule(self, store.id, store.total_memories + len(rows))
        return [written[item.id] for item in checked]  # type: ignore[index]

    @writes
    def bulk_add_memories(self, store_id: UUID | str, rows: MemoryColumns | Sequence[NewMemory], *, chunk_rows: int = CHUNK_ROWS) -> int:
        """Add (or update by id) many memories with their embeddings, through binary COPY, in one
        transaction: all or nothing. Returns the rows written. `rows`: MemoryColumns (fastest, no
        object per row) or NewMemory objects, each with its embedding."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            store = stores.fetch(conn, store_id)
            if isinstance(rows, MemoryColumns):
                columns = rows.checked(store.embedding_dim)
            else:
                items = list(rows)
                for n, item in enumerate(items, start=1):
                    if item.embedding is None:
                        raise InvalidInput(f"memory {n}: bulk ingest needs its embedding (add_memories embeds)")
                checked = check_batch(items, store.embedding_dim)
                columns = MemoryColumns.from_memories(checked, [m.embedding for m in checked])  # type: ignore[misc]
            store = stores.same_model(conn, store)
            memories.write(conn, self.tenant_id, store, columns, chunk_rows=chunk_rows)
        if len(columns) >= memories.COPY_MIN_ROWS:
            indexing.schedule(self, store.id, store.total_memories + len(columns))
        return len(columns)

    def get_memory(self, memory_id: UUID | str) -> Memory:
        memory_id = validation.uuid(memory_id, "memory id")
        with self.transaction() as conn:
            memory = memories.get(conn, memory_id)
        if memory is None:
            raise NotFound(f"memory {memory_id} not found in this tenant")
        return memory

    def get_memories(self, memory_ids: Iterable[UUID | str]) -> list[Memory]:
        """The memories of these ids that exist in this tenant, in the order asked."""
        ids = [validation.uuid(m, "memory id") for m in memory_ids]
        with self.transaction() as conn:
            found = memories.get_many(conn, ids)
        return [found[i] for i in ids if i in found]

    @writes
    def update_memory(
        self,
        memory_id: UUID | str,
        *,
        content: str = UNSET,
        memory_type: str = UNSET,
        source: str | None = UNSET,
        importance: float = UNSET,
        metadata: dict[str, Any] = UNSET,
        expires_at: datetime | str | None = UNSET,
        archived: bool = UNSET,
        if_updated_at: datetime | str | None = None,
    ) -> Memory:
        """Change the fields passed; new content is re-embedded with the store's model.

        The change applies only to the memory as it was read (or, with `if_updated_at`, as the
        caller last saw it): an edit committed meanwhile by someone else raises Conflict and
        nothing is written, instead of one of the two edits silently winning."""
        memory_id = validation.uuid(memory_id, "memory id")
        seen = validation.timestamp(if_updated_at, "if_updated_at")
        with self.transaction() as conn:
            current = memories.get(conn, memory_id)
            if current is None:
                raise NotFound(f"memory {memory_id} not found in this tenant")
            store = stores.fetch(conn, current.store_id)
        if seen is not None and seen != current.updated_at:
            raise _changed_meanwhile(memory_id)
        changes: dict[str, Any] = {}
        for name, value in (
            ("content", content),
            ("memory_type", memory_type),
            ("source", source),
            ("importance", importance),
            ("metadata", metadata),
            ("expires_at", expires_at),
            ("archived", archived),
        ):
            if value is not UNSET:
                value = CHECKS[name](value)
                if value != getattr(current, name):
                    changes[name] = value
        if "content" in changes:
            changes["embedding"] = embed_texts(store, [changes["content"]])[0]
        if not changes:
            return current
        with self.transaction() as conn:
            if "embedding" in changes:
                stores.same_model(conn, store)
            updated = memories.update(conn, memory_id, changes, if_updated_at=current.updated_at)
            if updated is None and memories.get(conn, memory_id) is None:
                raise NotFound(f"memory {memory_id} not found in this tenant")
        if updated is None:
            raise _changed_meanwhile(memory_id)
        return updated

    @writes
    def _update_many(self, memory_ids: Iterable[UUID | str], assignments: str, params: dict[str, Any]) -> int:
        ids = [validation.uuid(m, "memory id") for m in memory_ids]
        with self.transaction() as conn:
            return memories.update_many(conn, ids, assignments, params)

    def expire_memories(self, memory_ids: Iterable[UUID | str], at: datetime | str | None = None) -> int:
        """Set the expiry (now by default): search and default listings skip the memory from then on.

        Expiring now never moves an earlier expiry later: `now()` is the time a transaction began,
        so a second "expire now" would hand an expired memory back, for a moment, to every
        transaction that began before it (found by the 8-thread load test)."""
        when = validation.timestamp(at, "expires_at")
        if when is None:
            return self._update_many(memory_ids, "expires_at = least(expires_at, now())", {})
        return self._update_many(memory_ids, "expires_at = :at", {"at": when})

    def set_archived(self, memory_ids: Iterable[UUID | str], archived: bool = True) -> int:
        """Archive (search skips it, nothing is deleted) or bring back."""
        return self._update_many(memory_ids, "archived = :a", {"a": bool(archived)})

    def adjust_importance(self, memory_ids: Iterable[UUID | str], delta: float) -> int:
        """Raise or lower importance by `delta`, kept inside [0, 1]."""
        delta = validation.similarity(delta, "importance change")
        return self._update_many(memory_ids, "importance = least(1, greatest(0, importance + :d))", {"d": delta})

    def delete_memory(self, memory_id: UUID | str) -> None:
        memory_id = validation.uuid(memory_id, "memory id")
        if self.delete_memories([memory_id]) == 0:
            raise NotFound(f"memory {memory_id} not found in this tenant")

    @writes
    def delete_memories(self, memory_ids: Iterable[UUID | str]) -> int:
        """Delete memories (and their relationships); returns how many existed."""
        ids = [validation.uuid(m, "memory id") for m in memory_ids]
        with self.transaction() as conn:
            return memories.delete(conn, ids)

    @writes
    def purge_expired(self, store_id: UUID | str | None = None) -> int:
        """Delete expired memories, of one store or of the whole tenant."""
        store = None if store_id is None else validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            return memories.purge_expired(conn, store)

    @writes
    def set_usage(self, usage: Sequence[tuple[UUID | str, int, datetime | None]]) -> int:
        """Access counts and last-access times as given: a usage history loaded from elsewhere
        (the demo data). Usage, not an edit."""
        rows = [(validation.uuid(i, "memory id"), int(n), validation.timestamp(at, "last_accessed")) for i, n, at in usage]
        with self.transaction() as conn:
            return memories.set_usage(conn, rows)

    def list_memories(
        self,
        store_id: UUID | str,
        *,
        memory_types: Sequence[str] | None = None,
        sources: Sequence[str] | None = None,
        metadata: dict[str, Any] | None = None,
        text_contains: str | None = None,
        created_after: datetime | str | None = None,
        created_before: datetime | str | None = None,
        min_importance: float | None = None,
        max_importance: float | None = None,
        include_expired: bool = False,
        archived: bool | None = None,
        order_by: str = "created_at",
        descending: bool = True,
        limit: int = 100,
        offset: int = 0,
        after: tuple[Any, UUID | str] | None = None,
    ) -> MemoryPage:
        """One page of a store's memories matching every filter given, and the total matching.

        `text_contains` matches the content or the metadata's text, case-insensitively. Statuses
        (core.status): live ones always; expired ones with `include_expired`; archived ones with
        `archived` None (both) or True (archived only). Pages go by `offset`, or by `after`: the
        `order_by` value and id of the last memory of the previous page (keyset pagination).
        """
        store_id = validation.uuid(store_id, "store id")
        limit = validation.limit(limit, maximum=MAX_PAGE)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be a whole number >= 0, not {offset!r}")
        if order_by not in SORTABLE:
            raise InvalidInput(f"cannot sort by {order_by!r}; choose one of {', '.join(SORTABLE)}")
        statuses = [ARCHIVED] if archived else [LIVE, *([EXPIRED] if include_expired else []), *([ARCHIVED] if archived is None else [])]
        condition, params = memories.where_listing(
            store_id,
            memory_types=memory_types,
            sources=sources,
            metadata_json=json.dumps(validation.metadata(metadata)) if metadata else None,
            text_contains=text_contains,
            created_after=validation.timestamp(created_after, "created_after"),
            created_before=validation.timestamp(created_before, "created_before"),
            min_importance=None if min_importance is None else validation.unit_interval(min_importance, "min_importance"),
            max_importance=None if max_importance is None else validation.unit_interval(max_importance, "max_importance"),
            statuses=statuses,
        )
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            last = None if after is None else (after[0], validation.uuid(after[1], "cursor id"))
            items, total = memories.list_page(conn, condition, params, order_by, descending, limit, offset, last)
        return MemoryPage(items=items, total=total, offset=offset, limit=limit)

    def all_memories(self, store_id: UUID | str) -> list[Memory]:
        """Every memory of a store, whatever its status, oldest first, without vectors."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            return memories.in_store(conn, store_id)

    def memory_table(self, store_id: UUID | str) -> list[tuple[Any, ...]]:
        """Every memory of a store, whatever its status, newest first, as rows of
        core.models.TABLE_COLUMNS: what a table or chart of a whole store starts from."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            return memories.table(conn, store_id)

    def store_embeddings(self, store_id: UUID | str, *, include_expired: bool = True) -> tuple[list[Memory], np.ndarray]:
        """Every memory of a store with its vector, for maps, graphs and duplicate detection."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            store = stores.fetch(conn, store_id)
            statuses = None if include_expired else [LIVE, ARCHIVED]
            return memories.with_vectors(conn, store_id, store.embedding_dim, statuses=statuses)


def _changed_meanwhile(memory_id: UUID) -> Conflict:
    return Conflict(f"memory {memory_id} was changed by someone else since it was read; nothing was written: reload it and try again")
