"""Adding, reading, listing, changing and deleting memories, as an agent or analyst would."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from core import Conflict, InvalidInput, NewMemory, NotFound
from core.embeddings import get_embedder
from core.models import TABLE_COLUMNS


def test_add_memory_stores_every_field_and_embeds_the_content(svc, store) -> None:
    m = svc.add_memory(
        store.id, "Prefers aisle seats", memory_type="preference", source="chat", importance=0.8, metadata={"conversation": "c-1"}
    )
    got = svc.get_memory(m.id)
    assert (got.content, got.memory_type, got.source, got.importance, got.metadata) == (
        "Prefers aisle seats",
        "preference",
        "chat",
        0.8,
        {"conversation": "c-1"},
    )
    assert (got.access_count, got.last_accessed, got.archived) == (0, None, False)
    _, vectors = svc.store_embeddings(store.id)
    assert np.allclose(vectors[0], get_embedder("test-hashing").embed_one("Prefers aisle seats"))


def test_metadata_reads_back_exactly_as_written(svc, store) -> None:
    """Every read of metadata (one memory, a listing, a whole store) gives back the values
    written: integers past 64 bits stay integers, floats keep their digits, text its characters."""
    metadata = {
        "big": 123456789012345678901234567890,
        "negative": -9223372036854775807,
        "float": 0.1234567890123456789,
        "ratio": 2.5e-7,
        "text": 'café ☕ \u2028 "quoted" 1234567890123456789012',
        "nested": {"list": [1, 2.0, None, True, {"deep": "x"}], "empty": {}},
    }
    m = svc.add_memory(store.id, "with metadata", metadata=metadata)
    assert svc.get_memory(m.id).metadata == metadata
    assert svc.list_memories(store.id).items[0].metadata == metadata
    assert svc.all_memories(store.id)[0].metadata == metadata
    assert svc.memory_table(store.id)[0][TABLE_COLUMNS.index("metadata")] == metadata
    assert repr(svc.get_memory(m.id).metadata["big"]) == "123456789012345678901234567890"


def test_a_store_as_a_table_holds_every_memory_newest_first_and_frames_as_the_memories_do(svc, store, other) -> None:
    """memory_table (what the explorer's whole-store pages read) holds what all_memories holds,
    whatever the status, newest first; its frame is the one memory_frame makes of the memories;
    another tenant's store is not found."""
    from core.explorer.frames import memory_frame, table_frame

    svc.add_memories(store.id, [NewMemory(f"memory {n}", source="s" if n % 2 else None, importance=n / 10) for n in range(6)])
    memories = svc.all_memories(store.id)
    svc.set_archived([memories[1].id])
    svc.expire_memories([memories[2].id])
    memories = svc.all_memories(store.id)
    table = svc.memory_table(store.id)
    assert [row[0] for row in table] == [str(m.id) for m in reversed(memories)]
    assert [dict(zip(TABLE_COLUMNS, row, strict=True)) for row in table] == [
        {name: str(m.id) if name == "id" else getattr(m, name) for name in TABLE_COLUMNS} for m in reversed(memories)
    ]
    frame = table_frame(table)
    assert frame.equals(memory_frame(memories[::-1])) and sorted(frame["status"]) == ["archived", "expired", "live", "live", "live", "live"]
    with pytest.raises(NotFound):
        other[0].memory_table(store.id)


def test_seed_defaults_for_type_and_importance(svc, store) -> None:
    m = svc.add_memory(store.id, "plain")
    assert (m.memory_type, m.importance, m.source, m.metadata) == ("fact", 0.5, None, {})


def test_add_memories_is_all_or_nothing(svc, store) -> None:
    with pytest.raises(InvalidInput, match="memory 2 of the batch: importance"):
        svc.add_memories(store.id, [NewMemory("good"), NewMemory("bad", importance=2)])
    assert svc.get_store(store.id).total_memories == 0
    added = svc.add_memories(store.id, [NewMemory("one"), {"content": "two", "memory_type": "event"}])
    assert [m.content for m in added] == ["one", "two"]
    assert svc.get_store(store.id).total_memories == 2


def test_add_memories_embeds_the_batch_in_one_request(svc, store, monkeypatch) -> None:
    embedder = get_embedder("test-hashing")
    calls: list[int] = []
    original = embedder._embed
    monkeypatch.setattr(embedder, "_embed", lambda texts: calls.append(len(texts)) or original(texts))
    svc.add_memories(store.id, [NewMemory(f"memory {i}") for i in range(50)])
    assert calls == [50]


def test_precomputed_embedding_is_kept_as_given(svc, store) -> None:
    vector = np.zeros(384, dtype=np.float32)
    vector[7] = 1.0
    svc.add_memory(store.id, "given vector", embedding=vector)
    _, vectors = svc.store_embeddings(store.id)
    assert np.array_equal(vectors[0], vector)


def test_update_changes_fields_and_re_embeds_new_content(svc, store) -> None:
    m = svc.add_memory(store.id, "Lives in Berlin")
    updated = svc.update_memory(m.id, content="Lives in Lisbon", importance=0.9, source=None, metadata={"moved": True})
    assert (updated.content, updated.importance, updated.metadata) == ("Lives in Lisbon", 0.9, {"moved": True})
    assert updated.updated_at >= m.updated_at
    _, vectors = svc.store_embeddings(store.id)
    assert np.allclose(vectors[0], get_embedder("test-hashing").embed_one("Lives in Lisbon"))
    assert svc.update_memory(m.id) == updated  # nothing passed, nothing changed


def test_same_id_updates_instead_of_duplicating(svc, store) -> None:
    first = svc.add_memory(store.id, "version one", id="8c8a7f5e-6a55-4d5e-9b4a-0f1f4f7f8a01")
    second = svc.add_memory(store.id, "version two", id=first.id)
    assert second.id == first.id
    assert svc.get_store(store.id).total_memories == 1
    assert svc.get_memory(first.id).content == "version two"


def test_an_id_cannot_move_a_memory_to_another_store(svc, store, user) -> None:
    m = svc.add_memory(store.id, "stays here")
    other_store = svc.get_or_create_store(user.id, "second", embedding_model="test-hashing")
    with pytest.raises(InvalidInput, match="already belongs to another store"):
        svc.add_memory(other_store.id, "hijack", id=m.id)
    assert svc.get_memory(m.id).content == "stays here"
    assert svc.get_store(other_store.id).total_memories == 0


def test_delete_and_delete_missing(svc, store) -> None:
    m = svc.add_memory(store.id, "short-lived")
    svc.delete_memory(m.id)
    with pytest.raises(NotFound):
        svc.get_memory(m.id)
    with pytest.raises(NotFound):
        svc.delete_memory(m.id)
    assert svc.get_store(store.id).total_memories == 0


def test_list_filters_sorting_and_pagination(svc, store) -> None:
    now = datetime.now(UTC)
    svc.add_memories(
        store.id,
        [
            NewMemory("old fact", importance=0.2, created_at=now - timedelta(days=30), source="email"),
            NewMemory("new preference", memory_type="preference", importance=0.9, metadata={"tag": "seat"}, source="chat"),
            NewMemory("expired event", memory_type="event", expires_at=now - timedelta(days=1)),
            NewMemory("archived fact", archived=True),
        ],
    )

    def contents(**kw):
        return [m.content for m in svc.list_memories(store.id, **kw).items]

    assert set(contents()) == {"old fact", "new preference", "archived fact"}
    assert "expired event" in contents(include_expired=True)
    assert contents(memory_types=["preference"]) == ["new preference"]
    assert contents(sources=["email"]) == ["old fact"]
    assert contents(metadata={"tag": "seat"}) == ["new preference"]
    assert contents(text_contains="SEAT") == ["new preference"]  # metadata text, any case
    assert contents(min_importance=0.6, max_importance=1) == ["new preference"]
    assert contents(created_before=now - timedelta(days=1)) == ["old fact"]
    assert contents(archived=True) == ["archived fact"]
    assert contents(order_by="importance", descending=False)[0] == "old fact"
    page = svc.list_memories(store.id, include_expired=True, limit=2, offset=2, order_by="importance")
    assert (page.total, len(page.items)) == (4, 2)
    with pytest.raises(InvalidInput, match="cannot sort by"):
        svc.list_memories(store.id, order_by="content; DROP TABLE memories")


def test_expire_archive_importance_and_purge(svc, store) -> None:
    a, b, c = svc.add_memories(store.id, [NewMemory("a"), NewMemory("b", importance=0.95), NewMemory("c")])
    assert svc.expire_memories([a.id]) == 1
    assert svc.get_memory(a.id).expires_at <= datetime.now(UTC)
    assert svc.set_archived([c.id]) == 1 and svc.get_memory(c.id).archived
    assert svc.set_archived([c.id], False) == 1 and not svc.get_memory(c.id).archived
    svc.adjust_importance([b.id], 0.1)
    assert svc.get_memory(b.id).importance == 1.0
    assert svc.purge_expired(store.id) == 1
    assert {m.content for m in svc.list_memories(store.id, include_expired=True).items} == {"b", "c"}
    assert svc.get_store(store.id).total_memories == 2


def test_total_memories_stays_exact_under_concurrent_adds_and_deletes(svc, store) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(15):
                m = svc.add_memory(store.id, f"thread {n} memory {i}")
                if i % 3 == 0:
                    svc.delete_memory(m.id)
            svc.add_memories(store.id, [NewMemory(f"thread {n} batch {j}") for j in range(5)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    real = svc.list_memories(store.id, include_expired=True, limit=1).total
    assert real == 6 * (15 - 5 + 5)
    assert svc.get_store(store.id).total_memories == real


def test_deleting_a_store_removes_its_memories_and_keeps_counts_of_others(svc, store, user) -> None:
    keep = svc.get_or_create_store(user.id, "keep", embedding_model="test-hashing")
    svc.add_memories(store.id, [NewMemory(f"gone {i}") for i in range(3)])
    kept = svc.add_memory(keep.id, "kept")
    assert svc.delete_store(store.id) == 3
    with pytest.raises(NotFound):
        svc.get_store(store.id)
    assert svc.get_store(keep.id).total_memories == 1
    assert svc.get_memory(kept.id).content == "kept"


def test_store_model_is_fixed_while_it_holds_memories_unless_re_embedded(svc, store) -> None:
    svc.add_memory(store.id, "embedded by hashing")
    with pytest.raises(Conflict, match="re-embed"):
        svc.set_store_model(store.id, "all-MiniLM-L6-v2")
    with pytest.raises(Conflict, match="uses test-hashing"):
        svc.get_or_create_store(store.user_id, store.store_name, embedding_model="all-MiniLM-L6-v2")


def test_stats_count_live_expired_archived_types_and_relationships(svc, store) -> None:
    past = datetime.now(UTC) - timedelta(hours=1)
    a, b, *_ = svc.add_memories(
        store.id,
        [
            NewMemory("a", memory_type="fact"),
            NewMemory("b", memory_type="event"),
            NewMemory("c", expires_at=past),
            NewMemory("d", archived=True),
            NewMemory("e", archived=True, expires_at=past),
        ],
    )
    svc.add_relationship(a.id, b.id, "follows")
    stats = svc.store_stats(store.id)
    # one status each (archived wins over expired): the counts add up to the total
    assert (stats.total, stats.live, stats.expired, stats.archived) == (5, 2, 1, 2)
    assert stats.live + stats.expired + stats.archived == stats.total
    assert stats.by_type == {"fact": 4, "event": 1}
    assert stats.relationships_by_type == {"follows": 1}
    assert stats.never_accessed == 5


def test_a_model_change_while_a_batch_is_embedded_refuses_the_batch(svc, store, monkeypatch) -> None:
    embedder = get_embedder("test-hashing")
    original = embedder._embed

    def embed_then_change_the_model(texts):
        vectors = original(texts)
        svc.set_store_model(store.id, "all-MiniLM-L6-v2")  # same size: only the check can tell
        return vectors

    monkeypatch.setattr(embedder, "_embed", embed_then_change_the_model)
    with pytest.raises(Conflict, match="embedding model changed to all-MiniLM-L6-v2 meanwhile"):
        svc.add_memories(store.id, [NewMemory("embedded by the old model")])
    assert svc.get_store(store.id).total_memories == 0


def test_two_concurrent_edits_never_lose_one_silently(svc, store, monkeypatch) -> None:
    """An edit that re-embeds reads the memory, embeds, then writes: another edit saved meanwhile
    used to be overwritten by the first edit's stale view of the other fields."""
    memory = svc.add_memory(store.id, "original")
    embedder = get_embedder("test-hashing")
    original = embedder._embed

    def embed_while_another_edit_lands(texts):
        monkeypatch.setattr(embedder, "_embed", original)
        svc.update_memory(memory.id, importance=0.9)  # the other analyst saves first
        return original(texts)

    monkeypatch.setattr(embedder, "_embed", embed_while_another_edit_lands)
    with pytest.raises(Conflict, match="changed by someone else since it was read; nothing was written"):
        svc.update_memory(memory.id, content="my edit")
    after = svc.get_memory(memory.id)
    assert (after.content, after.importance) == ("original", 0.9)
    # a caller that says which version it edited is refused once that version is gone
    with pytest.raises(Conflict, match="changed by someone else"):
        svc.update_memory(memory.id, importance=0.1, if_updated_at=memory.updated_at)
    assert svc.update_memory(memory.id, importance=0.1, if_updated_at=after.updated_at).importance == 0.1
