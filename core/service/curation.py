"""Curation of a store: near-duplicates and their merge, orphans of the graph."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from core import validation
from core.errors import InvalidInput, NotFound
from core.models import NewRelationship
from core.quality import DuplicateGroup, MergeReport, near_duplicate_groups, repoint_edges
from core.service.base import TenantBound, embed_texts, writes
from core.sql import history, memories, relationships, stores
from core.status import ARCHIVED, EXPIRED, LIVE


class CurationOps(TenantBound):
    def near_duplicates(self, store_id: UUID | str, min_similarity: float = 0.9, *, include_archived: bool = False) -> list[DuplicateGroup]:
        """Groups of memories whose vectors are this close (core.quality.near_duplicate_groups)."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            store = stores.fetch(conn, store_id)
            statuses = [LIVE, EXPIRED, *([ARCHIVED] if include_archived else [])]
            found, vectors = memories.with_vectors(conn, store_id, store.embedding_dim, statuses=statuses)
        return near_duplicate_groups(found, vectors, min_similarity)

    @writes
    def merge_memories(self, keep_id: UUID | str, other_ids: Iterable[UUID | str], content: str | None = None) -> MergeReport:
        """Fold `other_ids` into `keep_id`, in one transaction: the survivor takes the highest
        importance and the union of the metadata (its own values win on a clash), optionally new
        content (re-embedded); the others' relationships are re-pointed to it (self-loops dropped,
        the stronger edge kept when both had one); then the others are deleted. All or nothing."""
        keep_id = validation.uuid(keep_id, "memory id")
        wanted = list(dict.fromkeys(validation.uuid(o, "memory id") for o in other_ids))
        changes: dict[str, Any] = {}
        if content is not None:
            with self.transaction() as conn:
                keep = memories.get(conn, keep_id)
                if keep is None:
                    raise NotFound(f"memory {keep_id} not found in this tenant")
                store = stores.fetch(conn, keep.store_id)
            if content != keep.content:
                changes["content"] = validation.content(content)
                changes["embedding"] = embed_texts(store, [changes["content"]])[0]
        with self.transaction() as conn:
            rows = memories.get_many(conn, [keep_id, *wanted], lock=True)
            if keep_id not in rows:
                raise NotFound(f"memory {keep_id} not found in this tenant")
            keep, others = rows[keep_id], [rows[i] for i in wanted if i in rows and i != keep_id]
            if not others:
                raise InvalidInput("choose at least one other memory to merge into the kept one")
            if any(m.store_id != keep.store_id for m in others):
                raise InvalidInput("only memories of the same store can be merged")
            if "embedding" in changes:
                stores.same_model(conn, store)
            merged = {m.id for m in others}
            moved, loops = repoint_edges(keep.id, merged, relationships.touching(conn, [keep.id, *merged]))
            relationships.upsert(
                conn, self.tenant_id, [NewRelationship(s, t, kind, strength).checked() for (s, t, kind), strength in moved.items()]
            )
            metadata: dict[str, Any] = {}
            for other in others:
                metadata.update(other.metadata)
            metadata.update(keep.metadata)
            changes.update(importance=max([keep.importance] + [m.importance for m in others]), metadata=metadata)
            kept = memories.update(conn, keep.id, changes)
            history.mark(conn, merged_into=keep.id)  # the history of the others says where they went
            deleted = memories.delete(conn, sorted(merged))
            history.mark(conn)
        assert kept is not None  # locked above
        return MergeReport(kept=kept, deleted=deleted, relationships_moved=len(moved), self_loops_dropped=loops)

    def orphan_ids(self, store_id: UUID | str) -> set[UUID]:
        """The store's memories with no relationship in either direction (cross-store edges count)."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            return memories.orphan_ids(conn, store_id)
