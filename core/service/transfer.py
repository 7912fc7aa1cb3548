"""Import and export of a store in the JSONL format (core.jsonl)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import numpy as np

from core import validation
from core.fields import NAMES, MemoryColumns
from core.jsonl import ImportReport, ParsedFile, bind_ids, memory_line, parse_jsonl, relationship_line, split_relationships
from core.models import Progress
from core.service import indexing
from core.service.base import TenantBound, embed_texts, writes
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
        """Write a parsed file into a store, then its relationships, whose ends must be in the file
        or already in the tenant. A bad line refuses the whole file unless `skip_bad`.

        The memories that carry their vector go in one transaction (binary COPY, all or nothing);
        those without are embedded with the store's model `batch_size` at a time, a transaction
        per batch. Every memory has its id (core.jsonl.bind_ids), so an interrupted import keeps
        whole transactions and importing the same file again completes it. Rows written by COPY
        stay out of the HNSW graph (migration 010): a store above the exact-search size searches
        them exactly until index_pending puts them in."""
        batch_size = validation.limit(batch_size, "batch size", 10_000)
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            store = stores.fetch(conn, store_id)
            columns, rels = bind_ids(parsed, store.id, new_ids)
            file_ids = set(columns.id or ())
            referenced = {end for _, r in rels for end in (r.source_memory_id, r.target_memory_id)}
            known = file_ids | memories.existing_ids(conn, list(referenced - file_ids))  # type: ignore[arg-type]
        valid_relationships, unknown = split_relationships(rels, known)  # type: ignore[arg-type]
        errors = parsed.errors + unknown
        if not skip_bad:
            ParsedFile(parsed.digest, errors=errors).fail_if_bad()
        total, done, batches = len(columns), 0, 0
        has = parsed.lines.has_embedding
        with_vector = np.flatnonzero(has)
        if len(with_vector):
            part = _take(columns, with_vector)

            def landed(rows: int) -> None:
                nonlocal done
                done += rows
                if progress:
                    progress(done, total)

            with self.transaction() as conn:
                store = stores.same_model(conn, store)
                memories.write(conn, self.tenant_id, store, part, on_chunk=landed if len(part) >= memories.COPY_MIN_ROWS else None)
            done = len(part)
            batches += 1
            if progress:
                progress(done, total)
            indexing.schedule(self, store.id, store.total_memories + len(part))
        to_embed = np.flatnonzero(~has)
        for start in range(0, len(to_embed), batch_size):
            part = _take(columns, to_embed[start : start + batch_size])
            part.embedding = embed_texts(store, list(part.content))
            with self.transaction() as conn:
                store = stores.same_model(conn, store)
                memories.write(conn, self.tenant_id, store, part)
            done += len(part)
            batches += 1
            if progress:
                progress(done, total)
        if valid_relationships:
            with self.transaction() as conn:
                relationships.upsert(conn, self.tenant_id, valid_relationships)
        return ImportReport(memories=total, relationships=len(valid_relationships), skipped=errors, batches=batches)

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


def _take(columns: MemoryColumns, rows: np.ndarray) -> MemoryColumns:
    """These rows of the columns (every column of a parsed file is a full list)."""
    if len(rows) == len(columns):
        return columns
    picked = rows.tolist()
    values = {name: [getattr(columns, name)[i] for i in picked] for name in NAMES if name != "embedding"}
    return MemoryColumns(embedding=columns.embedding[rows], **values)
