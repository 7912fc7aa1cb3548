"""The fields of a memory that a caller writes, defined once.

`FIELDS` lists them in order with their PostgreSQL type and their check. Everything that writes
or carries memories derives from it: NewMemory (one memory) and MemoryColumns (many, as columns)
are checked field by field through it; the upsert, the COPY staging table and its move into
`memories` (core.sql.memories), the JSONL keys of import and export (core.jsonl) and the API's
request models are built from its names. Adding a field means adding it here (and a migration).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import numpy as np

from core import validation
from core.errors import InvalidInput


@dataclass(frozen=True)
class Field:
    name: str
    sql_type: str  # its type in the COPY staging table
    check: Callable[[Any], Any]  # validates and normalises one value (the embedding: see below)


FIELDS: tuple[Field, ...] = (
    Field("id", "uuid", lambda v: uuid4() if v is None else validation.uuid(v, "memory id")),
    Field("content", "text", validation.content),
    Field("memory_type", "text", lambda v: validation.label(v, "memory_type", 50)),
    Field("source", "text", lambda v: validation.optional_label(v, "source", 100)),
    Field("importance", "float8", lambda v: validation.unit_interval(v, "importance")),
    Field("metadata", "jsonb", validation.metadata),
    Field("expires_at", "timestamptz", lambda v: validation.timestamp(v, "expires_at")),
    Field("created_at", "timestamptz", lambda v: validation.timestamp(v, "created_at")),
    Field("archived", "bool", lambda v: validation.flag(v, "archived")),
    # checked against the store's dimension by validation.embeddings, not value by value
    Field("embedding", "vector", lambda v: v),
)
NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
# Fields whose values repeat across a batch: each distinct value is checked once.
_REPEATING = {"memory_type", "source", "archived"}


@dataclass(frozen=True)
class NewMemory:
    """A memory to add. Without `embedding` it is embedded with the store's model; with `id`
    an existing memory of that id in the same store is updated instead (imports are idempotent).
    `created_at` None means now."""

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
        """A copy with every field validated and normalised (a missing id gets a new one);
        raises InvalidInput on the first bad field."""
        values = {f.name: f.check(getattr(self, f.name)) for f in FIELDS}
        if self.embedding is not None:
            values["embedding"] = validation.embedding(self.embedding, dim)
        return replace(self, **values)

    @classmethod
    def from_mapping(cls, data: object) -> NewMemory:
        """From a JSON object with the field names; unknown keys and a missing content are refused."""
        if not isinstance(data, dict):
            raise InvalidInput(f"a memory must be a NewMemory or a JSON object, not {type(data).__name__}")
        unknown = set(data) - set(NAMES)
        if unknown:
            raise InvalidInput(f"unknown memory field {sorted(unknown)[0]!r}")
        if "content" not in data:
            raise InvalidInput("memory has no content")
        return cls(**data)


@dataclass
class MemoryColumns:
    """Memories as columns, for bulk ingest without an object per row: `embedding` is an (n, dim)
    array, every other field is one value per row, or None for the field's default on every row
    (`id` None: new ids)."""

    content: Sequence[str]
    embedding: np.ndarray
    id: Sequence[UUID | str] | None = None
    memory_type: Sequence[str] | None = None
    source: Sequence[str | None] | None = None
    importance: Sequence[float] | np.ndarray | None = None
    metadata: Sequence[dict[str, Any] | None] | None = None
    expires_at: Sequence[datetime | str | None] | None = None
    created_at: Sequence[datetime | str | None] | None = None
    archived: Sequence[bool] | np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.content)

    def part(self, start: int, stop: int) -> MemoryColumns:
        """Rows start..stop (slices of the columns)."""
        values: dict[str, Any] = {}
        for name in NAMES:
            column = getattr(self, name)
            values[name] = None if column is None else column[start:stop]
        return MemoryColumns(**values)

    def chunks(self, rows: int) -> Iterator[MemoryColumns]:
        """The rows, `rows` at a time."""
        return (self.part(start, start + rows) for start in range(0, len(self), rows))

    @classmethod
    def concat(cls, parts: Sequence[MemoryColumns], dim: int) -> MemoryColumns:
        """The rows of `parts` in order (parts whose every column is filled, as a parsed file's)."""
        columns = {name: [v for part in parts for v in getattr(part, name)] for name in NAMES if name != "embedding"}
        vectors = [part.embedding for part in parts]
        return cls(embedding=np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32), **columns)

    @classmethod
    def from_memories(cls, items: Sequence[NewMemory], vectors: Sequence[np.ndarray] | np.ndarray) -> MemoryColumns:
        """Columns of NewMemory objects and their vectors."""
        columns: dict[str, Any] = {name: [getattr(m, name) for m in items] for name in NAMES if name != "embedding"}
        return cls(embedding=np.asarray(vectors, dtype=np.float32).reshape(len(items), -1), **columns)

    def checked(self, dim: int) -> MemoryColumns:
        """A validated copy by the same rules as NewMemory.checked (ids included: missing ones are
        made); InvalidInput names the first bad row."""
        n = len(self.content)
        out: dict[str, Any] = {"embedding": validation.embeddings(self.embedding, dim, rows=n)}
        for field in FIELDS:
            if field.name == "embedding":
                continue
            values = getattr(self, field.name)
            if values is None:
                out[field.name] = None if field.name != "id" else [uuid4() for _ in range(n)]
                continue
            if len(values) != n:
                raise InvalidInput(f"{field.name} has {len(values)} values for {n} memories")
            seen: dict[Any, Any] = {}
            column = []
            for row, value in enumerate(values.tolist() if isinstance(values, np.ndarray) else values, start=1):
                try:
                    if field.name in _REPEATING:
                        if value not in seen:
                            seen[value] = field.check(value)
                        column.append(seen[value])
                    else:
                        column.append(field.check(value))
                except InvalidInput as exc:
                    raise InvalidInput(f"memory {row}: {exc}") from None
            out[field.name] = column
        if len(set(out["id"])) != n:
            raise InvalidInput("the batch contains the same memory id twice")
        return MemoryColumns(**out)


DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(NewMemory) if f.name != "content"}
