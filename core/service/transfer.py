"""Import and export of a store in the JSONL format (core.jsonl)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any
from uuid import UUID

import numpy as np
from sqlalchemy import Connection

from core import validation
from core.config import get_settings
from core.embeddings import resolve_model
from core.errors import Conflict, NotFound
from core.fields import NAMES, MemoryColumns
from core.jsonl import (
    ImportReport,
    ParsedFile,
    bind_ids,
    memory_line,
    parse_jsonl,
    refuse_bad_lines,
    relationship_line,
    split_relationships,
)
from core.models import MemoryStore, NewRelationship, Progress, StoreName
from core.service import indexing
from core.service.base import TenantBound, embed_texts, writes
from core.sql import memories, relationships, stores, users

IMPORT_BATCH = 256


class TransferOps(TenantBound):
    @writes
    def import_memories(
        self,
        store: UUID | str | StoreName,
        parsed: ParsedFile | Iterable[ParsedFile],
        *,
        skip_bad: bool = False,
        new_ids: bool = False,
        batch_size: int = IMPORT_BATCH,
        progress: Progress | None = None,
    ) -> ImportReport:
        """Write a parsed file (or its chunks, core.jsonl.parse_chunks) into a store (created with
        its user if named and missing), then its relationships, whose ends must be in the file or
        already in the tenant. A bad line refuses the whole file unless `skip_bad`.

        The memories that carry their vector go in one transaction (binary COPY, all or nothing),
        each chunk of the file read while the server writes the one before; a bad line found
        later rolls it all back, the store's creation included. Those without a vector are then
        embedded with the store's model `batch_size` at a time, a transaction per batch. Every
        memory has its id (core.jsonl.bind_ids), so an interrupted import keeps whole
        transactions and importing the same file again completes it. Rows written by COPY stay
        out of the HNSW graph (migration 010): a store above the exact-search size searches them
        exactly until index_pending puts them in."""
        batch_size = validation.limit(batch_size, "batch size", 10_000)
        target = store if isinstance(store, StoreName) else validation.uuid(store, "store id")
        chunks = [parsed] if isinstance(parsed, ParsedFile) else parsed
        errors: list[str] = []
        rels: list[tuple[int, NewRelationship]] = []
        to_embed: list[MemoryColumns] = []
        file_ids: set[UUID] = set()
        done, expected = 0, 0

        def with_vectors(store: MemoryStore) -> Iterator[MemoryColumns]:
            """Each chunk's memories that carry their vector; the rest kept for later. Runs in the
            COPY's helper thread, reading the next chunk while the server writes this one. After
            a bad line (without skip_bad) nothing more is written but every line is still read,
            so the refusal counts them all."""
            nonlocal expected
            for chunk in chunks:
                expected = max(expected, chunk.whole.lines)
                if chunk.lines.dim != store.embedding_dim:
                    raise Conflict(
                        f"the file was checked for {chunk.lines.dim}-d vectors; store {store.store_name!r} holds {store.embedding_dim}-d"
                    )
                errors.extend(chunk.errors)
                columns, chunk_rels = bind_ids(chunk, store.id, new_ids)
                rels.extend(chunk_rels)
                file_ids.update(columns.id or ())  # type: ignore[arg-type]
                if errors and not skip_bad:
                    continue
                has = chunk.lines.has_embedding
                to_embed.append(_take(columns, np.flatnonzero(~has)))
                yield _take(columns, np.flatnonzero(has))

        def landed(rows: int) -> None:
            nonlocal done
            done += rows
            if progress:
                progress(done, max(done, expected))  # the file's lines: a first estimate of its memories

        with self.transaction() as conn:
            found = self._target(conn, target)
            found = stores.same_model(conn, found)
            memories.copy_in(conn, self.tenant_id, found, with_vectors(found), on_chunk=landed)
            referenced = {end for _, r in rels for end in (r.source_memory_id, r.target_memory_id)}
            known = file_ids | memories.existing_ids(conn, list(referenced - file_ids))  # type: ignore[arg-type]
            valid_relationships, unknown = split_relationships(rels, known)
            errors += unknown
            if not skip_bad:
                refuse_bad_lines(errors)
        if done:
            indexing.schedule(self, found.id, found.total_memories + done)
        texts = MemoryColumns.concat(to_embed, found.embedding_dim)
        total, batches = done + len(texts), int(done > 0)
        if progress:
            progress(done, total)  # the estimate replaced by the count
        for start in range(0, len(texts), batch_size):
            part = texts.part(start, start + batch_size)
            part.embedding = embed_texts(found, list(part.content))
            with self.transaction() as conn:
                found = stores.same_model(conn, found)
                memories.write(conn, self.tenant_id, found, part)
            done += len(part)
            batches += 1
            if progress:
                progress(done, total)
        if valid_relationships:
            with self.transaction() as conn:
                relationships.upsert(conn, self.tenant_id, valid_relationships)
        return ImportReport(memories=total, relationships=len(valid_relationships), skipped=errors, batches=batches)

    def _target(self, conn: Connection, target: UUID | StoreName) -> MemoryStore:
        """The store an import writes to, in its transaction: by id, or by name, creating the user
        and the store when missing (a tenant admin's, as get_or_create_store)."""
        if isinstance(target, UUID):
            return stores.fetch(conn, target)
        store_name = validation.label(target.store_name, "store name", 100)
        user_id = validation.maybe_uuid(target.user)
        user_name = validation.label(target.user, "user name", 100) if user_id is None else ""
        user = users.get(conn, user_id) if user_id is not None else users.by_name(conn, user_name)
        if user is None and user_id is not None:
            raise NotFound(f"user {user_id} not found in this tenant")
        found = stores.find(conn, user.id, store_name) if user is not None else None
        if found is None:
            self.require("manage")
            if user is None:
                user = users.insert(conn, self.tenant_id, user_name) or users.by_name(conn, user_name)
                assert user is not None  # inserted, or inserted by another transaction meanwhile
            model = target.embedding_model or get_settings().default_embedding_model
            found = stores.upsert(conn, self.tenant_id, user.id, store_name, model, resolve_model(model)[1])
        if target.embedding_model and found.embedding_model != target.embedding_model:
            raise Conflict(f"store {store_name!r} uses {found.embedding_model} ({found.embedding_dim}d), not {target.embedding_model}")
        return found

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


def _take(columns: MemoryColumns, rows: np.ndarray) -> MemoryColumns:
    """These rows of the columns (every column of a parsed file is a full list)."""
    if len(rows) == len(columns):
        return columns
    picked = rows.tolist()
    values = {name: [getattr(columns, name)[i] for i in picked] for name in NAMES if name != "embedding"}
    return MemoryColumns(embedding=columns.embedding[rows], **values)
