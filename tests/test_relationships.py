"""Typed, weighted relationships: the seed's upsert and related memories, both directions, depth."""

from __future__ import annotations

import pytest

from core import InvalidInput, NewMemory, NotFound


@pytest.fixture
def chain(svc, store):
    return svc.add_memories(store.id, [NewMemory(x) for x in ("a", "b", "c", "d", "e")])


def test_add_relationship_upserts_the_strength(svc, chain) -> None:
    a, b = chain[0], chain[1]
    first = svc.add_relationship(a.id, b.id, "related_to", 0.3)
    second = svc.add_relationship(a.id, b.id, "related_to", 0.9)
    assert first.id == second.id and second.strength == 0.9
    assert len(svc.relationships_of(a.id)) == 1
    svc.add_relationship(a.id, b.id, "updates", 0.5)  # another type is another relationship
    assert len(svc.relationships_of(a.id)) == 2


def test_related_memories_outgoing_by_strength_then_incoming_and_both(svc, chain) -> None:
    a, b, c, d, _ = chain
    svc.add_relationship(a.id, b.id, "related_to", 0.4)
    svc.add_relationship(a.id, c.id, "part_of", 0.9)
    svc.add_relationship(d.id, a.id, "updates", 0.7)
    assert [(r.memory.content, r.strength) for r in svc.get_related_memories(a.id)] == [("c", 0.9), ("b", 0.4)]
    incoming = svc.get_related_memories(a.id, direction="incoming")
    assert [(r.memory.content, r.direction, r.relationship_type) for r in incoming] == [("d", "incoming", "updates")]
    assert {r.memory.content for r in svc.get_related_memories(a.id, direction="both", limit=10)} == {"b", "c", "d"}
    assert [r.memory.content for r in svc.get_related_memories(a.id, limit=1)] == ["c"]


def test_neighbours_up_to_depth_each_once_at_its_nearest_depth(svc, chain) -> None:
    a, b, c, d, e = chain
    svc.add_relationship(a.id, b.id, "follows")
    svc.add_relationship(b.id, c.id, "follows")
    svc.add_relationship(c.id, d.id, "follows")
    svc.add_relationship(a.id, c.id, "related_to", 0.2)
    assert {(r.memory.content, r.depth) for r in svc.neighbours(a.id, depth=1)} == {("b", 1), ("c", 1)}
    assert {(r.memory.content, r.depth) for r in svc.neighbours(a.id, depth=2)} == {("b", 1), ("c", 1), ("d", 2)}
    assert {r.memory.content for r in svc.neighbours(d.id, depth=3)} == {"a", "b", "c"}
    assert svc.neighbours(e.id, depth=3) == []
    assert {r.memory.content for r in svc.neighbours(a.id, depth=1, min_strength=0.3)} == {"b"}


def test_deleting_a_memory_deletes_its_relationships(svc, chain) -> None:
    a, b = chain[0], chain[1]
    svc.add_relationship(a.id, b.id, "related_to")
    svc.delete_memory(b.id)
    assert svc.relationships_of(a.id) == []


def test_refused_relationships_write_nothing(svc, chain) -> None:
    a, b = chain[0], chain[1]
    with pytest.raises(InvalidInput, match="itself"):
        svc.add_relationship(a.id, a.id, "related_to")
    with pytest.raises(InvalidInput, match="strength"):
        svc.add_relationship(a.id, b.id, "related_to", 1.5)
    with pytest.raises(NotFound, match="not found"):
        svc.add_relationship(a.id, "5b1f3f0e-0000-4000-8000-000000000000", "related_to")
    with pytest.raises(InvalidInput, match="relationship_type"):
        svc.add_relationship(a.id, b.id, "  ")
    assert svc.relationships_of(a.id) == []


def test_list_relationships_of_a_store(svc, chain) -> None:
    a, b, c = chain[:3]
    svc.add_relationship(a.id, b.id, "follows")
    svc.add_relationship(b.id, c.id, "follows")
    assert len(svc.list_relationships(a.store_id)) == 2


def test_neighbours_reads_only_the_memories_it_returns(db, svc, store) -> None:
    """A hub with 40 spokes, asked for 3: 3 memories are read, not 40."""
    from sqlalchemy import event

    from core.models import NewRelationship

    hub = svc.add_memory(store.id, "hub")
    spokes = svc.add_memories(store.id, [NewMemory(f"spoke {i}") for i in range(40)])
    svc.add_relationships(NewRelationship(hub.id, s.id, "links", round(0.1 + i / 100, 2)) for i, s in enumerate(spokes))
    fetched: list[int] = []

    def count(conn, cursor, statement, *_) -> None:
        if statement.startswith("SELECT") and "FROM memories WHERE id = ANY" in statement:
            fetched.append(cursor.rowcount)

    event.listen(db.app, "after_cursor_execute", count)
    try:
        related = svc.neighbours(hub.id, depth=2, limit=3)
    finally:
        event.remove(db.app, "after_cursor_execute", count)
    assert [r.memory.content for r in related] == ["spoke 39", "spoke 38", "spoke 37"]
    assert fetched == [3]
