"""The JSONL exchange format of `memex import` / `memex export` and the explorer's Import page.

One JSON object a line. A memory line has `content` and optionally `id`, `memory_type`, `source`,
`importance`, `metadata`, `created_at`, `expires_at`, `archived`, `embedding`. A line with
`"kind": "relationship"` has `source_memory_id`, `target_memory_id`, `relationship_type` and
optionally `strength`.

Import keeps nothing unless every line checks out: a bad line is reported by number and nothing is
written (unless bad lines are skipped on request; MemoryService.import_memories writes the chunks
of parse_chunks in one transaction, which a bad line rolls back). Every memory gets an id (from the file, or
derived from the file's content and line number), so running the same import again after an
interruption ends with exactly the file's memories, never duplicates. Pure: parsing and line
encoding here; MemoryService.import_memories / export_lines do the reading and writing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, overload
from uuid import UUID, uuid5

import numpy as np
import orjson

from core import validation
from core.errors import InvalidInput
from core.fields import FIELDS, NAMES, MemoryColumns, NewMemory
from core.models import Memory, NewRelationship, Relationship

# orjson: a C parser, 3x less CPU than json on lines of a few hundred floats (docs/BENCHMARKS.md).
# It reads only the ordinary memory lines; every other line, and every message, is json's.
_fast_loads = orjson.loads


MAX_LINE_BYTES = 8 * 1024 * 1024
_RELATIONSHIP_KEYS = {"kind", "source_memory_id", "target_memory_id", "relationship_type", "strength"}
_ID_NAMESPACE = UUID("0b5c1e3a-6d2f-4a8e-9c71-2f4d8e6a1b30")


_CHECKS = {f.name: f.check for f in FIELDS}
_REPEATING = ("memory_type", "source", "archived")  # few distinct values in a file: each checked once
_COLUMNS = ("id", "content", "memory_type", "source", "importance", "metadata", "expires_at", "created_at", "archived")


@dataclass
class MemoryLines:
    """The memory lines of a file as columns of checked values, in file order: `id` as in the file
    (None: derived at import), `embedding` an (n, dim) float32 matrix whose rows are zeros where
    `has_embedding` is False (those memories are embedded at import)."""

    dim: int
    numbers: list[int] = field(default_factory=list)
    id: list[UUID | None] = field(default_factory=list)
    content: list[str] = field(default_factory=list)
    memory_type: list[str] = field(default_factory=list)
    source: list[str | None] = field(default_factory=list)
    importance: list[float] = field(default_factory=list)
    metadata: list[dict[str, Any]] = field(default_factory=list)
    expires_at: list[datetime | None] = field(default_factory=list)
    created_at: list[datetime | None] = field(default_factory=list)
    archived: list[bool] = field(default_factory=list)
    embedding: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    has_embedding: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    def __len__(self) -> int:
        return len(self.numbers)

    def memory(self, i: int) -> NewMemory:
        """Line i as a NewMemory (a preview; import works on the columns)."""
        values = {name: getattr(self, name)[i] for name in _COLUMNS}
        return NewMemory(**values, embedding=self.embedding[i] if self.has_embedding[i] else None)


class MemoryView(Sequence[tuple[int, NewMemory]]):
    """(line number, NewMemory) of each memory line, built when asked for."""

    def __init__(self, lines: MemoryLines):
        self._lines = lines

    def __len__(self) -> int:
        return len(self._lines)

    @overload
    def __getitem__(self, i: int) -> tuple[int, NewMemory]: ...
    @overload
    def __getitem__(self, i: slice) -> list[tuple[int, NewMemory]]: ...
    def __getitem__(self, i: int | slice) -> tuple[int, NewMemory] | list[tuple[int, NewMemory]]:
        if isinstance(i, slice):
            return [(self._lines.numbers[k], self._lines.memory(k)) for k in range(*i.indices(len(self)))]
        k = range(len(self))[i]
        return self._lines.numbers[k], self._lines.memory(k)


class WholeFile:
    """What the chunks of one file share: its number of lines, and its sha256, computed once and
    only when asked for (only a line without an id needs it, for the id derived from it)."""

    def __init__(self, data: bytes):
        self.lines = data.count(b"\n") + 1
        self._data: bytes | None = data
        self._digest = ""

    @property
    def digest(self) -> str:
        if self._data is not None:
            self._digest, self._data = hashlib.sha256(self._data).hexdigest(), None
        return self._digest


@dataclass
class ParsedFile:
    """Lines that passed every check (memory ids still as in the file), and what failed, by line:
    a whole file, or one chunk of it (parse_chunks)."""

    whole: WholeFile
    lines: MemoryLines = field(default_factory=lambda: MemoryLines(0))
    relationships: list[tuple[int, NewRelationship]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return self.whole.digest

    @property
    def memories(self) -> MemoryView:
        """(line number, NewMemory) of every memory line: a view, each built when asked for."""
        return MemoryView(self.lines)

    def fail_if_bad(self) -> None:
        refuse_bad_lines(self.errors)


def refuse_bad_lines(errors: list[str]) -> None:
    """InvalidInput naming the first bad line and how many more there are, if there are any."""
    if errors:
        more = f" (and {len(errors) - 1} more bad lines)" if len(errors) > 1 else ""
        raise InvalidInput(f"{errors[0]}{more}; nothing was imported")


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


class _Unusual(Exception):
    """A line the column parser leaves to _parse_line: an error to word, a relationship, a kind."""


def _fast_memory(raw: memoryview, dim: int, seen: dict[str, dict[Any, Any]]) -> tuple[list[Any], Any]:
    """A memory line with its vector, checked column by column with the same checks as
    NewMemory.checked; anything else raises _Unusual (or InvalidInput)."""
    try:
        data = _fast_loads(raw)
    except (ValueError, RecursionError, InvalidInput):
        raise _Unusual from None
    if type(data) is not dict or "content" not in data or data.get("kind", "memory") != "memory" or not data.keys() <= _MEMORY_KEYS:
        raise _Unusual
    vector = data.get("embedding")
    if type(vector) is not list or len(vector) != dim:
        raise _Unusual
    values: list[Any] = []
    for name in _COLUMNS:
        value = data.get(name, _DEFAULT[name])
        if name == "id":
            values.append(None if value is None else validation.uuid(value, "memory id"))
        elif name == "metadata":
            if not _metadata_fits(value):
                raise _Unusual
            values.append(value or {})
        elif name in _REPEATING:
            memo = seen[name]
            key = (type(value), value)
            try:
                if key not in memo:
                    memo[key] = _CHECKS[name](value)
            except TypeError:  # unhashable: not a label or a flag anyway
                raise _Unusual from None
            values.append(memo[key])
        else:
            values.append(_CHECKS[name](value))
    return values, vector


def _metadata_fits(value: Any) -> bool:
    """Whether metadata orjson just read (JSON types only, no NaN, no lone surrogate) passes
    validation.metadata for certain, from one orjson encoding (the ASCII-escaped size it limits is
    at most 3x the UTF-8 size). Anything else, or near a limit, is left to _parse_line."""
    if value is None:
        return True
    if type(value) is not dict:
        return False
    encoded = orjson.dumps(value)
    return 3 * len(encoded) <= validation.MAX_METADATA_BYTES and b"\\u0000" not in encoded and _plain(value, 1)


def _plain(value: Any, depth: int) -> bool:
    """Within the depth limit, and no float of 2**63 or more: orjson reads an integer beyond 64
    bits as a float where json keeps it exact, so such a line is read by _parse_line."""
    if depth > validation.MAX_METADATA_DEPTH:
        return False
    items = value.values() if type(value) is dict else value if type(value) is list else ()
    for item in items:
        if type(item) is float and abs(item) >= 2.0**63:
            return False
        if type(item) in (dict, list) and not _plain(item, depth + 1):
            return False
    return True


_MEMORY_KEYS = frozenset(NAMES) | {"kind"}
_DEFAULT: dict[str, Any] = {"id": None, "memory_type": "fact", "source": None, "importance": 0.5, "metadata": None}
_DEFAULT |= {"expires_at": None, "created_at": None, "archived": False, "content": None}


# Lines per chunk of parse_chunks: an import writes one chunk (~0.2 s of server work for 2,000
# memories with 384-d vectors) while the next is read; smaller chunks cost a statement more each.
CHUNK_LINES = 2_000
_BLANK = b" \t\r\n\x0b\x0c"  # what bytes.strip() strips


def parse_jsonl(data: bytes, dim: int) -> ParsedFile:
    """Check every line of a JSONL file for a store of `dim`-dimensional vectors; writes nothing."""
    return next(parse_chunks(data, dim, lines_per_chunk=None))


def parse_chunks(data: bytes, dim: int, lines_per_chunk: int | None = CHUNK_LINES) -> Iterator[ParsedFile]:
    """The file's lines checked `lines_per_chunk` at a time (None: all at once), each chunk a
    ParsedFile of its own lines with the file's line numbers; an id that appeared in an earlier
    chunk is refused as a duplicate there too, and the digest is the whole file's.

    Memory lines with their vector go straight into columns (orjson, each field checked as
    NewMemory.checked checks it, the vectors of a chunk checked at once); every other line,
    and any line those checks refuse, goes through _parse_line, whose rules and messages these are.
    Lines are read in place (memoryviews, no copy of the file) and each chunk's vectors become
    one array before the next chunk is read, so the parser never holds a file's worth of Python
    floats (which the garbage collector would walk again and again)."""
    whole = WholeFile(data)
    seen: dict[UUID, int] = {}
    memo: dict[str, dict[Any, Any]] = {name: {} for name in _REPEATING}
    view = memoryview(data)
    start, number, size = 0, 0, len(data)
    while True:
        parsed = ParsedFile(whole, lines=MemoryLines(dim))
        columns = [getattr(parsed.lines, name) for name in _COLUMNS]
        vectors: list[Any] = []  # one per memory line: a JSON list (fast lines) or an array / None
        fast: list[int] = []  # positions of the lines whose vector is still a JSON list
        raws: dict[int, memoryview] = {}  # fast lines, kept to word an error their vector may hold
        read = 0
        while start <= size and (lines_per_chunk is None or read < lines_per_chunk):
            end = data.find(b"\n", start)
            if end < 0:
                end = size
            number, read, first, last, start = number + 1, read + 1, start, end, end + 1
            while first < last and data[first] in _BLANK:
                first += 1
            while last > first and data[last - 1] in _BLANK:
                last -= 1
            if first == last:
                continue
            raw = view[first:last]
            if len(raw) > MAX_LINE_BYTES:
                parsed.errors.append(f"line {number}: longer than {MAX_LINE_BYTES:,} bytes")
                continue
            is_fast = True
            try:
                values, vector = _fast_memory(raw, dim, memo)
            except (_Unusual, InvalidInput):
                is_fast = False
                try:
                    item = _parse_line(bytes(raw), dim)
                except InvalidInput as exc:
                    parsed.errors.append(f"line {number}: {exc}")
                    continue
                if isinstance(item, NewRelationship):
                    parsed.relationships.append((number, item))
                    continue
                values, vector = [getattr(item, name) for name in _COLUMNS], item.embedding
            memory_id = values[0]
            if isinstance(memory_id, UUID) and memory_id in seen:
                parsed.errors.append(f"line {number}: id {memory_id} already appears on line {seen[memory_id]}")
                continue
            if isinstance(memory_id, UUID):
                seen[memory_id] = number
            if is_fast:
                fast.append(len(vectors))
                raws[len(vectors)] = raw
            parsed.lines.numbers.append(number)
            for column, value in zip(columns, values):
                column.append(value)
            vectors.append(vector)
        _vectors(parsed, vectors, fast, raws)
        yield parsed
        if start > size:
            return


def _vectors(parsed: ParsedFile, vectors: list[Any], fast: list[int], raws: dict[int, memoryview]) -> None:
    """The embedding matrix: the fast lines' vectors converted and checked at once (a line whose
    vector fails is worded by _parse_line and dropped), the others as _parse_line gave them."""
    lines, dim = parsed.lines, parsed.lines.dim
    matrix = np.zeros((len(vectors), dim), dtype=np.float32)
    has = np.array([v is not None for v in vectors], dtype=bool)
    bad: set[int] = set()
    if fast:
        try:
            block = np.asarray([vectors[i] for i in fast], dtype=np.float32)
            if block.shape != (len(fast), dim):
                raise ValueError
            ok = np.isfinite(block).all(axis=1) & block.any(axis=1)
            bad = {fast[j] for j in np.flatnonzero(~ok)}
            matrix[fast] = block
        except (TypeError, ValueError):  # some vector holds something else than numbers: line by line
            for i in fast:
                try:
                    matrix[i] = validation.embedding(vectors[i], dim)
                except InvalidInput:
                    bad.add(i)
    for i, vector in enumerate(vectors):
        if i not in raws and vector is not None:
            matrix[i] = vector
    if bad:
        for i in sorted(bad):
            try:
                _parse_line(bytes(raws[i]), dim)
                message = "embedding is not a finite, non-zero vector"  # pragma: no cover - _parse_line refuses what failed here
            except InvalidInput as exc:
                message = str(exc)
            parsed.errors.append(f"line {lines.numbers[i]}: {message}")
        keep = [i for i in range(len(vectors)) if i not in bad]
        for name in ("numbers", *_COLUMNS):
            column = getattr(lines, name)
            column[:] = [column[i] for i in keep]
        matrix, has = matrix[keep], has[keep]
        parsed.errors.sort(key=lambda e: int(e.split(":", 1)[0].removeprefix("line ")))
    lines.embedding, lines.has_embedding = matrix, has


def bind_ids(parsed: ParsedFile, store_id: UUID, new_ids: bool) -> tuple[MemoryColumns, list[tuple[int, NewRelationship]]]:
    """Final ids: a line without one gets an id derived from (store, file, line), so the same file
    imported again finds its memories; with `new_ids` the file's ids are mapped to new ones,
    stable per store, so a file can be copied into another store of the same tenant. The memories
    come back as columns (every row's vector; zeros where parsed.lines.has_embedding is False)."""

    def remap(memory_id: UUID | str) -> UUID:
        if new_ids:
            return uuid5(_ID_NAMESPACE, f"{store_id}:{memory_id}")
        return memory_id if isinstance(memory_id, UUID) else UUID(str(memory_id))

    lines = parsed.lines
    ids = [remap(i) if i is not None else uuid5(_ID_NAMESPACE, f"{store_id}:{parsed.digest}:{n}") for n, i in zip(lines.numbers, lines.id)]
    columns = MemoryColumns(
        content=lines.content,
        embedding=lines.embedding,
        id=ids,
        memory_type=lines.memory_type,
        source=lines.source,
        importance=lines.importance,
        metadata=lines.metadata,
        expires_at=lines.expires_at,
        created_at=lines.created_at,
        archived=lines.archived,
    )
    relationships = [
        (n, replace(r, source_memory_id=remap(r.source_memory_id), target_memory_id=remap(r.target_memory_id)))
        for n, r in parsed.relationships
    ]
    return columns, relationships


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
