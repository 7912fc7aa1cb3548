"""Typed, weighted relationships between memories of one tenant, followed in both directions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import Connection, Row, text

from core import validation
from core.errors import InvalidInput, NotFound
from core.memories import MEMORY_COLUMNS, memory_from_row
from core.models import RelatedMemory, Relationship
from core.scope import TenantBound

_COLUMNS = "id, tenant_id, source_memory_id, target_memory_id, relationship_type, strength, created_at"
MAX_DEPTH = 3


def _relationship(row: Row) -> Relationship:
    values = dict(row._mapping)
    values["strength"] = float(values["strength"])
    return Relationship(**values)


@dataclass(frozen=True)
class NewRelationship:
    source_memory_id: UUID | str
    target_memory_id: UUID | str
    relationship_type: str
    strength: float = 0.5

    def checked(self) -> NewRelationship:
        source = validation.uuid(self.source_memory_id, "source_memory_id")
        target = validation.uuid(self.target_memory_id, "target_memory_id")
        if source == target:
            raise InvalidInput("a memory cannot have a relationship with itself")
        return NewRelationship(
            source, target,
            validation.label(self.relationship_type, "relationship_type", 50),
            validation.unit_interval(self.strength, "strength"),
        )


def _require_memories(conn: Connection, ids: set[UUID]) -> None:
    found = set(conn.scalars(text("SELECT id FROM memories WHERE id = ANY(:ids)"), {"ids": list(ids)}))
    missing = sorted(ids - found, key=str)
    if missing:
        raise NotFound(f"memory {missing[0]} not found in this tenant")


def _walk_sql(direction: str) -> str:
    ends = {
        "outgoing": "r.source_memory_id = ANY(:frontier)",
        "incoming": "r.target_memory_id = ANY(:frontier)",
        "both": "(r.source_memory_id = ANY(:frontier) OR r.target_memory_id = ANY(:frontier))",
    }
    if direction not in ends:
        raise InvalidInput(f"direction must be outgoing, incoming or both, not {direction!r}")
    return (
        f"SELECT r.source_memory_id, r.target_memory_id, r.relationship_type, r.strength"
        f" FROM memory_relationships r WHERE {ends[direction]}"
        " AND (CAST(:types AS text[]) IS NULL OR r.relationship_type = ANY(:types)) AND r.strength >= :min_strength"
        " ORDER BY r.strength DESC, r.created_at"
    )


def upsert_relationships(conn: Connection, tenant_id: UUID, checked: Sequence[NewRelationship]) -> list[Relationship]:
    """Insert or update (same source, target and type: new strength) inside an open transaction."""
    _require_memories(conn, {i.source_memory_id for i in checked} | {i.target_memory_id for i in checked})
    upsert = text(
        "INSERT INTO memory_relationships (tenant_id, source_memory_id, target_memory_id, relationship_type, strength)"
        " VALUES (:t, :s, :g, :rt, :st)"
        " ON CONFLICT (tenant_id, source_memory_id, target_memory_id, relationship_type)"
        f" DO UPDATE SET strength = EXCLUDED.strength RETURNING {_COLUMNS}"
    )
    return [
        _relationship(conn.execute(upsert, {"t": tenant_id, "s": i.source_memory_id, "g": i.target_memory_id,
                                            "rt": i.relationship_type, "st": i.strength}).one())
        for i in checked
    ]


def relationships_touching(conn: Connection, memory_ids: Sequence[UUID]) -> list[Relationship]:
    """Every relationship with one of these memories at either end, strongest first."""
    rows = conn.execute(
        text(f"SELECT {_COLUMNS} FROM memory_relationships"
             " WHERE source_memory_id = ANY(:ids) OR target_memory_id = ANY(:ids) ORDER BY strength DESC, created_at, id"),
        {"ids": list(memory_ids)},
    )
    return [_relationship(r) for r in rows]


class RelationshipOps(TenantBound):
    def add_relationship(
        self, source_id: UUID | str, target_id: UUID | str, relationship_type: str, strength: float = 0.5
    ) -> Relationship:
        """The seed's addRelationship: an upsert; the same (source, target, type) updates the strength."""
        return self.add_relationships([NewRelationship(source_id, target_id, relationship_type, strength)])[0]

    def add_relationships(self, items: Iterable[NewRelationship]) -> list[Relationship]:
        """A batch of upserts in one transaction; a missing memory at either end refuses them all."""
        checked = [item.checked() for item in items]
        if not checked:
            return []
        with self.transaction() as conn:
            return upsert_relationships(conn, self.tenant_id, checked)

    def get_related_memories(
        self,
        memory_id: UUID | str,
        limit: int = 5,
        *,
        direction: str = "outgoing",
        relationship_types: Sequence[str] | None = None,
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
        depth, with the edge that first reached it; nearest and strongest first."""
        start = validation.uuid(memory_id, "memory id")
        depth = validation.limit(depth, "depth", MAX_DEPTH)
        limit = validation.limit(limit)
        min_strength = validation.unit_interval(min_strength, "min_strength")
        sql = text(_walk_sql(direction))
        types = list(relationship_types) if relationship_types else None
        reached: dict[UUID, tuple[int, str, float, str]] = {}
        with self.transaction() as conn:
            _require_memories(conn, {start})
            frontier, seen = [start], {start}
            for level in range(1, depth + 1):
                edges = conn.execute(sql, {"frontier": frontier, "types": types, "min_strength": min_strength}).all()
                next_frontier = []
                for e in edges:
                    forward = e.source_memory_id in frontier and direction != "incoming"
                    other = e.target_memory_id if forward else e.source_memory_id
                    if other in seen:
                        continue
                    seen.add(other)
                    next_frontier.append(other)
                    reached[other] = (level, e.relationship_type, float(e.strength), "outgoing" if forward else "incoming")
                frontier = next_frontier
                if not frontier:
                    break
            rows = conn.execute(text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ANY(:ids)"), {"ids": list(reached)})
            memories = {r.id: memory_from_row(r) for r in rows}
        related = [
            RelatedMemory(memory=memories[mid], relationship_type=rt, strength=st, direction=d, depth=lvl)
            for mid, (lvl, rt, st, d) in reached.items()
        ]
        related.sort(key=lambda r: (r.depth, -r.strength))
        return related[:limit]

    def relationships_of(self, memory_id: UUID | str) -> list[Relationship]:
        """Every relationship with this memory at either end."""
        memory_id = validation.uuid(memory_id, "memory id")
        with self.transaction() as conn:
            return relationships_touching(conn, [memory_id])

    def list_relationships(self, store_id: UUID | str) -> list[Relationship]:
        """Relationships whose source memory is in the store (the store's graph)."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            rows = conn.execute(
                text(
                    f"SELECT {', '.join('r.' + c.strip() for c in _COLUMNS.split(','))} FROM memory_relationships r"
                    " JOIN memories m ON m.tenant_id = r.tenant_id AND m.id = r.source_memory_id"
                    " WHERE m.store_id = :s ORDER BY r.created_at, r.id"
                ),
                {"s": store_id},
            )
            return [_relationship(r) for r in rows]

    def delete_relationship(self, relationship_id: UUID | str) -> None:
        relationship_id = validation.uuid(relationship_id, "relationship id")
        with self.transaction() as conn:
            if conn.execute(text("DELETE FROM memory_relationships WHERE id = :id"), {"id": relationship_id}).rowcount == 0:
                raise NotFound(f"relationship {relationship_id} not found in this tenant")
