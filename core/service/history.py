"""Memory history: every change the database recorded, restore to an earlier version (an edit
or a delete undone), purge (nothing of the memory left anywhere), prune."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from core import validation
from core.errors import InvalidInput, NotFound
from core.fields import FIELDS, MemoryColumns, NewMemory
from core.models import HistoryEvent, Memory
from core.service import logwriter
from core.service.base import TenantBound, embed_texts, manages, writes
from core.sql import history, memories, stores

# What a restore sets back: the fields a caller writes (the vector follows the content).
RESTORED = [f.name for f in FIELDS if f.name not in ("id", "embedding")]


@dataclass(frozen=True)
class PurgeReport:
    memories: int
    history_events: int
    log_entries: int


def state_after(events: list[HistoryEvent], current: Memory | None, version: int) -> dict[str, Any]:
    """The memory's fields right after event `version`, walked back from what is known now: the
    memory as it is (or its snapshot at its latest deletion), undoing each later change."""
    if not events or not 1 <= version <= events[-1].version:
        raise InvalidInput(f"version must be from 1 to {events[-1].version if events else 0}, not {version}")
    state: dict[str, Any] | None = None if current is None else {name: getattr(current, name) for name in RESTORED}
    for event in reversed(events):
        if event.version <= version:
            break
        if event.event in ("deleted", "merged"):
            state = dict(event.snapshot or {})
        elif event.event == "created":
            raise InvalidInput(f"version {version} is before this memory was created")
        elif state is not None:
            for name, (old, _) in event.changes.items():
                if name in RESTORED:
                    state[name] = old
    if state is None:
        raise InvalidInput(f"after version {version} the memory was deleted; restore an earlier version")
    return {name: state.get(name) for name in RESTORED}


class HistoryOps(TenantBound):
    def get_memory_history(self, memory_id: UUID | str) -> list[HistoryEvent]:
        """Every change of a memory the database recorded, oldest first (also after it was deleted)."""
        memory_id = validation.uuid(memory_id, "memory id")
        with self.transaction() as conn:
            found = history.events(conn, memory_id)
        if not found:
            raise NotFound(f"memory {memory_id} has no history in this tenant")
        return found

    def store_history(self, store_id: UUID | str, limit: int = 100) -> list[HistoryEvent]:
        """The latest changes in a store, newest first."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            return history.in_store(conn, store_id, validation.limit(limit))

    def contents_at(self, memory_ids: Sequence[UUID | str], at: datetime | str) -> dict[UUID, str]:
        """The text each memory had at a moment (what a logged search returned then), walked back
        from today through the edits since; a memory deleted since speaks from its snapshot. Memories
        created after the moment, or purged, are left out. A memory whose record begins after the
        moment but whose own creation date is before it (brought in with its date: an import, the
        demo) had the text its record begins with."""
        ids = [validation.uuid(m, "memory id") for m in memory_ids]
        when = validation.timestamp(at, "at")
        if when is None:
            raise InvalidInput("at is required")
        with self.transaction() as conn:
            later = history.since(conn, ids, when)
            found = memories.get_many(conn, ids)
        text: dict[UUID, str | None] = {i: found[i].content if i in found else None for i in ids}
        born: dict[UUID, datetime | None] = {i: found[i].created_at if i in found else None for i in ids}
        for event in reversed(later):
            if event.event in ("deleted", "merged"):
                text[event.memory_id] = (event.snapshot or {}).get("content")
                born[event.memory_id] = _moment((event.snapshot or {}).get("created_at"))
            elif event.event == "created":
                dated = born.get(event.memory_id)
                if dated is None or dated > when:
                    text[event.memory_id] = None
            else:
                if "content" in event.changes:
                    text[event.memory_id] = event.changes["content"][0]
                if "created_at" in event.changes:
                    born[event.memory_id] = _moment(event.changes["created_at"][0])
        return {i: t for i, t in text.items() if t is not None}

    @writes
    def restore_memory(self, memory_id: UUID | str, version: int | None = None) -> Memory:
        """Set a memory back to how it was right after event `version` of its history (default:
        undo its latest change). A deleted or merged-away memory comes back with its id; new
        content is embedded with the store's model. The restore is itself an event."""
        memory_id = validation.uuid(memory_id, "memory id")
        with self.transaction() as conn:
            events = history.events(conn, memory_id)
            current = memories.get(conn, memory_id)
        if not events:
            raise NotFound(f"memory {memory_id} has no history in this tenant")
        target = events[-1].version - 1 if version is None else validation.limit(version, "version", 1_000_000)
        if target < 1:
            raise InvalidInput("the memory has no earlier version to go back to")
        fields = state_after(events, current, target)
        store = self._store(events[-1].store_id)
        embedding = None
        if current is None or fields["content"] != current.content:
            embedding = embed_texts(store, [fields["content"]])[0]
        with self.transaction() as conn:
            store = stores.same_model(conn, store)
            history.mark(conn, event="restored")
            if current is None:
                assert embedding is not None
                item = NewMemory(**fields, id=memory_id).checked(store.embedding_dim)
                memories.write(conn, self.tenant_id, store, MemoryColumns.from_memories([item], embedding.reshape(1, -1)))
            else:
                checked = NewMemory(**fields).checked(store.embedding_dim)
                changes = {name: getattr(checked, name) for name in RESTORED if getattr(checked, name) != getattr(current, name)}
                if embedding is not None:
                    changes["embedding"] = embedding
                if changes and memories.update(conn, memory_id, changes, if_updated_at=current.updated_at) is None:
                    raise NotFound(f"memory {memory_id} changed or went while it was restored; try again")
            history.mark(conn)
            restored = memories.get(conn, memory_id)
        assert restored is not None
        return restored

    @manages
    def purge_memory(self, memory_id: UUID | str) -> PurgeReport:
        """The right to be forgotten: the memory, its whole history and every mention of it in the
        retrieval log go, in one transaction. Nothing of it is left anywhere."""
        memory_id = validation.uuid(memory_id, "memory id")
        logwriter.writer(self.db).flush()  # no entry of this process's searches comes after it
        with self.transaction() as conn:
            removed = history.purge(conn, memory_id)
        if removed == (0, 0, 0):
            raise NotFound(f"memory {memory_id} not found in this tenant")
        return PurgeReport(*removed)

    @manages
    def prune_history(self, older_than: datetime | str) -> int:
        """Drop history recorded before a time (a memory deleted before it can no longer be restored)."""
        when = validation.timestamp(older_than, "older_than")
        if when is None:
            raise InvalidInput("older_than is required")
        with self.transaction() as conn:
            return history.prune(conn, when)


def _moment(value: Any) -> datetime | None:
    """A time from a history row's JSON (PostgreSQL writes ISO 8601)."""
    return datetime.fromisoformat(value) if isinstance(value, str) else None
