"""The JSONL exchange format of `memex import` / `memex export` and the explorer's Import page.

One JSON object a line. A memory line has `content` and optionally `id`, `memory_type`, `source`,
`importance`, `metadata`, `created_at`, `expires_at`, `archived`, `embedding`. A line with
`"kind": "relationship"` has `source_memory_id`, `target_memory_id`, `relationship_type` and
optionally `strength`.

Import checks every line before writing any: a bad line is reported by number and nothing is
written (unless bad lines are skipped on request). Memories are then written in batches, one
transaction each; every memory has an id (from the file, or derived from the file's content and
line number), so running the same import again after an interruption ends with exactly the
file's memories, never duplicates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID, uuid5

from sqlalchemy import text

from core import validation
from core.errors import InvalidInput
from core.memories import MEMORY_COLUMNS, NewMemory, embed_missing, write_memories
from core.models import MemoryStore
from core.relationships import NewRelationship
from core.service import MemoryService
from core.stores import fetch_store

IMPORT_BATCH = 256
MAX_LINE_BYTES = 8 * 1024 * 1024
_MEMORY_KEYS = {"content", "id", "memory_type", "source", "importance", "metadata", "created_at", "expires_at", "archived", "embedding", "kind"}
_RELATIONSHIP_KEYS = {"kind", "source_memory_id", "target_memory_id", "relationship_type", "strength"}
_ID_NAMESPACE = UUID("0b5c1e3a-6d2f-4a8e-9c71-2f4d8e6a1b30")


@dataclass
class ParsedFile:
    """Lines that passed every check (memory ids still as in the file), and what failed, by line."""

    digest: str
    memories: list[tuple[int, NewMemory]] = field(default_factory=list)
    relationships: list[tuple[int, NewRelationship]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def fail_if_bad(self) -> None:
        if self.errors:
            more = f" (and {len(self.errors) - 1} more bad lines)" if len(self.errors) > 1 else ""
            raise InvalidInput(f"{self.errors[0]}{more}; nothing was imported")


@dataclass(frozen=True)
class ImportReport:
    memories: int
    relationships: int
    skipped: list[str]
    batches: int


def _reject_constant(name: str) -> None:
    raise InvalidInput(f"{name} is not a number JSON allows")


def _parse_line(raw: bytes, dim: int) -> NewMemory | NewRelationship:
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(line, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise InvalidInput("JSON nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"expected a JSON object, found {type(data).__name__}")
    kind = data.get("kind", "memory")
    if kind == "relationship":
        unknown = set(data) - _RELATIONSHIP_KEYS
        if unknown:
            raise InvalidInput(f"unknown relationship field {sorted(unknown)[0]!r}")
        for key in ("source_memory_id", "target_memory_id", "relationship_type"):
            if key not in data:
                raise InvalidInput(f"relationship has no {key}")
        return NewRelationship(
            data["source_memory_id"], data["target_memory_id"], data["relationship_type"], data.get("strength", 0.5)
        ).checked()
    if kind != "memory":
        raise InvalidInput(f"unknown kind {str(kind)[:40]!r}; expected memory or relationship")
    unknown = set(data) - _MEMORY_KEYS
    if unknown:
        raise InvalidInput(f"unknown memory field {sorted(unknown)[0]!r}")
    if "content" not in data:
        raise InvalidInput("memory has no content")
    memory = NewMemory(
        content=data["content"],
        memory_type=data.get("memory_type", "fact"),
        source=data.get("source"),
        importance=data.get("importance", 0.5),
        metadata=data.get("metadata"),
        expires_at=data.get("expires_at"),
        created_at=data.get("created_at"),
        id=data.get("id"),
        embedding=data.get("embedding"),
        archived=data.get("archived", False),
    )
    checked = memory.checked(dim)
    return checked if data.get("id") is not None else replace(checked, id=None)  # ids derived later


def parse_jsonl(data: bytes, dim: int) -> ParsedFile:
    """Check every line of a JSONL file for a store of `dim`-dimensional vectors; writes nothing."""
    parsed = ParsedFile(digest=hashlib.sha256(data).hexdigest())
    seen: dict[UUID, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        raw = raw.strip()
        if not raw:
            continue
        if len(raw) > MAX_LINE_BYTES:
            parsed.errors.append(f"line {number}: longer than {MAX_LINE_BYTES:,} bytes")
            continue
        try:
            item = _parse_line(raw, dim)
        except InvalidInput as exc:
            parsed.errors.append(f"line {number}: {exc}")
            continue
        if isinstance(item, NewRelationship):
            parsed.relationships.append((number, item))
        elif item.id is not None and item.id in seen:
            parsed.errors.append(f"line {number}: id {item.id} already appears on line {seen[item.id]}")
        else:
            if item.id is not None:
                seen[item.id] = number
            parsed.memories.append((number, item))
    return parsed


def _bind_ids(parsed: ParsedFile, store: MemoryStore, new_ids: bool) -> tuple[list[NewMemory], list[tuple[int, NewRelationship]]]:
    """Final ids: a line without one gets an id derived from (store, file, line), so the same file
    imported again finds its memories; with `new_ids` the file's ids are mapped to new ones,
    stable per store, so a file can be copied into another store of the same tenant."""

    def remap(memory_id: UUID) -> UUID:
        return uuid5(_ID_NAMESPACE, f"{store.id}:{memory_id}") if new_ids else memory_id

    memories = [
        replace(m, id=remap(m.id) if m.id is not None else uuid5(_ID_NAMESPACE, f"{store.id}:{parsed.digest}:{n}"))
        for n, m in parsed.memories
    ]
    relationships = [
        (n, replace(r, source_memory_id=remap(r.source_memory_id), target_memory_id=remap(r.target_memory_id)))
        for n, r in parsed.relationships
    ]
    return memories, relationships


def split_relationships(
    relationships: list[tuple[int, NewRelationship]], known: set[UUID]
) -> tuple[list[NewRelationship], list[str]]:
    """The relationships whose two ends are known memories, and an error per line for the others."""
    valid, errors = [], []
    for number, rel in relationships:
        missing = next((m for m in (rel.source_memory_id, rel.target_memory_id) if m not in known), None)
        if missing is None:
            valid.append(rel)
        else:
            errors.append(f"line {number}: memory {missing} is neither in the file nor in this tenant")
    return valid, errors


def import_parsed(
    svc: MemoryService,
    store_id: UUID | str,
    parsed: ParsedFile,
    *,
    skip_bad: bool = False,
    new_ids: bool = False,
    batch_size: int = IMPORT_BATCH,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Write a parsed file into a store: memories in batches (a transaction each), then the
    relationships, whose ends must be in the file or already in the tenant."""
    batch_size = validation.limit(batch_size, "batch size", 10_000)
    store = svc.get_store(store_id)
    memories, relationships = _bind_ids(parsed, store, new_ids)
    file_ids = {m.id for m in memories}
    referenced = {r.source_memory_id for _, r in relationships} | {r.target_memory_id for _, r in relationships}
    with svc.transaction() as conn:
        known = file_ids | set(conn.scalars(text("SELECT id FROM memories WHERE id = ANY(:ids)"), {"ids": list(referenced - file_ids)}))
    valid_relationships, unknown = split_relationships(relationships, known)
    errors = parsed.errors + unknown
    if not skip_bad:
        ParsedFile(parsed.digest, errors=errors).fail_if_bad()
    batches = 0
    for start in range(0, len(memories), batch_size):
        batch = memories[start : start + batch_size]
        vectors = embed_missing(store, batch)
        with svc.transaction() as conn:
            write_memories(conn, svc.tenant_id, store, batch, vectors)
        batches += 1
        if progress:
            progress(min(start + batch_size, len(memories)), len(memories))
    svc.add_relationships(valid_relationships)
    return ImportReport(memories=len(memories), relationships=len(valid_relationships), skipped=errors, batches=batches)


