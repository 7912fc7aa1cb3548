"""Curation of a store: the noise an analyst looks for, and the merge that removes duplicates.

Near-duplicates are what an agent writes when it stores the same fact twice in other words;
they crowd search results and split access statistics. Pure: the groups come from a store's
vectors, and a merge's re-pointed relationships from the edges touching the memories merged
(MemoryService.merge_memories applies it in one transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import numpy as np

from core import validation
from core.errors import InvalidInput
from core.models import Memory, Relationship
from core.vectors import TOLERANCE, cosine_blocks


@dataclass(frozen=True)
class DuplicateGroup:
    """Memories linked by chains of pairs at or above the threshold; `similarity` is the closest pair."""

    memories: list[Memory]
    similarity: float

    @property
    def ids(self) -> list[UUID]:
        return [m.id for m in self.memories]


@dataclass(frozen=True)
class MergeReport:
    kept: Memory
    deleted: int
    relationships_moved: int
    self_loops_dropped: int


def near_duplicate_groups(memories: Sequence[Memory], vectors: np.ndarray, min_similarity: float = 0.9) -> list[DuplicateGroup]:
    """Connected components of the graph whose edges are the pairs with cosine similarity >=
    `min_similarity`. Largest groups first, then the closest; inside a group the most important
    (then the oldest) memory comes first, the natural one to keep."""
    min_similarity = validation.similarity(min_similarity)
    n = len(memories)
    if vectors.shape[0] != n:
        raise InvalidInput(f"{n} memories but {vectors.shape[0]} vectors")
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    best: dict[int, float] = {}
    for start, sims in cosine_blocks(vectors):
        rows, cols = np.nonzero(sims >= min_similarity - TOLERANCE)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if c <= i:
                continue
            a, b = root(i), root(c)
            if a != b:
                parent[b] = a
            best[i] = max(best.get(i, -1.0), float(sims[r, c]))
            best[c] = max(best.get(c, -1.0), float(sims[r, c]))
    components: dict[int, list[int]] = {}
    for i in best:
        components.setdefault(root(i), []).append(i)
    groups = [
        DuplicateGroup(
            memories=sorted((memories[i] for i in members), key=lambda m: (-m.importance, m.created_at, str(m.id))),
            similarity=min(1.0, max(best[i] for i in members)),
        )
        for members in components.values()
    ]
    groups.sort(key=lambda g: (-len(g.memories), -g.similarity, str(g.memories[0].id)))
    return groups


def repoint_edges(keep_id: UUID, merged: set[UUID], touching: Sequence[Relationship]) -> tuple[dict[tuple[UUID, UUID, str], float], int]:
    """What merging `merged` into `keep_id` does to the relationships touching any of them: each
    edge of a merged memory is re-pointed to the kept one (the stronger edge kept when both had
    one); edges that would join the kept memory to itself are dropped. Returns the edges to
    upsert by (source, target, type) with their strength, and how many self-loops were dropped."""
    existing = {
        (r.source_memory_id, r.target_memory_id, r.relationship_type): r.strength
        for r in touching
        if keep_id in (r.source_memory_id, r.target_memory_id)
    }
    moved: dict[tuple[UUID, UUID, str], float] = {}
    loops = 0
    for rel in touching:
        if rel.source_memory_id not in merged and rel.target_memory_id not in merged:
            continue  # the kept memory's own edges stay as they are
        source = keep_id if rel.source_memory_id in merged else rel.source_memory_id
        target = keep_id if rel.target_memory_id in merged else rel.target_memory_id
        if source == target:
            loops += 1
            continue
        edge = (source, target, rel.relationship_type)
        moved[edge] = max(rel.strength, moved.get(edge, 0.0), existing.get(edge, 0.0))
    return moved, loops
