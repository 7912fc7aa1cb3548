"""Typed, weighted relationships between memories of one tenant, followed in both directions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from uuid import UUID

from core import validation
from core.errors import NotFound
from core.models import NewRelationship, RelatedMemory, Relationship
from core.service.base import TenantBound, writes
from core.sql import memories, relationships
from core.supersede import Supersession, pairs, stale

MAX_DEPTH = 3


class RelationshipOps(TenantBound):
    def add_relationship(self, source_id: UUID | str, target_id: UUID | str, relationship_type: str, strength: float = 0.5) -> Relationship:
        """The seed's addRelationship: an upsert; the same (source, target, type) updates the strength."""
        return self.add_relationships([NewRelationship(source_id, target_id, relationship_type, strength)])[0]

    @writes
    def add_relationships(self, items: Iterable[NewRelationship]) -> list[Relationship]:
        """A batch of upserts in one transaction; a missing memory at either end refuses them all."""
        checked = [item.checked() for item in items]
        if not checked:
            return []
        ends = {r.source_memory_id for r in checked} | {r.target_memory_id for r in checked}
        with self.transaction() as conn:
            missing = sorted(ends - memories.existing_ids(conn, list(ends)), key=str)  # type: ignore[arg-type]
            if missing:
                raise NotFound(f"memory {missing[0]} not found in this tenant")
            return relationships.upsert(conn, self.tenant_id, checked)

    def get_related_memories(
        self, memory_id: UUID | str, limit: int = 5, *, direction: str = "outgoing", relationship_types: Sequence[str] | None = None
    ) -> list[RelatedMemory]:
        """The seed's getRelatedMemories (outgoing, strongest first), also incoming or both ways."""
        return self.neighbours(memory_id, depth=1, direction=direction, relationship_types=relationship_types, limit=limit)

    def neighbours(
        self,
        memory_id: UUID | str,
        depth: int = 2,
        *,
        direction: str = "both",
        relationship_types: Sequence[str] | None = None,
        min_strength: float = 0.0,
        limit: int = 100,
    ) -> list[RelatedMemory]:
        """Memories reachable in up to `depth` steps (breadth first), each once, at its nearest
        depth, with the edge that first reached it; nearest and strongest first. Only the
        `limit` memories returned are read."""
        start = validation.uuid(memory_id, "memory id")
        depth = validation.limit(depth, "depth", MAX_DEPTH)
        limit = validation.limit(limit)
        min_strength = validation.unit_interval(min_strength, "min_strength")
        with self.transaction() as conn:
            if memories.get(conn, start) is None:
                raise NotFound(f"memory {start} not found in this tenant")
            reached = relationships.walk(conn, start, depth, direction, relationship_types, min_strength, limit)
            found = memories.get_many(conn, [r.memory_id for r in reached])
        return [
            RelatedMemory(
                memory=found[r.memory_id], relationship_type=r.relationship_type, strength=r.strength, direction=r.direction, depth=r.depth
            )
            for r in reached
        ]

    def relationships_of(self, memory_id: UUID | str) -> list[Relationship]:
        """Every relationship with this memory at either end."""
        memory_id = validation.uuid(memory_id, "memory id")
        with self.transaction() as conn:
            return relationships.touching(conn, [memory_id])

    def list_relationships(self, store_id: UUID | str) -> list[Relationship]:
        """Relationships whose source memory is in the store (the store's graph)."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            return relationships.in_store(conn, store_id)

    @writes
    def delete_relationship(self, relationship_id: UUID | str) -> None:
        relationship_id = validation.uuid(relationship_id, "relationship id")
        with self.transaction() as conn:
            if not relationships.delete(conn, relationship_id):
                raise NotFound(f"relationship {relationship_id} not found in this tenant")

    def superseded_among(self, memory_ids: Sequence[UUID | str]) -> dict[UUID, Supersession]:
        """Which of these memories a newer live memory updates or contradicts, and which one
        (core.supersede): the explorer marks them wherever they appear."""
        ids = [validation.uuid(i, "memory id") for i in memory_ids]
        with self.transaction() as conn:
            return stale(relationships.supersession_links(conn, memory_ids=ids))

    def supersessions(self, store_id: UUID | str) -> list[Supersession]:
        """Every (older, newer) pair of the store's `updates` and `contradicts` relationships,
        newest first, whatever the status of either memory."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            return pairs(relationships.supersession_links(conn, store_id=store_id))
