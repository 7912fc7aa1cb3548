"""Bulk ingest: many memories with precomputed vectors, through binary COPY, inside the tenant.

PostgreSQL refuses COPY FROM into a table whose row-level security applies to the caller
("COPY FROM not supported with row-level security", SQLSTATE 0A000, checked on PostgreSQL 18 as
memex_app), and memories has RLS forced for every role. So the rows go by binary COPY into a
temporary staging table of the transaction, and one INSERT ... SELECT ... ON CONFLICT per chunk
moves them into memories: the policy's WITH CHECK, the constraints, the foreign key to the store
and the statement-level counter triggers apply exactly as for any insert. A row of another tenant
is refused by the policy, an id of another store of the tenant is refused as in write_memories.

Measured (docs/BENCHMARKS.md): for 50k rows the COPY into staging took 0.2 s and the INSERT ...
SELECT 2.0 s, which is the generated tsvector, the foreign key, two GIN and two btree indexes,
the heap and its WAL (and the HNSW index, unless a bulk load drops it first).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import numpy as np
from psycopg.adapt import Dumper
from psycopg.pq import Format
from sqlalchemy import Connection, text

from core import validation
from core.errors import InvalidInput
from core.memories import ON_CONFLICT_UPDATE
from core.models import MemoryStore

if TYPE_CHECKING:
    from core.memories import NewMemory
    from core.scope import TenantBound

# Rows per COPY + INSERT round: bounds the staging table (temp_buffers is 8MB by default) and the
# statement's transition table, without costing throughput (see docs/BENCHMARKS.md).
CHUNK_ROWS = 5_000

_STAGING = "memex_bulk_staging"
_STAGING_COLUMNS = (
    ("id", "uuid"), ("content", "text"), ("embedding", "vector"), ("memory_type", "text"), ("source", "text"),
    ("importance", "float8"), ("metadata", "text"), ("expires_at", "timestamptz"), ("created_at", "timestamptz"),
    ("archived", "bool"),
)
_CREATE_STAGING = text(
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGING} ("
    + ", ".join(f"{name} {kind}" for name, kind in _STAGING_COLUMNS)
    + ") ON COMMIT DROP"
)
_COPY = f"COPY {_STAGING} ({', '.join(name for name, _ in _STAGING_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
# The same upsert as core.memories._UPSERT: an id already in this store is updated, an id of
# another store of the tenant is left alone (and reported by the caller), never moved.
_MOVE = text(
    "INSERT INTO memories (tenant_id, id, store_id, content, embedding, embedding_dim, memory_type, source,"
    " importance, metadata, expires_at, created_at, archived)"
    f" SELECT :t, coalesce(id, gen_random_uuid()), :s, content, embedding, :dim, memory_type, source, importance, CAST(metadata AS jsonb),"
    # ORDER BY id: existing rows are locked in id order, as every multi-row write does (IN_ID_ORDER)
    f" expires_at, coalesce(created_at, now()), archived FROM {_STAGING} ORDER BY id"
    f"{ON_CONFLICT_UPDATE}"
)
_FOREIGN_ID = text(
    f"SELECT b.id FROM {_STAGING} b JOIN memories m ON m.id = b.id WHERE m.store_id <> :s ORDER BY b.id LIMIT 1"
)


@dataclass
class MemoryColumns:
    """Memories as columns: what bulk ingest takes without building one object per row.

    `embeddings` is (n, dim); every other column is optional (None: the column's default for
    every row) or one value per row. `ids` None gives new ids."""

    contents: Sequence[str]
    embeddings: np.ndarray
    ids: Sequence[UUID] | None = None
    memory_types: Sequence[str] | None = None
    sources: Sequence[str | None] | None = None
    importance: Sequence[float] | np.ndarray | None = None
    metadata: Sequence[dict[str, Any] | None] | None = None
    expires_at: Sequence[datetime | None] | None = None
    created_at: Sequence[datetime | None] | None = None
    archived: Sequence[bool] | np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.contents)

    @classmethod
    def from_memories(cls, items: Sequence[NewMemory], vectors: Sequence[np.ndarray]) -> MemoryColumns:
        """Columns of already checked NewMemory objects (ids set) and their vectors."""
        return cls(
            contents=[m.content for m in items],
            embeddings=np.asarray(vectors, dtype=np.float32).reshape(len(items), -1),
            ids=[m.id for m in items],  # type: ignore[misc]
            memory_types=[m.memory_type for m in items],
            sources=[m.source for m in items],
            importance=[m.importance for m in items],
            metadata=[m.metadata for m in items],
            expires_at=[m.expires_at for m in items],  # type: ignore[misc]
            created_at=[m.created_at for m in items],  # type: ignore[misc]
            archived=[m.archived for m in items],
        )

    def checked(self, dim: int) -> MemoryColumns:
        """A validated copy (the same rules as NewMemory.checked, vectorised where it matters);
        InvalidInput names the first bad row."""
        n = len(self.contents)

        def column(values: Sequence[Any] | np.ndarray | None, name: str) -> Sequence[Any] | np.ndarray | None:
            if values is not None and len(values) != n:
                raise InvalidInput(f"{name} has {len(values)} values for {n} memories")
            return values

        def each(values: Sequence[Any] | None, check: Any, name: str) -> list[Any] | None:
            if column(values, name) is None:
                return None
            out = []
            for row, value in enumerate(values, start=1):  # type: ignore[arg-type]
                try:
                    out.append(check(value))
                except InvalidInput as exc:
                    raise InvalidInput(f"memory {row}: {exc}") from None
            return out

        vectors = np.asarray(self.embeddings, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape != (n, dim):
            raise InvalidInput(f"embeddings have shape {vectors.shape}; {n} memories of this store need ({n}, {dim})")
        finite = np.isfinite(vectors).all(axis=1)
        nonzero = vectors.any(axis=1)
        if not (finite & nonzero).all():
            row = int(np.argmin(finite & nonzero)) + 1
            what = "NaN or infinite values" if not finite[row - 1] else "only zeros"
            raise InvalidInput(f"memory {row}: embedding contains {what}")
        importance = None
        if column(self.importance, "importance") is not None:
            importance = np.asarray(self.importance, dtype=np.float64)
            bad = ~(np.isfinite(importance) & (importance >= 0) & (importance <= 1))
            if bad.any():
                raise InvalidInput(f"memory {int(np.argmax(bad)) + 1}: importance must be between 0 and 1")
            importance = np.round(importance, 2)
        archived = None
        if column(self.archived, "archived") is not None:
            archived = [validation.flag(bool(a) if isinstance(a, np.bool_) else a, "archived") for a in self.archived]  # type: ignore[union-attr]
        ids = each(self.ids, lambda v: validation.uuid(v, "memory id"), "ids")
        if ids is not None and len(set(ids)) != n:
            raise InvalidInput("the batch contains the same memory id twice")
        labels: dict[str, str] = {}

        def memory_type(value: Any) -> str:  # few distinct types: check each once
            if value not in labels:
                labels[value] = validation.label(value, "memory_type", 50)
            return labels[value]

        return MemoryColumns(
            contents=each(self.contents, validation.content, "contents"),  # type: ignore[arg-type]
            embeddings=vectors,
            ids=ids,
            memory_types=each(self.memory_types, memory_type, "memory_types"),
            sources=each(self.sources, lambda v: validation.optional_label(v, "source", 100), "sources"),
            importance=importance,
            metadata=each(self.metadata, _metadata_json, "metadata"),
            expires_at=each(self.expires_at, lambda v: validation.timestamp(v, "expires_at"), "expires_at"),
            created_at=each(self.created_at, lambda v: validation.timestamp(v, "created_at"), "created_at"),
            archived=archived,
        )


class _Json(str):
    """Metadata already checked and encoded by MemoryColumns.checked."""


def _metadata_json(value: Any) -> _Json | None:
    if value is None or isinstance(value, _Json):
        return value
    checked = validation.metadata(value)
    return _Json(json.dumps(checked)) if checked else None


def _raw_dumper(oid: int) -> type[Dumper]:
    """A binary dumper that sends bytes already in the type's wire format (vectors, encoded below
    for a whole chunk at once with numpy instead of one Python object per row)."""
    return type("RawBinaryDumper", (Dumper,), {"format": Format.BINARY, "oid": oid, "dump": lambda self, obj: obj})


def _vector_wire(vectors: np.ndarray) -> list[bytes]:
    """pgvector's binary format of each row: int16 dim, int16 unused, dim big-endian float4."""
    n, dim = vectors.shape
    wire = np.empty((n, 4 + 4 * dim), dtype=np.uint8)
    wire[:, :4] = np.frombuffer(np.array([dim, 0], dtype=">u2").tobytes(), dtype=np.uint8)
    wire[:, 4:] = vectors.astype(">f4").view(np.uint8).reshape(n, 4 * dim)
    return [row.tobytes() for row in wire]


