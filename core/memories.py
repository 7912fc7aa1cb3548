"""Memories: add (one or a batch, embedded in one request), read, list, change, expire, delete."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import numpy as np
from sqlalchemy import Connection, Row, text

from core import validation
from core.embeddings import get_embedder
from core.errors import InvalidInput, NotFound
from core.models import Memory, MemoryStore
from core.scope import UNSET, TenantBound
from core.stores import fetch_store, same_model

MEMORY_COLUMNS = (
    "id, tenant_id, store_id, content, memory_type, source, importance, access_count, last_accessed,"
    " expires_at, metadata, created_at, updated_at, archived"
)
LIVE = "(expires_at IS NULL OR expires_at > now())"
# Multi-row writes lock their rows in id order first (SELECT ... ORDER BY id FOR UPDATE). Without
# it each statement locks rows in the order its plan visits them (index order, heap order), and
# two of them on the same rows deadlock: expiring while a search counts accesses did, in the
# 8-thread load test (tests/test_reliability_faults.py). In one order they only wait.
IN_ID_ORDER = "id IN (SELECT id FROM memories WHERE {} ORDER BY id FOR UPDATE)"
SORTABLE = ("created_at", "updated_at", "importance", "access_count", "last_accessed", "expires_at", "memory_type", "source")


def memory_from_row(row: Row) -> Memory:
    values = {f.name: getattr(row, f.name) for f in fields(Memory)}
    values["importance"] = float(values["importance"])
    return Memory(**values)


@dataclass(frozen=True)
class NewMemory:
    """A memory to add. Without `embedding` it is embedded with the store's model; with `id`
    an existing memory of that id in the same store is updated instead (imports are idempotent)."""

    content: str
    memory_type: str = "fact"
    source: str | None = None
    importance: float = 0.5
    metadata: dict[str, Any] | None = None
    expires_at: datetime | str | None = None
    created_at: datetime | str | None = None
    id: UUID | str | None = None
    embedding: Sequence[float] | np.ndarray | None = None
    archived: bool = False

    def checked(self, dim: int) -> NewMemory:
        """A copy with every field validated and normalised; raises InvalidInput on the first bad one."""
        return replace(
            self,
            content=validation.content(self.content),
            memory_type=validation.label(self.memory_type, "memory_type", 50),
            source=validation.optional_label(self.source, "source", 100),
            importance=validation.unit_interval(self.importance, "importance"),
            metadata=validation.metadata(self.metadata),
            expires_at=validation.timestamp(self.expires_at, "expires_at"),
            created_at=validation.timestamp(self.created_at, "created_at"),
            id=validation.uuid(self.id, "memory id") if self.id is not None else uuid4(),
            embedding=None if self.embedding is None else validation.embedding(self.embedding, dim),
            archived=validation.flag(self.archived, "archived"),
        )

    @classmethod
    def from_mapping(cls, data: dict[str, Any]) -> NewMemory:
        if not isinstance(data, dict):
            raise InvalidInput(f"a memory must be a NewMemory or a JSON object, not {type(data).__name__}")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise InvalidInput(f"unknown memory field {sorted(unknown)[0]!r}")
        if "content" not in data:
            raise InvalidInput("content is missing")
        return cls(**data)


@dataclass(frozen=True)
class MemoryPage:
    items: list[Memory]
    total: int
    offset: int
    limit: int


# What a write of an existing id does, whichever path writes it (executemany here, COPY in
# core.bulk): update the memory in place, never one of another store (that row is left alone and
# the caller reports the id).
ON_CONFLICT_UPDATE = (
    " ON CONFLICT (tenant_id, id) DO UPDATE SET content = EXCLUDED.content, embedding = EXCLUDED.embedding,"
    " memory_type = EXCLUDED.memory_type, source = EXCLUDED.source, importance = EXCLUDED.importance,"
    " metadata = EXCLUDED.metadata, expires_at = EXCLUDED.expires_at, created_at = EXCLUDED.created_at,"
    " archived = EXCLUDED.archived, updated_at = now()"
    " WHERE memories.store_id = EXCLUDED.store_id"
)
_UPSERT = text(
    "INSERT INTO memories (tenant_id, id, store_id, content, embedding, embedding_dim, memory_type, source,"
    " importance, metadata, expires_at, created_at, archived)"
    " VALUES (:tenant_id, :id, :store_id, :content, :embedding, :dim, :memory_type, :source,"
    " :importance, CAST(:metadata AS jsonb), :expires_at, coalesce(:created_at, now()), :archived)"
    f"{ON_CONFLICT_UPDATE}"
)


def embed_missing(store: MemoryStore, items: list[NewMemory]) -> list[np.ndarray]:
    """Vectors for every item: given ones as they are, the rest from one request to the model."""
    missing = [i for i, item in enumerate(items) if item.embedding is None]
    vectors: list[np.ndarray] = [item.embedding for item in items]  # type: ignore[misc]
    if missing:
        embedded = get_embedder(store.embedding_model, store.embedding_dim).embed([items[i].content for i in missing])
        for i, vector in zip(missing, embedded):
            vectors[i] = vector
    return vectors


# From this many memories on, a write goes through core.bulk's binary COPY (same upsert, same
# refusal of another store's id): measured faster in docs/BENCHMARKS.md.
COPY_MIN_ROWS = 64


def write_memories(conn: Connection, tenant_id: UUID, store: MemoryStore, items: list[NewMemory], vectors: list[np.ndarray]) -> list[Memory]:
    """Insert or update (by id) checked memories inside an open transaction; `vectors` come from
    `store`'s model, which must still be the store's."""
    store = same_model(conn, store)
    ids = [item.id for item in items]
    if len(items) >= COPY_MIN_ROWS and len(set(ids)) == len(ids):
        from core.bulk import MemoryColumns, copy_memories

        copy_memories(conn, tenant_id, store, MemoryColumns.from_memories(items, vectors))
        rows = {r.id: r for r in conn.execute(text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ANY(:ids)"), {"ids": ids})}
        return [memory_from_row(rows[memory_id]) for memory_id in ids]
    params = [
        {
            "tenant_id": tenant_id,
            "id": item.id,
            "store_id": store.id,
            "content": item.content,
            "embedding": vector,
            "dim": store.embedding_dim,
            "memory_type": item.memory_type,
            "source": item.source,
            "importance": item.importance,
            "metadata": json.dumps(item.metadata),
            "expires_at": item.expires_at,
            "created_at": item.created_at,
            "archived": item.archived,
        }
        for item, vector in zip(items, vectors)
    ]
    params.sort(key=lambda p: p["id"])  # existing rows are locked in id order (see IN_ID_ORDER)
    conn.execute(_UPSERT, params)
    rows = {r.id: r for r in conn.execute(text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ANY(:ids)"), {"ids": ids})}
    for memory_id in ids:
        if rows[memory_id].store_id != store.id:
            raise InvalidInput(
                f"memory id {memory_id} already belongs to another store of this tenant (to copy, import with --new-ids)"
            )
    return [memory_from_row(rows[memory_id]) for memory_id in ids]


def update_row(conn: Connection, store: MemoryStore, memory_id: UUID, changes: dict[str, Any]) -> Memory:
    """Apply checked changes to one memory inside an open transaction (a new `embedding` must come
    from `store`'s model)."""
    if "embedding" in changes:
        same_model(conn, store)
    params = {**changes, "id": memory_id}
    if "metadata" in params:
        params["metadata"] = json.dumps(params["metadata"])
    assignments = ", ".join(f"{name} = CAST(:{name} AS jsonb)" if name == "metadata" else f"{name} = :{name}" for name in changes)
    row = conn.execute(
        text(f"UPDATE memories SET {assignments}, updated_at = now() WHERE id = :id RETURNING {MEMORY_COLUMNS}"), params
    ).one_or_none()
    if row is None:
        raise NotFound(f"memory {memory_id} not found in this tenant")
    return memory_from_row(row)


def delete_rows(conn: Connection, memory_ids: Sequence[UUID]) -> int:
    """Delete memories (their relationships go by cascade), rows locked in id order."""
    return conn.execute(text(f"DELETE FROM memories WHERE {IN_ID_ORDER.format('id = ANY(:ids)')}"), {"ids": list(memory_ids)}).rowcount


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

    def add_memories(self, store_id: UUID | str, items: Iterable[NewMemory | dict[str, Any]]) -> list[Memory]:
        """A batch: every item checked first, one embedding request, one transaction (all or nothing)."""
        store_id = validation.uuid(store_id, "store id")
        store = self.get_store(store_id)
        items = list(items)
        checked = []
        for n, item in enumerate(items, start=1):
            try:
                item = item if isinstance(item, NewMemory) else NewMemory.from_mapping(item)
                checked.append(item.checked(store.embedding_dim))
            except InvalidInput as exc:
                if len(items) == 1:
                    raise
                raise InvalidInput(f"memory {n} of the batch: {exc}") from None
        if not checked:
            return []
        if len({item.id for item in checked}) != len(checked):
            raise InvalidInput("the batch contains the same memory id twice")
        vectors = embed_missing(store, checked)
        with self.transaction() as conn:
            return write_memories(conn, self.tenant_id, store, checked, vectors)

    def get_memory(self, memory_id: UUID | str) -> Memory:
        memory_id = validation.uuid(memory_id, "memory id")
        with self.transaction() as conn:
            row = conn.execute(text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = :id"), {"id": memory_id}).one_or_none()
        if row is None:
            raise NotFound(f"memory {memory_id} not found in this tenant")
        return memory_from_row(row)

    def get_memories(self, memory_ids: Iterable[UUID | str]) -> list[Memory]:
        """The memories of these ids that exist in this tenant, in the order asked."""
        ids = [validation.uuid(m, "memory id") for m in memory_ids]
        with self.transaction() as conn:
            rows = {r.id: r for r in conn.execute(text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ANY(:ids)"), {"ids": ids})}
        return [memory_from_row(rows[i]) for i in ids if i in rows]

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
    ) -> Memory:
        """Change the fields passed; new content is re-embedded with the store's model."""
        current = self.get_memory(memory_id)
        store = self.get_store(current.store_id)
        changes: dict[str, Any] = {}
        if content is not UNSET and content != current.content:
            changes["content"] = validation.content(content)
            changes["embedding"] = get_embedder(store.embedding_model, store.embedding_dim).embed_one(changes["content"])
        if memory_type is not UNSET and memory_type != current.memory_type:
            changes["memory_type"] = validation.label(memory_type, "memory_type", 50)
        if source is not UNSET and source != current.source:
            changes["source"] = validation.optional_label(source, "source", 100)
        if importance is not UNSET and importance != current.importance:
            changes["importance"] = validation.unit_interval(importance, "importance")
        if metadata is not UNSET and metadata != current.metadata:
            changes["metadata"] = validation.metadata(metadata)
        if expires_at is not UNSET:
            expires_at = validation.timestamp(expires_at, "expires_at")
            if expires_at != current.expires_at:
                changes["expires_at"] = expires_at
        if archived is not UNSET and archived != current.archived:
            changes["archived"] = validation.flag(archived, "archived")
        if not changes:
            return current
        with self.transaction() as conn:
            return update_row(conn, store, current.id, changes)

    def _update_many(self, memory_ids: Iterable[UUID | str], assignments: str, params: dict[str, Any]) -> int:
        ids = [validation.uuid(m, "memory id") for m in memory_ids]
        with self.transaction() as conn:
            return conn.execute(
                text(f"UPDATE memories SET {assignments}, updated_at = now() WHERE {IN_ID_ORDER.format('id = ANY(:ids)')}"),
                {**params, "ids": ids},
            ).rowcount

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

    def delete_memories(self, memory_ids: Iterable[UUID | str]) -> int:
        """Delete memories (and their relationships); returns how many existed."""
        ids = [validation.uuid(m, "memory id") for m in memory_ids]
        with self.transaction() as conn:
            return delete_rows(conn, ids)

    def purge_expired(self, store_id: UUID | str | None = None) -> int:
        """Delete expired memories, of one store or of the whole tenant."""
        condition = "expires_at <= now()"
        params: dict[str, Any] = {}
        if store_id is not None:
            condition += " AND store_id = :s"
            params["s"] = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            return conn.execute(text(f"DELETE FROM memories WHERE {IN_ID_ORDER.format(condition)}"), params).rowcount

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
    ) -> MemoryPage:
        """One page of a store's memories matching every filter given, and the total matching.

        `text_contains` matches the content or the metadata's text, case-insensitively;
        `archived` None lists both archived and active memories.
        """
        store_id = validation.uuid(store_id, "store id")
        limit = validation.limit(limit, maximum=10_000)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InvalidInput(f"offset must be a whole number >= 0, not {offset!r}")
        if order_by not in SORTABLE:
            raise InvalidInput(f"cannot sort by {order_by!r}; choose one of {', '.join(SORTABLE)}")
        where = ["store_id = :store_id"]
        params: dict[str, Any] = {"store_id": store_id}
        if memory_types:
            where.append("memory_type = ANY(:types)")
            params["types"] = list(memory_types)
        if sources:
            where.append("coalesce(source, '') = ANY(:sources)")
            params["sources"] = [s or "" for s in sources]
        if metadata:
            where.append("metadata @> CAST(:meta AS jsonb)")
            params["meta"] = json.dumps(validation.metadata(metadata))
        if text_contains:
            pattern = text_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            where.append("(content ILIKE :pattern OR metadata::text ILIKE :pattern)")
            params["pattern"] = f"%{pattern}%"
        if created_after is not None:
            where.append("created_at >= :after")
            params["after"] = validation.timestamp(created_after, "created_after")
        if created_before is not None:
            where.append("created_at < :before")
            params["before"] = validation.timestamp(created_before, "created_before")
        if min_importance is not None:
            where.append("importance >= :min_imp")
            params["min_imp"] = validation.unit_interval(min_importance, "min_importance")
        if max_importance is not None:
            where.append("importance <= :max_imp")
            params["max_imp"] = validation.unit_interval(max_importance, "max_importance")
        if not include_expired:
            where.append(LIVE)
        if archived is not None:
            where.append("archived = :archived")
            params["archived"] = bool(archived)
        condition = " AND ".join(where)
        direction = "DESC" if descending else "ASC"
        with self.transaction() as conn:
            fetch_store(conn, store_id)
            total = conn.scalar(text(f"SELECT count(*) FROM memories WHERE {condition}"), params)
            rows = conn.execute(
                text(
                    f"SELECT {MEMORY_COLUMNS} FROM memories WHERE {condition}"
                    f" ORDER BY {order_by} {direction} NULLS LAST, id LIMIT :limit OFFSET :offset"
                ),
                {**params, "limit": limit, "offset": offset},
            )
            items = [memory_from_row(r) for r in rows]
        return MemoryPage(items=items, total=int(total or 0), offset=offset, limit=limit)

    def store_embeddings(self, store_id: UUID | str, *, include_expired: bool = True) -> tuple[list[Memory], np.ndarray]:
        """Every memory of a store with its vector, for maps, graphs and duplicate detection."""
        store_id = validation.uuid(store_id, "store id")
        condition = "" if include_expired else f" AND {LIVE}"
        with self.transaction() as conn:
            store = fetch_store(conn, store_id)
            rows = conn.execute(
                text(f"SELECT {MEMORY_COLUMNS}, embedding FROM memories WHERE store_id = :s{condition} ORDER BY created_at, id"),
                {"s": store_id},
            ).all()
        vectors = np.array([r.embedding.to_numpy() for r in rows], dtype=np.float32).reshape(len(rows), store.embedding_dim)
        return [memory_from_row(r) for r in rows], vectors
