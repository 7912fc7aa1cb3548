"""Curation of a store: the noise an analyst looks for, and the merge that removes duplicates.

Near-duplicates are what an agent writes when it stores the same fact twice in other words;
they crowd search results and split access statistics. Memories never retrieved, memories
about to expire and memories with no relationship are the other usual suspects. The functions
here find them (on the explorer's cached DataFrame or on the store's vectors) and merge
duplicates without losing the relationships of the memories merged away.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from uuid import UUID

import numpy as np
import pandas as pd
from sqlalchemy import text

from core import validation
from core.errors import InvalidInput
from core.models import Memory
from core.relationships import NewRelationship
from core.service import MemoryService
from core.stores import fetch_store

_BLOCK = 1024  # rows of the similarity matrix computed at once: memory stays O(block x n)


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


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


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
    unit = _unit_rows(vectors) if n else vectors
    for start in range(0, n, _BLOCK):
        sims = unit[start : start + _BLOCK] @ unit.T
        rows, cols = np.nonzero(sims >= min_similarity - 1e-6)
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


def merge_memories(svc: MemoryService, keep_id: UUID | str, other_ids: Iterable[UUID | str], content: str | None = None) -> MergeReport:
    """Fold `other_ids` into `keep_id`: the survivor takes the highest importance and the union of
    the metadata (its own values win on a clash), optionally new content (re-embedded); the
    relationships of the others are re-pointed to it (self-loops dropped, the stronger edge kept
    when both had one), and only then are the others deleted, so a failure never loses an edge."""
    keep = svc.get_memory(keep_id)
    others = [m for m in svc.get_memories(dict.fromkeys(validation.uuid(o, "memory id") for o in other_ids)) if m.id != keep.id]
    if not others:
        raise InvalidInput("choose at least one other memory to merge into the kept one")
    if any(m.store_id != keep.store_id for m in others):
        raise InvalidInput("only memories of the same store can be merged")
    merged = {m.id for m in others}
    existing = {(r.source_memory_id, r.target_memory_id, r.relationship_type): r.strength for r in svc.relationships_of(keep.id)}
    edges = {r.id: r for other in others for r in svc.relationships_of(other.id)}  # an edge between two others once
    moved: dict[tuple[UUID, UUID, str], float] = {}
    loops = 0
    for rel in edges.values():
        source = keep.id if rel.source_memory_id in merged else rel.source_memory_id
        target = keep.id if rel.target_memory_id in merged else rel.target_memory_id
        if source == target:
            loops += 1
            continue
        edge = (source, target, rel.relationship_type)
        moved[edge] = max(rel.strength, moved.get(edge, 0.0), existing.get(edge, 0.0))
    svc.add_relationships(NewRelationship(s, t, kind, strength) for (s, t, kind), strength in moved.items())
    metadata: dict = {}
    for other in others:
        metadata.update(other.metadata)
    metadata.update(keep.metadata)
    changes = {"importance": max([keep.importance] + [m.importance for m in others]), "metadata": metadata}
    if content is not None and content != keep.content:
        changes["content"] = content
    kept = svc.update_memory(keep.id, **changes)
    deleted = svc.delete_memories(merged)
    return MergeReport(kept=kept, deleted=deleted, relationships_moved=len(moved), self_loops_dropped=loops)


def _utc(value: date | datetime | pd.Timestamp) -> pd.Timestamp:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def with_status(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a `status` column (archived, expired or live) for tables that mark them."""
    status = np.where(frame["archived"].astype(bool), "archived", np.where(frame["expired"].astype(bool), "expired", "live"))
    return frame.assign(status=status)


def never_retrieved(frame: pd.DataFrame, since: date | datetime) -> pd.DataFrame:
    """Memories no search has returned since `since` (or ever): candidates for archiving. Oldest first."""
    last = pd.to_datetime(frame["last_accessed"], utc=True)
    mask = (frame["access_count"] == 0) | last.isna() | (last < _utc(since))
    return frame[mask].sort_values("created_at", kind="stable")


def expiring(frame: pd.DataFrame, within_days: float, now: datetime | None = None) -> pd.DataFrame:
    """Memories whose expiry falls before now + `within_days`, already expired ones included,
    with `days_left` (negative once expired). Soonest first."""
    if within_days < 0:
        raise InvalidInput(f"within_days must be 0 or more, not {within_days}")
    now_ts = _utc(now or datetime.now(timezone.utc))
    expires = pd.to_datetime(frame["expires_at"], utc=True)
    mask = expires.notna() & (expires <= now_ts + timedelta(days=within_days))
    out = frame[mask].assign(days_left=((expires[mask] - now_ts).dt.total_seconds() / 86400).round(1))
    return out.sort_values("expires_at", kind="stable")


def orphans(svc: MemoryService, store_id: UUID | str) -> set[str]:
    """Ids of the store's memories with no relationship in either direction (cross-store edges count)."""
    store_id = validation.uuid(store_id, "store id")
    with svc.transaction() as conn:
        fetch_store(conn, store_id)
        ids = conn.scalars(
            text(
                "SELECT m.id FROM memories m WHERE m.store_id = :s AND NOT EXISTS ("
                " SELECT 1 FROM memory_relationships r WHERE r.tenant_id = m.tenant_id"
                " AND (r.source_memory_id = m.id OR r.target_memory_id = m.id))"
            ),
            {"s": store_id},
        )
        return {str(i) for i in ids}


def creation_timeline(frame: pd.DataFrame, by: str, freq: str = "W") -> pd.DataFrame:
    """Memories created per period (`freq`: D, W or M) and per value of `by` (memory_type or source)."""
    if by not in ("memory_type", "source"):
        raise InvalidInput(f"cannot group the timeline by {by!r}")
    if freq not in ("D", "W", "M"):
        raise InvalidInput(f"period must be D, W or M, not {freq!r}")
    created = pd.to_datetime(frame["created_at"], utc=True).dt.tz_localize(None)
    periods = created.dt.to_period(freq).dt.start_time
    keys = frame[by].fillna("(none)")
    counts = pd.DataFrame({"period": periods, by: keys}).groupby(["period", by]).size().reset_index(name="memories")
    return counts.sort_values(["period", by], kind="stable").reset_index(drop=True)

