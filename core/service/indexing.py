"""Which rows are in the HNSW graphs (migration 010).

Stores of up to EXACT_MAX_ROWS memories are searched exactly, so their rows stay out of the
graphs: a bulk write (an import, bulk_add_memories, a batch of add_memories) pays no graph
insertion, ~4 ms of server CPU a row. A bigger store is searched through the graph over its
indexed rows plus an exact scan of the rest (core.sql.search), so every row is found at every
moment; index_pending puts the rest into the graph, a batch a transaction, off the writer's path:
`memex index`, or in the background of a long-running process (the explorer, an API server) that
turned `Database.background_index` on.
"""

from __future__ import annotations

import logging
import threading
from uuid import UUID

from core import validation
from core.db import Database
from core.models import Progress
from core.search import EXACT_MAX_ROWS
from core.service.base import TenantBound
from core.sql import memories, stores

INDEX_BATCH = 2_000  # rows a transaction: each one waits for ~2,000 graph insertions, a few seconds
log = logging.getLogger(__name__)


class IndexOps(TenantBound):
    def pending_index(self, store_id: UUID | str) -> int:
        """Memories of a store above the exact-search size still outside the HNSW graph (0 for a
        smaller store: it is searched exactly, its rows need not be there)."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            store = stores.fetch(conn, store_id)
            return memories.unindexed_count(conn, store_id) if store.total_memories > EXACT_MAX_ROWS else 0

    def index_pending(self, store_id: UUID | str, *, batch: int = INDEX_BATCH, progress: Progress | None = None) -> int:
        """Put a big store's unindexed memories into the HNSW graph, `batch` rows a transaction
        (searches find every row meanwhile); returns how many. Nothing to do for a store of up to
        the exact-search size."""
        store_id = validation.uuid(store_id, "store id")
        batch = validation.limit(batch, "batch", 100_000)
        total = self.pending_index(store_id)
        done = 0
        while total:
            with self.transaction() as conn:
                if stores.fetch(conn, store_id).total_memories <= EXACT_MAX_ROWS:
                    break  # it shrank meanwhile
                moved = memories.index_batch(conn, store_id, batch)
            done += moved
            if progress:
                progress(min(done, total), total)
            if moved < batch:
                break
        return done


_running: dict[tuple[UUID, UUID], threading.Thread] = {}
_lock = threading.Lock()


def schedule(svc: TenantBound, store_id: UUID, rows_after: int) -> bool:
    """After a bulk write that left a store with `rows_after` memories: put its pending rows into
    the HNSW graph in a background thread of this process, if the database allows it
    (Database.background_index) and the store is above the exact-search size. The thread uses
    the writer's own service, so it runs in the same scope (an API key's signed one included).
    Returns whether a thread runs for it (one per store at a time)."""
    if not svc.db.background_index or rows_after <= EXACT_MAX_ROWS:
        return False
    key = (svc.tenant_id, store_id)
    with _lock:
        if key in _running and _running[key].is_alive():
            return True

        def run() -> None:
            try:
                assert isinstance(svc, IndexOps)  # a MemoryService: its writes call this
                svc.index_pending(store_id)
            except Exception:  # a background task has no caller to tell: log it; the next write or start tries again
                log.exception("indexing the pending rows of store %s failed", store_id)
            finally:
                with _lock:
                    _running.pop(key, None)

        thread = threading.Thread(target=run, name=f"memex-index-{store_id}", daemon=True)
        _running[key] = thread
        thread.start()
    return True


def index_all_pending(db: Database, tenant_ids: list[UUID]) -> int:
    """Every big store's pending rows of these tenants, one store after another (an explorer or
    API server at start: imports made meanwhile by `memex import`). Returns the rows indexed."""
    from core.service import MemoryService

    done = 0
    for tenant_id in tenant_ids:
        svc = MemoryService(db, tenant_id)
        for store in svc.list_stores():
            if store.total_memories > EXACT_MAX_ROWS:
                done += svc.index_pending(store.id)
    return done
