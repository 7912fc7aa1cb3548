"""Typed, weighted relationships between memories of one tenant, followed in both directions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Row, text

from core.errors import InvalidInput
from core.models import NewRelationship, Relationship
from core.status import IS_SQL, LIVE
from core.supersede import SUPERSEDING, Link

COLUMNS = "id, tenant_id, source_memory_id, target_memory_id, relationship_type, strength, created_at"
_ENDS = {
    "outgoing": "r.source_memory_id = ANY(:frontier)",
    "incoming": "r.target_memory_id = ANY(:frontier)",
    "both": "(r.source_memory_id = ANY(:frontier) OR r.target_memory_id = ANY(:frontier))",
}


def _relationship(row: Row[Any]) -> Relationship:
    values = dict(row._mapping)
    values["strength"] = float(values["strength"])
    return Relationship(**values)


def upsert(conn: Connection, tenant_id: UUID, checked: Sequence[NewRelationship]) -> list[Relationship]:
    """Insert or update (same source, target and type: new strength). Both ends must be memories
    of the tenant: the foreign keys refuse the rest."""
    sql = text(
        "INSERT INTO memory_relationships (tenant_id, source_memory_id, target_memory_id, relationship_type, strength)"
        " VALUES (:t, :s, :g, :rt, :st)"
        " ON CONFLICT (tenant_id, source_memory_id, target_memory_id, relationship_type)"
        f" DO UPDATE SET strength = EXCLUDED.strength RETURNING {COLUMNS}"
    )
    return [
        _relationship(
            conn.execute(
                sql, {"t": tenant_id, "s": r.source_memory_id, "g": r.target_memory_id, "rt": r.relationship_type, "st": r.strength}
            ).one()
        )
        for r in checked
    ]


def touching(conn: Connection, memory_ids: Sequence[UUID]) -> list[Relationship]:
    """Every relationship with one of these memories at either end, strongest first."""
    rows = conn.execute(
        text(
            f"SELECT {COLUMNS} FROM memory_relationships"
            " WHERE source_memory_id = ANY(:ids) OR target_memory_id = ANY(:ids) ORDER BY strength DESC, created_at, id"
        ),
        {"ids": list(memory_ids)},
    )
    return [_relationship(r) for r in rows]


def in_store(conn: Connection, store_id: UUID) -> list[Relationship]:
    """Relationships whose source memory is in the store (the store's graph)."""
    rows = conn.execute(
        text(
            f"SELECT {', '.join('r.' + c.strip() for c in COLUMNS.split(','))} FROM memory_relationships r"
            " JOIN memories m ON m.tenant_id = r.tenant_id AND m.id = r.source_memory_id"
            " WHERE m.store_id = :s ORDER BY r.created_at, r.id"
        ),
        {"s": store_id},
    )
    return [_relationship(r) for r in rows]


def within_store(conn: Connection, store_id: UUID) -> list[Relationship]:
    """Relationships with both ends in the store (what an export carries)."""
    rows = conn.execute(
        text(
            f"SELECT {', '.join('r.' + c.strip() for c in COLUMNS.split(','))} FROM memory_relationships r"
            " JOIN memories s ON s.tenant_id = r.tenant_id AND s.id = r.source_memory_id"
            " JOIN memories t ON t.tenant_id = r.tenant_id AND t.id = r.target_memory_id"
            " WHERE s.store_id = :s AND t.store_id = :s ORDER BY r.created_at, r.id"
        ),
        {"s": store_id},
    )
    return [_relationship(r) for r in rows]


def delete(conn: Connection, relationship_id: UUID) -> bool:
    return conn.execute(text("DELETE FROM memory_relationships WHERE id = :id"), {"id": relationship_id}).rowcount > 0


@dataclass(frozen=True)
class Reached:
    """A memory reached by a walk, with the edge that first reached it."""

    memory_id: UUID
    depth: int
    relationship_type: str
    strength: float
    direction: str  # "outgoing" (the memory is the edge's target) or "incoming"


def walk(
    conn: Connection, start: UUID, depth: int, direction: str, types: Sequence[str] | None, min_strength: float, limit: int
) -> list[Reached]:
    """Memories reachable from `start` in up to `depth` steps (breadth first), each once at its
    nearest depth, nearest and strongest first, cut to `limit`. A level only starts when the
    ones before it left room: what lies deeper can never displace a nearer memory."""
    if direction not in _ENDS:
        raise InvalidInput(f"direction must be outgoing, incoming or both, not {direction!r}")
    sql = text(
        "SELECT r.source_memory_id, r.target_memory_id, r.relationship_type, r.strength"
        f" FROM memory_relationships r WHERE {_ENDS[direction]}"
        " AND (CAST(:types AS text[]) IS NULL OR r.relationship_type = ANY(:types)) AND r.strength >= :min_strength"
        " ORDER BY r.strength DESC, r.created_at, r.id"
    )
    reached: list[Reached] = []
    frontier, seen = [start], {start}
    for level in range(1, depth + 1):
        edges = conn.execute(sql, {"frontier": frontier, "types": list(types) if types else None, "min_strength": min_strength})
        current = set(frontier)
        frontier = []
        for e in edges:
            forward = e.source_memory_id in current and direction != "incoming"
            other = e.target_memory_id if forward else e.source_memory_id
            if other in seen:
                continue
            seen.add(other)
            frontier.append(other)
            reached.append(Reached(other, level, e.relationship_type, float(e.strength), "outgoing" if forward else "incoming"))
        if not frontier or len(reached) >= limit:
            break
    return sorted(reached, key=lambda r: (r.depth, -r.strength))[:limit]


def _live(alias: str) -> str:
    """core.status's definition of live, for the memories row named `alias`."""
    return IS_SQL[LIVE].replace("archived", f"{alias}.archived").replace("expires_at", f"{alias}.expires_at")


def supersession_links(conn: Connection, *, memory_ids: Sequence[UUID] | None = None, store_id: UUID | None = None) -> list[Link]:
    """The `updates` and `contradicts` relationships touching these memories (or any memory of
    the store), with both ends' creation time and whether each is live (core.supersede reads
    which end is stale)."""
    if (memory_ids is None) == (store_id is None):
        raise InvalidInput("give memory ids or a store, not both")
    if memory_ids is not None and not memory_ids:
        return []
    where = (
        "(r.source_memory_id = ANY(:ids) OR r.target_memory_id = ANY(:ids))"
        if memory_ids is not None
        else "(s.store_id = :store OR t.store_id = :store)"
    )
    rows = conn.execute(
        text(
            "SELECT r.source_memory_id, r.target_memory_id, r.relationship_type, s.created_at AS source_created,"
            f" t.created_at AS target_created, {_live('s')} AS source_live, {_live('t')} AS target_live"
            " FROM memory_relationships r"
            " JOIN memories s ON s.tenant_id = r.tenant_id AND s.id = r.source_memory_id"
            " JOIN memories t ON t.tenant_id = r.tenant_id AND t.id = r.target_memory_id"
            f" WHERE r.relationship_type = ANY(:types) AND {where} ORDER BY r.created_at, r.id"
        ),
        {"types": list(SUPERSEDING), **({"ids": list(memory_ids)} if memory_ids is not None else {"store": store_id})},
    )
    return [Link(*r) for r in rows]
