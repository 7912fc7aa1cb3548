"""Import and export of a store in the JSONL format (core.jsonl)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from core import validation
from core.jsonl import ImportReport, ParsedFile, bind_ids, memory_line, parse_jsonl, relationship_line, split_relationships
from core.models import Progress
from core.service.base import TenantBound, writes
from core.service.memories import with_vectors
from core.sql import memories, relationships, stores

IMPORT_BATCH = 256


class TransferOps(TenantBound):
    @writes
    def import_memories(
        self,
        store_id: UUID | str,
        parsed: ParsedFile,
        *,
        skip_bad: bool = False,
        new_ids: bool = False,
        batch_size: int = IMPORT_BATCH,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Write a parsed file into a store: memories in batches (embedded where the file has no
        vector, a transaction each), then the relationships, whose ends must be in the file or
        already in the tenant. A bad line refuses the whole file unless `skip_bad`. An interrupted
        import leaves whole batches; importing the same file again completes it."""
        batch_size = validation.limit(batch_size, "batch size", 10_000)
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            store = stores.fetch(conn, store_id)
            items, rels = bind_ids(parsed, store.id, new_ids)
            file_ids = {m.id for m in items}
            referenced = {end for _, r in rels for end in (r.source_memory_id, r.target_memory_id)}
            known = file_ids | memories.existing_ids(conn, list(referenced - file_ids))  # type: ignore[arg-type]
        valid_relationships, unknown = split_relationships(rels, known)  # type: ignore[arg-type]
        errors = parsed.errors + unknown
        if not skip_bad:
            ParsedFile(parsed.digest, errors=errors).fail_if_bad()
        batches = 0
        for start in range(0, len(items), batch_size):
            batch = items[start : start + batch_size]
            rows = with_vectors(store, batch)
            with self.transaction() as conn:
                store = stores.same_model(conn, store)
                memories.write(conn, self.tenant_id, store, rows)
            batches += 1
            if progress:
                progress(min(start + batch_size, len(items)), len(items))
        if valid_relationships:
            with self.transaction() as conn:
                relationships.upsert(conn, self.tenant_id, valid_relationships)
        return ImportReport(memories=len(items), relationships=len(valid_relationships), skipped=errors, batches=batches)

    def import_jsonl(self, store_id: UUID | str, data: bytes, **options: Any) -> ImportReport:
        """Check a whole JSONL file, then import it (options as for import_memories)."""
        return self.import_memories(store_id, parse_jsonl(data, self._store(store_id).embedding_dim), **options)

    def export_lines(self, store_id: UUID | str, *, embeddings: bool = True) -> Iterator[str]:
        """The store as JSONL lines: every memory (expired and archived included), oldest first,
        then every relationship with both ends in the store; importing them into an empty store
        recreates it. One transaction (one snapshot) while the lines are read, in batches."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            for memory, vector in memories.stream_for_export(conn, store_id, embeddings=embeddings):
                yield memory_line(memory, vector)
            for rel in relationships.within_store(conn, store_id):
                yield relationship_line(rel)

    def known_memory_ids(self, memory_ids: list[UUID]) -> set[UUID]:
        """Which of these ids are memories of this tenant (a CLI checks a file's relationship ends
        before it creates the store)."""
        with self.transaction() as conn:
            return memories.existing_ids(conn, memory_ids)
