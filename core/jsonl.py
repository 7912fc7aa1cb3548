"""The JSONL exchange format of `memex import` / `memex export` and the explorer's Import page.

One JSON object a line. A memory line has `content` and optionally `id`, `memory_type`, `source`,
`importance`, `metadata`, `created_at`, `expires_at`, `archived`, `embedding`. A line with
`"kind": "relationship"` has `source_memory_id`, `target_memory_id`, `relationship_type` and
optionally `strength`.

Import checks every line before writing any: a bad line is reported by number and nothing is
written (unless bad lines are skipped on request). Every memory gets an id (from the file, or
derived from the file's content and line number), so running the same import again after an
interruption ends with exactly the file's memories, never duplicates. Pure: parsing and line
encoding here; MemoryService.import_memories / export_lines do the reading and writing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

import numpy as np

from core.errors import InvalidInput
from core.fields import NAMES, NewMemory
from core.models import Memory, NewRelationship, Relationship

MAX_LINE_BYTES = 8 * 1024 * 1024
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
    data.pop("kind", None)
    checked = NewMemory.from_mapping(data).checked(dim)
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
        elif isinstance(item.id, UUID) and item.id in seen:
            parsed.errors.append(f"line {number}: id {item.id} already appears on line {seen[item.id]}")
        else:
            if isinstance(item.id, UUID):
                seen[item.id] = number
            parsed.memories.append((number, item))
    return parsed


def bind_ids(parsed: ParsedFile, store_id: UUID, new_ids: bool) -> tuple[list[NewMemory], list[tuple[int, NewRelationship]]]:
    """Final ids: a line without one gets an id derived from (store, file, line), so the same file
    imported again finds its memories; with `new_ids` the file's ids are mapped to new ones,
    stable per store, so a file can be copied into another store of the same tenant."""

    def remap(memory_id: UUID | str) -> UUID:
        return uuid5(_ID_NAMESPACE, f"{store_id}:{memory_id}") if new_ids else UUID(str(memory_id))

    memories = [
        replace(m, id=remap(m.id) if m.id is not None else uuid5(_ID_NAMESPACE, f"{store_id}:{parsed.digest}:{n}"))
        for n, m in parsed.memories
    ]
    relationships = [
        (n, replace(r, source_memory_id=remap(r.source_memory_id), target_memory_id=remap(r.target_memory_id)))
        for n, r in parsed.relationships
    ]
    return memories, relationships


def split_relationships(relationships: list[tuple[int, NewRelationship]], known: set[UUID]) -> tuple[list[NewRelationship], list[str]]:
    """The relationships whose two ends are known memories, and an error per line for the others."""
    valid, errors = [], []
    for number, rel in relationships:
        missing = next((m for m in (rel.source_memory_id, rel.target_memory_id) if m not in known), None)
        if missing is None:
            valid.append(rel)
        else:
            errors.append(f"line {number}: memory {missing} is neither in the file nor in this tenant")
    return valid, errors


def memory_line(memory: Memory, embedding: np.ndarray | None) -> str:
    """A memory as an export line: every field of core.fields (the vector when given)."""
    line: dict[str, Any] = {}
    for name in NAMES:
        value = embedding if name == "embedding" else getattr(memory, name)
        if name == "embedding" and value is None:
            continue
        if isinstance(value, UUID):
            value = str(value)
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
        line[name] = value
    return json.dumps(line, ensure_ascii=False)


def relationship_line(rel: Relationship) -> str:
    return json.dumps(
        {
            "kind": "relationship",
            "source_memory_id": str(rel.source_memory_id),
            "target_memory_id": str(rel.target_memory_id),
            "relationship_type": rel.relationship_type,
            "strength": rel.strength,
        }
    )
