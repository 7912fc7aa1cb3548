"""Superseded memories: when a newer memory `updates` an older one, or contradicts it, the older
one is stale, and an agent that retrieves it first answers from the past.

Relationships point from the newer memory to the older (the newer one updates the older); for
`contradicts`, which says nothing about time, the older of the two by creation is the stale one
(the target when both were created at once). A memory counts as superseded only while the
memory that supersedes it is live: archiving or expiring the newer one makes the older one
current again. Search can keep superseded memories where they rank (the default), demote them
below every current candidate, or skip them. Pure: core.sql.relationships reads the links.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar
from uuid import UUID

SUPERSEDING = ("updates", "contradicts")  # relationship types that make a memory stale
KEEP, DEMOTE, SKIP = "keep", "demote", "skip"
POLICIES = (KEEP, DEMOTE, SKIP)
POLICY_LABELS = {
    KEEP: "keep them where they rank",
    DEMOTE: "move them below current memories",
    SKIP: "leave them out",
}


@dataclass(frozen=True)
class Link:
    """A superseding relationship with what decides its direction: both ends' creation and status."""

    source_id: UUID
    target_id: UUID
    relationship_type: str
    source_created_at: datetime
    target_created_at: datetime
    source_live: bool
    target_live: bool


@dataclass(frozen=True)
class Supersession:
    """`older` is superseded by `newer` through a relationship of this type."""

    older_id: UUID
    newer_id: UUID
    relationship_type: str
    newer_created_at: datetime
    older_live: bool
    newer_live: bool

    @property
    def verb(self) -> str:
        """'updated' or 'contradicted': what the newer memory did to the older one."""
        return "updated" if self.relationship_type == "updates" else "contradicted"


def supersession(link: Link) -> Supersession:
    """Which end of the link is the older (stale) memory and which the newer."""
    source_is_newer = link.relationship_type == "updates" or link.source_created_at >= link.target_created_at
    if source_is_newer:
        return Supersession(
            link.target_id, link.source_id, link.relationship_type, link.source_created_at, link.target_live, link.source_live
        )
    return Supersession(link.source_id, link.target_id, link.relationship_type, link.target_created_at, link.source_live, link.target_live)


def pairs(links: Iterable[Link]) -> list[Supersession]:
    """Every (older, newer) pair, newest supersession first."""
    found = {(s.older_id, s.newer_id, s.relationship_type): s for s in map(supersession, links)}
    return sorted(found.values(), key=lambda s: (s.newer_created_at, str(s.newer_id), str(s.older_id)), reverse=True)


def stale(links: Iterable[Link]) -> dict[UUID, Supersession]:
    """Superseded memories (by id), each with the newest live memory that supersedes it."""
    out: dict[UUID, Supersession] = {}
    for s in pairs(links):
        if s.newer_live and s.older_id not in out:
            out[s.older_id] = s
    return out


T = TypeVar("T")


def settle(ranked: Sequence[T], ids: Sequence[UUID], superseded: Mapping[UUID, object], policy: str) -> list[T]:
    """A ranking after the policy: `keep` leaves it, `demote` moves superseded items (in their
    order) below every other one, `skip` drops them. `ids[i]` is the memory id of `ranked[i]`."""
    if policy == KEEP or not superseded:
        return list(ranked)
    current = [item for item, i in zip(ranked, ids) if i not in superseded]
    if policy == SKIP:
        return current
    return current + [item for item, i in zip(ranked, ids) if i in superseded]