def _chunk_rows(rows: MemoryColumns, start: int, size: int) -> list[tuple[Any, ...]]:
    """Rows start..start+size as tuples in the staging table's column order, ready for COPY."""
    stop = min(len(rows), start + size)
    count = stop - start
    columns = [
        rows.ids[start:stop] if rows.ids is not None else [None] * count,
        rows.contents[start:stop],
        _vector_wire(rows.embeddings[start:stop]),
        rows.memory_types[start:stop] if rows.memory_types is not None else ["fact"] * count,
        rows.sources[start:stop] if rows.sources is not None else [None] * count,
        (rows.importance[start:stop].tolist() if isinstance(rows.importance, np.ndarray) else rows.importance[start:stop])
        if rows.importance is not None else [0.5] * count,
        [m if isinstance(m, _Json) else json.dumps(m or {}) for m in rows.metadata[start:stop]]
        if rows.metadata is not None else ["{}"] * count,
        rows.expires_at[start:stop] if rows.expires_at is not None else [None] * count,
        rows.created_at[start:stop] if rows.created_at is not None else [None] * count,
        list(rows.archived[start:stop]) if rows.archived is not None else [False] * count,
    ]
    return list(zip(*columns))


class _Done:
    def __init__(self, value: Any):
        self.value = value

    def result(self) -> Any:
        return self.value


