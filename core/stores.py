"""Memory stores: one per (tenant, user, store name), each with its embedding model."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from sqlalchemy import Connection, Row, text

from core import validation
from core.config import get_settings
from core.embeddings import get_embedder, resolve_model
from core.errors import Conflict, NotFound
from core.models import MemoryStore, StoreStats
from core.scope import TenantBound

_COLUMNS = "id, tenant_id, user_id, store_name, embedding_model, embedding_dim, total_memories, last_accessed, created_at"
REEMBED_BATCH = 256


def _store(row: Row) -> MemoryStore:
    return MemoryStore(**row._mapping)


def fetch_store(conn: Connection, store_id: UUID, *, lock: str = "") -> MemoryStore:
    """The store inside an open tenant transaction; NotFound if this tenant has no such store.
    `lock` (a row-lock clause such as "FOR UPDATE") holds the row until the transaction ends."""
    row = conn.execute(text(f"SELECT {_COLUMNS} FROM memory_stores WHERE id = :id {lock}"), {"id": store_id}).one_or_none()
    if row is None:
        raise NotFound(f"memory store {store_id} not found in this tenant")
    return _store(row)


def same_model(conn: Connection, store: MemoryStore) -> MemoryStore:
    """In a write transaction: the store still has the model its new vectors came from.

    Vectors are embedded before the transaction (a model call must not hold a connection), so a
    model change may commit in between; two models of one size would pass every constraint. The
    store row stays locked until commit, so a model change waits for the write instead. The lock
    is the one the counter trigger takes on the same row at the end of the insert (FOR NO KEY
    UPDATE): a weaker one would have to be upgraded there, and two writers doing that deadlock.
    """
    current = fetch_store(conn, store.id, lock="FOR NO KEY UPDATE")
    if (current.embedding_model, current.embedding_dim) != (store.embedding_model, store.embedding_dim):
        raise Conflict(f"the store's embedding model changed to {current.embedding_model} meanwhile; nothing was written, try again")
    return current


class StoreOps(TenantBound):
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
            if not conn.scalar(text("SELECT 1 FROM users WHERE id = :id"), {"id": user_id}):
                raise NotFound(f"user {user_id} not found in this tenant")
            row = conn.execute(
                text(
                    "INSERT INTO memory_stores (tenant_id, user_id, store_name, embedding_model, embedding_dim)"
                    " VALUES (:t, :u, :name, :model, :dim)"
                    " ON CONFLICT (tenant_id, user_id, store_name) DO UPDATE SET last_accessed = now()"
                    f" RETURNING {_COLUMNS}"
                ),
                {"t": self.tenant_id, "u": user_id, "name": store_name, "model": model, "dim": dim},
            ).one()
        store = _store(row)
        if embedding_model and (store.embedding_model, store.embedding_dim) != (embedding_model, dim):
            raise Conflict(
                f"store {store_name!r} uses {store.embedding_model} ({store.embedding_dim}d), not {embedding_model} ({dim}d)"
            )
        return store

    def get_store(self, store_id: UUID | str) -> MemoryStore:
        with self.transaction() as conn:
            return fetch_store(conn, validation.uuid(store_id, "store id"))

    def find_store(self, user_id: UUID | str, store_name: str) -> MemoryStore | None:
        with self.transaction() as conn:
            row = conn.execute(
                text(f"SELECT {_COLUMNS} FROM memory_stores WHERE user_id = :u AND store_name = :n"),
                {"u": validation.uuid(user_id, "user id"), "n": store_name},
            ).one_or_none()
        return _store(row) if row else None

    def list_stores(self, user_id: UUID | str | None = None) -> list[MemoryStore]:
        query = f"SELECT {_COLUMNS} FROM memory_stores"
        params: dict[str, object] = {}
        if user_id is not None:
            query += " WHERE user_id = :u"
            params["u"] = validation.uuid(user_id, "user id")
        with self.transaction() as conn:
            return [_store(r) for r in conn.execute(text(query + " ORDER BY store_name, created_at"), params)]

    def rename_store(self, store_id: UUID | str, store_name: str) -> MemoryStore:
        store_id = validation.uuid(store_id, "store id")
        store_name = validation.label(store_name, "store name", 100)
        with self.transaction() as conn:
            store = fetch_store(conn, store_id)
            taken = conn.scalar(
                text("SELECT 1 FROM memory_stores WHERE user_id = :u AND store_name = :n AND id <> :id"),
                {"u": store.user_id, "n": store_name, "id": store_id},
            )
            if taken:
                raise Conflict(f"this user already has a store named {store_name!r}")
            row = conn.execute(
                text(f"UPDATE memory_stores SET store_name = :n WHERE id = :id RETURNING {_COLUMNS}"),
                {"n": store_name, "id": store_id},
            ).one()
        return _store(row)

    def delete_store(self, store_id: UUID | str) -> int:
        """Deletes the store with its memories and their relationships; returns the memories removed."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            count = conn.scalar(text("SELECT count(*) FROM memories WHERE store_id = :id"), {"id": store_id})
            if conn.execute(text("DELETE FROM memory_stores WHERE id = :id"), {"id": store_id}).rowcount == 0:
                raise NotFound(f"memory store {store_id} not found in this tenant")
        return int(count or 0)

    def set_store_model(
        self,
        store_id: UUID | str,
        embedding_model: str,
        embedding_dim: int | None = None,
        *,
        reembed: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> MemoryStore:
        """Change a store's model. A store with memories changes only with `reembed=True`, which
        embeds every memory with the new model and swaps all vectors in one transaction."""
        store_id = validation.uuid(store_id, "store id")
        _, dim = resolve_model(embedding_model, embedding_dim)
        snapshot = text("SELECT count(*), max(updated_at) FROM memories WHERE store_id = :s")
        with self.transaction() as conn:
            fetch_store(conn, store_id)
            rows = conn.execute(text("SELECT id, content FROM memories WHERE store_id = :s ORDER BY id"), {"s": store_id}).all()
            before = tuple(conn.execute(snapshot, {"s": store_id}).one())
        if rows and not reembed:
            raise Conflict(
                f"the store holds {len(rows)} memories embedded with its current model; re-embed them all to change it"
            )
        embedder = get_embedder(embedding_model, dim)
        updates = []
        for start in range(0, len(rows), REEMBED_BATCH):
            batch = rows[start : start + REEMBED_BATCH]
            vectors = embedder.embed([r.content for r in batch])
            updates += [{"id": r.id, "e": v, "dim": dim} for r, v in zip(batch, vectors)]
            if progress:
                progress(len(updates), len(rows))
        with self.transaction() as conn:
            fetch_store(conn, store_id, lock="FOR UPDATE")  # writers of the store wait from here (same_model)
            if tuple(conn.execute(snapshot, {"s": store_id}).one()) != before:
                raise Conflict("memories of the store changed while it was re-embedded; nothing was changed, run it again")
            conn.execute(text("SET CONSTRAINTS memories_store_fk DEFERRED"))
            row = conn.execute(
                text(f"UPDATE memory_stores SET embedding_model = :m, embedding_dim = :dim WHERE id = :id RETURNING {_COLUMNS}"),
                {"m": embedding_model, "dim": dim, "id": store_id},
            ).one()
            if updates:
                conn.execute(
                    text("UPDATE memories SET embedding = :e, embedding_dim = :dim, updated_at = now() WHERE id = :id"),
                    updates,
                )
        return _store(row)

    def store_stats(self, store_id: UUID | str) -> StoreStats:
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            fetch_store(conn, store_id)
            agg = conn.execute(
                text(
                    "SELECT count(*) AS total,"
                    " count(*) FILTER (WHERE expires_at IS NULL OR expires_at > now()) AS live,"
                    " count(*) FILTER (WHERE archived) AS archived,"
                    " avg(importance)::float AS mean_importance,"
                    " coalesce(sum(access_count), 0) AS total_accesses,"
                    " count(*) FILTER (WHERE access_count = 0) AS never_accessed,"
                    " min(created_at) AS oldest, max(created_at) AS newest"
                    " FROM memories WHERE store_id = :s"
                ),
                {"s": store_id},
            ).one()
            by_type = dict(conn.execute(text(
                "SELECT memory_type, count(*) FROM memories WHERE store_id = :s GROUP BY 1 ORDER BY 2 DESC"), {"s": store_id}).all())
            by_source = dict(conn.execute(text(
                "SELECT coalesce(source, '(none)'), count(*) FROM memories WHERE store_id = :s GROUP BY 1 ORDER BY 2 DESC"),
                {"s": store_id}).all())
            rels = dict(conn.execute(text(
                "SELECT r.relationship_type, count(*) FROM memory_relationships r"
                " JOIN memories m ON m.tenant_id = r.tenant_id AND m.id = r.source_memory_id"
                " WHERE m.store_id = :s GROUP BY 1 ORDER BY 2 DESC"), {"s": store_id}).all())
        return StoreStats(
            store_id=store_id,
            total=agg.total,
            live=agg.live,
            expired=agg.total - agg.live,
            archived=agg.archived,
            by_type=by_type,
            by_source=by_source,
            relationships_by_type=rels,
            mean_importance=agg.mean_importance,
            total_accesses=int(agg.total_accesses),
            never_accessed=agg.never_accessed,
            oldest=agg.oldest,
            newest=agg.newest,
        )
