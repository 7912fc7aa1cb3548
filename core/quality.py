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
from core.embeddings import get_embedder
from core.errors import InvalidInput, NotFound
from core.memories import MEMORY_COLUMNS, delete_rows, memory_from_row, update_row
from core.models import Memory
from core.relationships import NewRelationship, relationships_touching, upsert_relationships
from core.vectors import TOLERANCE, cosine_blocks
from core.service import MemoryService
from core.stores import fetch_store



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


def merge_memories(svc: MemoryService, keep_id: UUID | str, other_ids: Iterable[UUID | str], content: str | None = None) -> MergeReport:
    """Fold `other_ids` into `keep_id`, in one transaction: the survivor takes the highest
    importance and the union of the metadata (its own values win on a clash), optionally new
    content (re-embedded); the others' relationships are re-pointed to it (self-loops dropped, the
    stronger edge kept when both had one); then the others are deleted. All of it or nothing."""
    keep = svc.get_memory(keep_id)
    store = svc.get_store(keep.store_id)
    wanted = list(dict.fromkeys(validation.uuid(o, "memory id") for o in other_ids))
    changes: dict = {}
    if content is not None and content != keep.content:
        changes["content"] = validation.content(content)
        changes["embedding"] = get_embedder(store.embedding_model, store.embedding_dim).embed_one(changes["content"])
    with svc.transaction() as conn:
        locked = conn.execute(
            text(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
            {"ids": [keep.id, *wanted]},
        )
        rows = {m.id: m for m in map(memory_from_row, locked)}
        if keep.id not in rows:
            raise NotFound(f"memory {keep.id} not found in this tenant")
        keep, others = rows[keep.id], [rows[i] for i in wanted if i in rows and i != keep.id]
        if not others:
            raise InvalidInput("choose at least one other memory to merge into the kept one")
        if any(m.store_id != keep.store_id for m in others):
            raise InvalidInput("only memories of the same store can be merged")
        merged = {m.id for m in others}
        touching = relationships_touching(conn, [keep.id, *merged])
        existing = {(r.source_memory_id, r.target_memory_id, r.relationship_type): r.strength
                    for r in touching if keep.id in (r.source_memory_id, r.target_memory_id)}
        moved: dict[tuple[UUID, UUID, str], float] = {}
        loops = 0
        for rel in touching:
            if rel.source_memory_id not in merged and rel.target_memory_id not in merged:
                continue  # the kept memory's own edges stay as they are
            source = keep.id if rel.source_memory_id in merged else rel.source_memory_id
            target = keep.id if rel.target_memory_id in merged else rel.target_memory_id
            if source == target:
                loops += 1
                continue
            edge = (source, target, rel.relationship_type)
            moved[edge] = max(rel.strength, moved.get(edge, 0.0), existing.get(edge, 0.0))
        upsert_relationships(conn, svc.tenant_id, [NewRelationship(s, t, kind, strength).checked() for (s, t, kind), strength in moved.items()])
        metadata: dict = {}
        for other in others:
            metadata.update(other.metadata)
        metadata.update(keep.metadata)
        changes.update(importance=max([keep.importance] + [m.importance for m in others]), metadata=metadata)
        kept = update_row(conn, store, keep.id, changes)
        deleted = delete_rows(conn, sorted(merged))
    return MergeReport(kept=kept, deleted=deleted, relationships_moved=len(moved), self_loops_dropped=loops)


def _utc(value: date | datetime | pd.Timestamp) -> pd.Timestamp:
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime.combine(value, time.min)
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


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

