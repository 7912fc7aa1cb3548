"""Memory history, written by the database itself: every write path leaves its event, usage does
not, another tenant's history is invisible, restore undoes an edit or a delete, purge leaves
nothing of the memory anywhere."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

from core import ConfigError, InvalidInput, MemoryColumns, NewMemory, NotFound
from core.models import Memory


def events(svc, memory_id) -> list[tuple[str, str]]:
    return [(e.event, e.actor) for e in svc.get_memory_history(memory_id)]


def vectors(n: int) -> np.ndarray:
    return np.random.default_rng(n).standard_normal((n, 384)).astype(np.float32)


def _raw_insert(svc, store) -> Memory:
    with svc.db.tenant(svc.tenant_id) as conn:  # SQL as memex_app, no service: no actor set
        memory_id = conn.scalar(
            text(
                "INSERT INTO memories (tenant_id, store_id, content, embedding, embedding_dim)"
                " VALUES (:t, :s, 'raw insert', :e, 384) RETURNING id"
            ),
            {"t": svc.tenant_id, "s": store.id, "e": vectors(1)[0]},
        )
    return svc.get_memory(memory_id)


# How each path creates a memory: every one must leave a "created" event.
CREATE_PATHS: dict[str, Callable] = {
    "add_memory": lambda svc, store: svc.add_memory(store.id, "one memory"),
    "a small batch": lambda svc, store: svc.add_memories(store.id, [NewMemory(f"small {i}") for i in range(3)])[0],
    "a large batch (COPY)": lambda svc, store: svc.add_memories(store.id, [NewMemory(f"large {i}") for i in range(70)])[5],
    "bulk ingest (COPY)": lambda svc, store: (
        svc.bulk_add_memories(store.id, MemoryColumns(content=[f"bulk {i}" for i in range(80)], embedding=vectors(80)))
        and svc.list_memories(store.id, text_contains="bulk 7", limit=1).items[0]
    ),
    "import": lambda svc, store: svc.import_jsonl(store.id, b'{"content": "imported"}\n') and svc.list_memories(store.id, limit=1).items[0],
    "raw SQL as memex_app": _raw_insert,
}


@pytest.mark.parametrize("path", list(CREATE_PATHS))
def test_every_path_that_creates_a_memory_leaves_a_created_event(svc, store, path) -> None:
    memory = CREATE_PATHS[path](svc, store)
    [(event, actor)] = events(svc, memory.id)
    assert event == "created"
    assert actor == ("sql as memex_app" if path == "raw SQL as memex_app" else "python")


def _raw_update(svc, memory: Memory) -> None:
    with svc.db.tenant(svc.tenant_id) as conn:
        conn.execute(text("UPDATE memories SET importance = 0.9 WHERE id = :id"), {"id": memory.id})


def _merge(svc, memory: Memory) -> None:
    other = svc.add_memory(memory.store_id, "a duplicate")
    svc.merge_memories(other.id, [memory.id])


# How each path changes a memory, and the event it must leave.
CHANGE_PATHS: dict[str, tuple[Callable, str]] = {
    "update_memory": (lambda svc, m: svc.update_memory(m.id, content="new words", importance=0.8), "updated"),
    "archive": (lambda svc, m: svc.set_archived([m.id], True), "archived"),
    "expire": (lambda svc, m: svc.expire_memories([m.id]), "expired"),
    "importance up": (lambda svc, m: svc.adjust_importance([m.id], 0.2), "updated"),
    "re-import of the same id": (lambda svc, m: svc.add_memories(m.store_id, [NewMemory("re-imported", id=m.id)]), "updated"),
    "raw SQL update as memex_app": (_raw_update, "updated"),
    "delete_memory": (lambda svc, m: svc.delete_memory(m.id), "deleted"),
    "delete_memories": (lambda svc, m: svc.delete_memories([m.id]), "deleted"),
    "purge_expired": (lambda svc, m: svc.expire_memories([m.id]) and svc.purge_expired(m.store_id), "deleted"),
    "merged into another": (_merge, "merged"),
}


def test_an_edit_of_every_field_keeps_each_old_and_new_value(svc, store) -> None:
    """Whatever changes a memory (SQL as the application role here), its history holds every field
    that changed, before and after, as JSON; nothing else."""
    m = svc.add_memory(store.id, "first", memory_type="semantic", source="a", importance=0.25, metadata={"k": 1})
    expires, created = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC), datetime(2020, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    with svc.transaction() as conn:
        conn.execute(
            text(
                "UPDATE memories SET content = 'second', memory_type = 'episodic', source = NULL, importance = 0.75,"
                " metadata = '{\"k\": [2]}', expires_at = :e, created_at = :c, archived = true WHERE id = :id"
            ),
            {"e": expires, "c": created, "id": m.id},
        )
    change = svc.get_memory_history(m.id)[-1]
    assert change.event == "archived"
    was, now = change.changes.pop("created_at")  # JSON's timestamps drop trailing zeros of the second
    assert (datetime.fromisoformat(was), now) == (m.created_at, "2020-05-06T07:08:09.123456+00:00")
    assert change.changes == {
        "content": ["first", "second"],
        "memory_type": ["semantic", "episodic"],
        "source": ["a", None],
        "importance": [0.25, 0.75],
        "metadata": [{"k": 1}, {"k": [2]}],
        "expires_at": [None, "2031-01-02T03:04:05+00:00"],
        "archived": [False, True],
    }


@pytest.mark.parametrize("path", list(CHANGE_PATHS))
def test_every_path_that_changes_a_memory_leaves_its_event(svc, store, path) -> None:
    change, expected = CHANGE_PATHS[path]
    memory = svc.add_memory(store.id, "original words")
    change(svc, memory)
    history = svc.get_memory_history(memory.id)
    assert history[-1].event == expected
    assert [e.version for e in history] == list(range(1, len(history) + 1))
    if expected in ("deleted", "merged"):
        assert history[-1].snapshot["content"] == "original words"  # what a restore brings back


def test_an_edit_records_each_changed_field_old_and_new(svc, store) -> None:
    memory = svc.add_memory(store.id, "Alice lives in Lisbon", importance=0.4)
    svc.update_memory(memory.id, content="Alice lives in Porto", importance=0.7, metadata={"city": "Porto"})
    change = svc.get_memory_history(memory.id)[-1]
    assert change.changes["content"] == ["Alice lives in Lisbon", "Alice lives in Porto"]
    assert change.changes["importance"] == [0.4, 0.7]
    assert change.changes["metadata"] == [{}, {"city": "Porto"}]
    assert "embedding" in change.changes and "access_count" not in change.changes


def test_a_merge_says_which_memory_it_went_into(svc, store) -> None:
    keep, other = svc.add_memories(store.id, [NewMemory("keep me"), NewMemory("fold me", importance=0.9)])
    svc.merge_memories(keep.id, [other.id])
    merged = svc.get_memory_history(other.id)[-1]
    assert (merged.event, merged.merged_into) == ("merged", keep.id)
    assert svc.get_memory_history(keep.id)[-1].changes["importance"] == [0.5, 0.9]  # the survivor took the higher importance


def test_usage_leaves_no_event(svc, store) -> None:
    memory = svc.add_memory(store.id, "looked up often")
    for _ in range(3):
        svc.search_memories(store.id, "looked up often", min_similarity=-1)
    assert svc.get_memory(memory.id).access_count == 3
    assert events(svc, memory.id) == [("created", "python")]


def test_the_actor_is_who_acted(db, svc, store, tenant) -> None:
    from core.service import MemoryService

    memory = svc.add_memory(store.id, "x")
    MemoryService(db, tenant.id, actor="analyst ada@example.com").update_memory(memory.id, importance=0.9)
    assert events(svc, memory.id) == [("created", "python"), ("updated", "analyst ada@example.com")]


def test_history_is_invisible_to_another_tenant_and_read_only_for_the_application_role(svc, store, other) -> None:
    memory = svc.add_memory(store.id, "mine")
    other_svc, _ = other
    with pytest.raises(NotFound):
        other_svc.get_memory_history(memory.id)
    with other_svc.transaction() as conn:
        assert conn.scalar(text("SELECT count(*) FROM memory_history WHERE memory_id = :id"), {"id": memory.id}) == 0
    for statement in (
        "DELETE FROM memory_history",
        "UPDATE memory_history SET actor = 'forged'",
        "INSERT INTO memory_history (tenant_id, memory_id, store_id, version, event, actor)"
        " VALUES (:t, gen_random_uuid(), gen_random_uuid(), 1, 'created', 'forged')",
    ):
        with pytest.raises(ConfigError, match="lacks a privilege"), svc.transaction() as conn:
            conn.execute(text(statement), {"t": svc.tenant_id})
    assert events(svc, memory.id) == [("created", "python")]


def test_restore_undoes_an_edit_and_a_delete_and_goes_back_to_any_version(svc, store) -> None:
    memory = svc.add_memory(store.id, "first words", importance=0.2)
    svc.update_memory(memory.id, content="second words")
    svc.update_memory(memory.id, importance=0.9)
    assert svc.restore_memory(memory.id).importance == 0.2  # the last change undone
    assert svc.get_memory(memory.id).content == "second words"
    assert svc.restore_memory(memory.id, 1).content == "first words"
    svc.delete_memory(memory.id)
    back = svc.restore_memory(memory.id)
    assert (back.id, back.content, back.importance) == (memory.id, "first words", 0.2)
    hits = svc.search_memories(store.id, "first words", min_similarity=0.99, log=False)
    assert [h.memory.id for h in hits] == [memory.id]  # embedded again: searchable
    assert [e.event for e in svc.get_memory_history(memory.id)] == [
        "created",
        "updated",
        "updated",
        "restored",
        "restored",
        "deleted",
        "restored",
    ]
    with pytest.raises(InvalidInput, match="version must be from 1 to 7"):
        svc.restore_memory(memory.id, 99)


def test_purge_leaves_no_content_of_the_memory_anywhere(superuser, svc, store) -> None:
    secret = f"the secret phrase {datetime.now(UTC).timestamp()}"
    memory = svc.add_memory(store.id, secret)
    svc.update_memory(memory.id, content=secret + " edited")
    svc.search_memories(store.id, "the secret phrase", min_similarity=-1)
    report = svc.purge_memory(memory.id)
    assert (report.memories, report.history_events, report.log_entries) == (1, 2, 1)
    with superuser.connect() as conn:  # every table, every tenant: nothing holds the content or the id
        tables = conn.scalars(text("SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace")).all()
        for table in tables:
            found = conn.scalar(
                text(f"SELECT count(*) FROM {table} t WHERE t::text LIKE :c OR t::text LIKE :i"),
                {"c": f"%{secret}%", "i": f"%{memory.id}%"},
            )
            assert found == 0, table
    with pytest.raises(NotFound):
        svc.restore_memory(memory.id)


def test_deleting_a_store_takes_its_history_and_log_with_it(superuser, svc, user) -> None:
    store = svc.get_or_create_store(user.id, "short-lived", embedding_model="test-hashing")
    memory = svc.add_memory(store.id, "gone with the store")
    svc.search_memories(store.id, "gone", min_similarity=-1)
    svc.delete_store(store.id)
    with superuser.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM memory_history WHERE memory_id = :id"), {"id": memory.id}) == 0
        assert conn.scalar(text("SELECT count(*) FROM retrieval_log WHERE store_id = :id"), {"id": store.id}) == 0


def test_pruning_history_ends_what_a_restore_can_bring_back(svc, store) -> None:
    memory = svc.add_memory(store.id, "old news")
    svc.delete_memory(memory.id)
    assert svc.prune_history(datetime.now(UTC) + timedelta(seconds=1)) >= 2
    with pytest.raises(NotFound, match="no history"):
        svc.restore_memory(memory.id)