class _InPlace:
    """ThreadPoolExecutor's submit() run in place: one chunk needs no helper thread."""

    def __enter__(self) -> _InPlace:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def submit(self, fn: Any, *args: Any) -> _Done:
        return _Done(fn(*args))


def copy_memories(conn: Connection, tenant_id: UUID, store: MemoryStore, rows: MemoryColumns, *, chunk_rows: int = CHUNK_ROWS) -> int:
    """Insert or update (by id) checked rows inside an open tenant transaction; returns how many.

    Raises InvalidInput for an id that belongs to another store of the tenant; the caller's
    transaction then rolls back everything written so far."""
    n = len(rows)
    if n == 0:
        return 0
    raw = conn.connection.driver_connection
    conn.execute(_CREATE_STAGING)
    vector_oid = raw.adapters.types["vector"].oid
    params = {"t": tenant_id, "s": store.id, "dim": int(store.embedding_dim)}
    written = 0
    starts = range(0, n, chunk_rows)
    # The next chunk is encoded in a helper thread while the server inserts this one (the wait
    # for the server releases the GIL): the client's share of the work mostly disappears.
    with ThreadPoolExecutor(1) if n > chunk_rows else _InPlace() as helper:
        ahead = helper.submit(_chunk_rows, rows, 0, chunk_rows)
        for start in starts:
            chunk = ahead.result()
            if start + chunk_rows < n:
                ahead = helper.submit(_chunk_rows, rows, start + chunk_rows, chunk_rows)
            count = len(chunk)
            if start:
                conn.execute(text(f"TRUNCATE {_STAGING}"))
            with raw.cursor() as cur:
                cur.adapters.register_dumper(None, _raw_dumper(vector_oid))
                with cur.copy(_COPY) as copy:
                    copy.set_types([kind for _, kind in _STAGING_COLUMNS])
                    for row in chunk:
                        copy.write_row(row)
            moved = conn.execute(_MOVE, params).rowcount
            if moved != count:
                foreign = conn.scalar(_FOREIGN_ID, {"s": store.id})
                raise InvalidInput(
                    f"memory id {foreign} already belongs to another store of this tenant (to copy, import with --new-ids)"
                )
            written += moved
    conn.execute(text(f"DROP TABLE {_STAGING}"))
    return written


def bulk_add_memories(
    svc: TenantBound, store_id: UUID | str, rows: MemoryColumns | Sequence[NewMemory], *, chunk_rows: int = CHUNK_ROWS
) -> int:
    """Add (or update by id) many memories with precomputed embeddings in one transaction of the
    service's tenant, through binary COPY; all or nothing. Returns the rows written.

    `rows`: MemoryColumns (fastest: no object per row) or NewMemory objects, each with its
    `embedding`. The store's total_memories stays exact (the triggers count the inserts)."""
    from core.stores import fetch_store

    store_id = validation.uuid(store_id, "store id")
    with svc.transaction() as conn:
        store = fetch_store(conn, store_id)
        if not isinstance(rows, MemoryColumns):
            items = list(rows)
            checked = []
            for n, item in enumerate(items, start=1):
                if item.embedding is None:
                    raise InvalidInput(f"memory {n}: bulk ingest needs its embedding (add_memories embeds)")
                try:
                    checked.append(item.checked(store.embedding_dim))
                except InvalidInput as exc:
                    raise InvalidInput(f"memory {n}: {exc}") from None
            if len({m.id for m in checked}) != len(checked):
                raise InvalidInput("the batch contains the same memory id twice")
            rows = MemoryColumns.from_memories(checked, [m.embedding for m in checked])  # type: ignore[misc]
        else:
            rows = rows.checked(store.embedding_dim)
        return copy_memories(conn, svc.tenant_id, store, rows, chunk_rows=chunk_rows)
