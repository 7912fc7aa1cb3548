"""core.quality on hand-made data: duplicate groups, the merge in the database, the curation lists."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np
import pandas as pd
import pytest

from core import InvalidInput, NewMemory
from core.explorer.frames import creation_timeline, expiring, memory_frame, never_retrieved
from core.models import Memory
from core.quality import near_duplicate_groups

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def memory(content: str, importance: float = 0.5, created: datetime = NOW) -> Memory:
    return Memory(
        id=uuid4(),
        tenant_id=uuid4(),
        store_id=uuid4(),
        content=content,
        memory_type="fact",
        source=None,
        importance=importance,
        access_count=0,
        last_accessed=None,
        expires_at=None,
        metadata={},
        created_at=created,
        updated_at=created,
    )


def angle(degrees: float) -> list[float]:
    return [math.cos(math.radians(degrees)), math.sin(math.radians(degrees)), 0.0]


def vector(dim: int, *hot: tuple[int, float]) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    for i, value in hot:
        v[i] = value
    return v


def test_groups_are_the_connected_components_of_close_pairs() -> None:
    a, b, c = memory("a", 0.2), memory("b", 0.9), memory("c", 0.5)  # a-b and b-c close, a-c not
    d = memory("d")  # alone
    e, f = memory("e", created=NOW), memory("f", created=NOW - timedelta(days=1))  # same importance: older first
    vectors = np.array([angle(0), angle(20), angle(40), [0, 0, 1], [0, -1, 0.01], [0, -2, 0]])
    groups = near_duplicate_groups([a, b, c, d, e, f], vectors, 0.9)
    assert [g.memories for g in groups] == [[b, c, a], [f, e]]
    assert groups[0].similarity == pytest.approx(math.cos(math.radians(20)), abs=1e-5)
    assert groups[1].similarity == pytest.approx(1.0, abs=1e-4)  # length does not matter, direction does
    assert groups[1].ids == [f.id, e.id]
    assert [len(g.memories) for g in near_duplicate_groups([a, b, c], vectors[:3], 0.7)] == [3]
    assert near_duplicate_groups([a, b, c], vectors[:3], 0.95) == []
    assert near_duplicate_groups([], np.zeros((0, 3)), 0.9) == []


def test_groups_need_one_vector_per_memory_and_a_sane_threshold() -> None:
    with pytest.raises(InvalidInput):
        near_duplicate_groups([memory("a")], np.zeros((2, 3)), 0.9)
    with pytest.raises(InvalidInput):
        near_duplicate_groups([memory("a")], np.ones((1, 3)), 1.5)


def test_groups_from_the_store_embeddings(svc, store) -> None:
    dim = store.embedding_dim
    twin = svc.add_memories(
        store.id,
        [
            NewMemory("Prefers aisle seats", embedding=vector(dim, (0, 1.0))),
            NewMemory("Likes the aisle seat", embedding=vector(dim, (0, 1.0), (1, 0.1))),
            NewMemory("Owns a cat", embedding=vector(dim, (2, 1.0))),
        ],
    )
    groups = near_duplicate_groups(*svc.store_embeddings(store.id), 0.9)
    assert [{m.id for m in g.memories} for g in groups] == [{twin[0].id, twin[1].id}]


def test_merge_keeps_one_moves_the_relationships_and_deletes_the_others(svc, store) -> None:
    keep, o1, o2, x, y = svc.add_memories(
        store.id,
        [
            NewMemory("Prefers aisle seats", importance=0.4, metadata={"topic": "travel", "v": 1}),
            NewMemory("Likes aisle seats", importance=0.9, metadata={"v": 2, "from": "chat"}),
            NewMemory("Aisle seat please", importance=0.1, metadata={"lang": "en"}),
            NewMemory("Flies to Lisbon monthly"),
            NewMemory("Booked TAP flight"),
        ],
    )
    svc.add_relationship(o1.id, x.id, "related", 0.4)  # becomes keep -> x, but keep -> x is stronger already
    svc.add_relationship(keep.id, x.id, "related", 0.8)
    svc.add_relationship(y.id, o2.id, "caused_by", 0.7)  # becomes y -> keep
    svc.add_relationship(o2.id, x.id, "mentions", 0.3)  # becomes keep -> x (another type)
    svc.add_relationship(o1.id, keep.id, "duplicate", 0.9)  # self-loop once merged: dropped
    svc.add_relationship(o2.id, o1.id, "related", 0.5)  # self-loop once merged: dropped
    _, before = svc.store_embeddings(store.id)

    report = svc.merge_memories(keep.id, [o1.id, o2.id, keep.id], content="Prefers aisle seats on every flight")

    assert (report.deleted, report.relationships_moved, report.self_loops_dropped) == (2, 3, 2)
    kept = svc.get_memory(keep.id)
    assert report.kept == kept
    assert kept.content == "Prefers aisle seats on every flight"
    assert kept.importance == 0.9
    assert kept.metadata == {"topic": "travel", "v": 1, "from": "chat", "lang": "en"}
    assert svc.get_memories([o1.id, o2.id]) == []
    edges = {(r.source_memory_id, r.target_memory_id, r.relationship_type, r.strength) for r in svc.list_relationships(store.id)}
    assert edges == {(keep.id, x.id, "related", 0.8), (y.id, keep.id, "caused_by", 0.7), (keep.id, x.id, "mentions", 0.3)}
    assert svc.get_store(store.id).total_memories == 3
    memories, after = svc.store_embeddings(store.id)
    row = [m.id for m in memories].index(keep.id)
    assert not np.allclose(before[row], after[row])  # the new content was re-embedded


def test_merge_refuses_nothing_to_merge_and_other_stores(svc, store, user) -> None:
    keep = svc.add_memory(store.id, "one")
    elsewhere = svc.add_memory(svc.get_or_create_store(user.id, "second", embedding_model="test-hashing").id, "two")
    with pytest.raises(InvalidInput):
        svc.merge_memories(keep.id, [keep.id])
    with pytest.raises(InvalidInput):
        svc.merge_memories(keep.id, [elsewhere.id])
    assert len(svc.get_memories([keep.id, elsewhere.id])) == 2


def frame(**columns) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "id": [str(i) for i in range(n)],
        "content": [f"m{i}" for i in range(n)],
        "memory_type": ["fact"] * n,
        "source": [None] * n,
        "archived": [False] * n,
        "expired": [False] * n,
        "access_count": [0] * n,
        "last_accessed": [None] * n,
        "expires_at": [None] * n,
        "created_at": [NOW] * n,
    }
    return pd.DataFrame(base | columns)


def test_never_retrieved_since_a_date() -> None:
    f = frame(
        access_count=[0, 3, 5, 1],
        last_accessed=[None, NOW - timedelta(days=40), NOW - timedelta(days=2), None],
        created_at=[NOW, NOW - timedelta(days=9), NOW, NOW],
    )
    assert list(never_retrieved(f, (NOW - timedelta(days=30)).date())["content"]) == ["m1", "m0", "m3"]
    assert list(never_retrieved(f, NOW)["content"]) == ["m1", "m0", "m2", "m3"]


def test_expiring_within_days_and_already_expired() -> None:
    f = frame(expires_at=[None, NOW + timedelta(days=3), NOW - timedelta(days=1), NOW + timedelta(days=30)])
    out = expiring(f, 7, now=NOW)
    assert list(out["content"]) == ["m2", "m1"]
    assert list(out["days_left"]) == [-1.0, 3.0]
    assert list(expiring(f, 0, now=NOW)["content"]) == ["m2"]
    with pytest.raises(InvalidInput):
        expiring(f, -1, now=NOW)


def test_the_store_frame_marks_archived_before_expired(svc, store) -> None:
    past = datetime.now(UTC) - timedelta(days=1)
    svc.add_memories(
        store.id,
        [
            NewMemory("live"),
            NewMemory("archived", archived=True),
            NewMemory("both", archived=True, expires_at=past),
            NewMemory("expired", expires_at=past),
        ],
    )
    status = dict(zip(memory_frame(svc.all_memories(store.id))["content"], memory_frame(svc.all_memories(store.id))["status"]))
    assert status == {"live": "live", "archived": "archived", "both": "archived", "expired": "expired"}


def test_orphans_have_no_relationship_either_way(svc, store, user) -> None:
    a, b, c, d = svc.add_memories(store.id, [NewMemory(t) for t in "abcd"])
    elsewhere = svc.add_memory(svc.get_or_create_store(user.id, "second", embedding_model="test-hashing").id, "e")
    svc.add_relationship(a.id, b.id, "related")
    svc.add_relationship(elsewhere.id, c.id, "mentions")  # an edge from another store counts
    assert {str(i) for i in svc.orphan_ids(store.id)} == {str(d.id)}


def test_orphans_of_another_tenants_store_are_not_found(svc, other) -> None:
    _, other_store = other
    with pytest.raises(Exception, match="not found"):
        {str(i) for i in svc.orphan_ids(other_store.id)}


def test_creation_timeline_counts_per_week_and_key(svc, store) -> None:
    monday = datetime(2026, 3, 2, 9, tzinfo=UTC)
    svc.add_memories(
        store.id,
        [
            NewMemory("a", memory_type="fact", source="chat", created_at=monday),
            NewMemory("b", memory_type="fact", source="chat", created_at=monday + timedelta(days=3)),
            NewMemory("c", memory_type="preference", created_at=monday + timedelta(days=8)),
        ],
    )
    f = memory_frame(svc.all_memories(store.id))
    by_type = creation_timeline(f, "memory_type")
    assert by_type.to_dict("records") == [
        {"period": pd.Timestamp("2026-03-02"), "memory_type": "fact", "memories": 2},
        {"period": pd.Timestamp("2026-03-09"), "memory_type": "preference", "memories": 1},
    ]
    assert list(creation_timeline(f, "source")["source"]) == ["chat", "(none)"]
    with pytest.raises(InvalidInput):
        creation_timeline(f, "content")