def import_jsonl(svc: MemoryService, store_id: UUID | str, data: bytes, **options: Any) -> ImportReport:
    """Check a whole JSONL file, then import it (options as for import_parsed)."""
    store = svc.get_store(store_id)
    return import_parsed(svc, store.id, parse_jsonl(data, store.embedding_dim), **options)


def export_lines(svc: MemoryService, store_id: UUID | str, *, embeddings: bool = True) -> Iterator[str]:
    """The store as JSONL lines: every memory (expired and archived included), then every
    relationship with both ends in the store. Importing them into an empty store recreates it."""
    store_id = validation.uuid(store_id, "store id")
    with svc.transaction() as conn:
        fetch_store(conn, store_id)
        rows = conn.execute(
            text(f"SELECT {MEMORY_COLUMNS}, embedding FROM memories WHERE store_id = :s ORDER BY created_at, id"),
            {"s": store_id},
        ).all()
        edges = conn.execute(
            text(
                "SELECT r.source_memory_id, r.target_memory_id, r.relationship_type, r.strength FROM memory_relationships r"
                " JOIN memories s ON s.tenant_id = r.tenant_id AND s.id = r.source_memory_id"
                " JOIN memories t ON t.tenant_id = r.tenant_id AND t.id = r.target_memory_id"
                " WHERE s.store_id = :s AND t.store_id = :s ORDER BY r.created_at, r.id"
            ),
            {"s": store_id},
        ).all()
    for row in rows:
        line: dict[str, Any] = {
            "id": str(row.id),
            "content": row.content,
            "memory_type": row.memory_type,
            "source": row.source,
            "importance": float(row.importance),
            "metadata": row.metadata,
            "created_at": row.created_at.isoformat(),
            "expires_at": row.expires_at.isoformat() if row.expires_at else None,
            "archived": row.archived,
        }
        if embeddings:
            line["embedding"] = row.embedding.to_numpy().tolist()
        yield json.dumps(line, ensure_ascii=False)
    for edge in edges:
        yield json.dumps(
            {
                "kind": "relationship",
                "source_memory_id": str(edge.source_memory_id),
                "target_memory_id": str(edge.target_memory_id),
                "relationship_type": edge.relationship_type,
                "strength": float(edge.strength),
            }
        )
