"""Work the explorer starts once per server process, once its first page has run, in a process of
its own: UMAP's kernels compiled onto numba's disk cache (where the server's own first fit finds
them), the maps of small stores that have none fitted and kept (so a demo's maps are drawn from the
database when first opened), and the HNSW graph given the rows that imports left out of it
(core.service.indexing).

A process, not a thread: compiling and fitting hold a Python interpreter for seconds to a minute,
and in a thread of the server they held the one that answers the browser (the first page after a
start waited 8-10 s for its last messages; docs/BENCHMARKS.md). The embedding model of the store
in view is the exception (warm_model): it is loaded where searches use it, the server."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from uuid import UUID

import numpy as np

from core.admin import list_tenants
from core.config import get_settings
from core.db import Database, get_database
from core.embeddings import warm_embedder
from core.explorer.frames import memory_frame
from core.explorer.projection import INLINE_MAX, MIN_MEMORIES, SAMPLE_CAP, ProjectionParams, fit_and_keep, fit_projection, projection_key
from core.service import MemoryService
from core.service.indexing import index_all_pending

# A few seconds of background work for a demo; a big deployment maps the rest when opened.
# MEMEX_MAPS_AT_START changes it (the test suite sets 0: its stores come and go).
MAX_MAPS_AT_START = 50

log = logging.getLogger(__name__)


# After the first page, the start-up work and the model's load wait this long: the browser draws
# the page that asked first. Its first plotly chart (a 4.7 MB bundle) was drawn 1.3-1.5 s after
# the bundle arrived with nothing beside it, 2.2-2.3 s beside the start-up process, though that
# runs at the lowest priority (Chromium, two vCPUs; docs/BENCHMARKS.md "Stop 26").
AFTER_PAGE_S = 10.0
_started = threading.Event()
_start_lock = threading.Lock()


def start(db: Database) -> None:
    """Once per process (app.py calls it after every page; clearing Streamlit's caches does not
    start it again): let bulk writes index in the background, and start the start-up work
    AFTER_PAGE_S from now, unless MEMEX_EXPLORER_START_WORK turns it off."""
    db.background_index = True
    with _start_lock:
        if _started.is_set():
            return
        _started.set()
    if db.has_owner and get_settings().explorer_start_work:  # tenants are listed by the owner
        later = threading.Timer(AFTER_PAGE_S, _start_work)
        later.daemon = True
        later.name = "memex-start-work"
        later.start()


def _start_work() -> None:
    # a command, not multiprocessing: its spawn re-imports the main module, which during a page's
    # run Streamlit has made the page script itself
    subprocess.Popen([sys.executable, "-m", "core.explorer.startup", str(os.getpid())], stdin=subprocess.DEVNULL)


_warming: dict[tuple[str, int], threading.Event] = {}


def warm_model(model: str, dim: int, *, after: float = 0.0) -> None:
    """Load the embedding model of the store in view in a thread, once per model per process, so
    that its first search does not wait for it (the local model takes 10-20 s to load on two vCPUs:
    torch, transformers). app.py asks after every page, `after` AFTER_PAGE_S; the Search page asks
    for it now. A thread, as searches use the model in this process; a search that comes before
    the load ends waits for the same load (the model's own lock), behind the page's spinner."""
    with _start_lock:
        go = _warming.get((model, dim))
        if go is None:
            go = _warming[(model, dim)] = threading.Event()
            threading.Thread(target=_warm, args=(model, dim, go, after), name="memex-warm-model", daemon=True).start()
    if not after:
        go.set()


def _warm(model: str, dim: int, go: threading.Event, after: float) -> None:
    go.wait(after)
    try:
        warm_embedder(model, dim)
    except Exception:  # the first search loads it again and says what fails
        log.exception("loading the embedding model %s failed", model)


def background(server_pid: int) -> None:
    """The start-up work (run in its own process, on the database the settings name), at the lowest
    CPU priority: pages and the browser showing them come first. It ends with the server that
    started it: a server stopped and started again (a service manager's SIGTERM reaches only the
    server) left its minute of compiling and fitting running beside the next one's."""
    os.nice(19)
    threading.Thread(target=_end_with, args=(server_pid,), name="memex-end-with-server", daemon=True).start()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        db = get_database()
        tenants = [t.id for t in list_tenants(db)]
        vectors = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
        fit_projection([str(i) for i in range(64)], vectors, ProjectionParams())  # every kernel compiled once
        fitted = keep_small_maps(db, tenants, int(os.environ.get("MEMEX_MAPS_AT_START", MAX_MAPS_AT_START)))
        if fitted:
            log.info("fitted and kept the maps of %d small stores", fitted)
        done = index_all_pending(db, tenants)
        if done:
            log.info("indexed %d memories that imports had left out of the HNSW graph", done)
    except Exception:
        log.exception("the explorer's start-up work failed")


def keep_small_maps(db: Database, tenants: list[UUID], limit: int = MAX_MAPS_AT_START) -> int:
    """Fit and keep the default map of stores of up to INLINE_MAX memories that have no kept map
    at all (a store that had one is refitted when opened), at most `limit` of them."""
    fitted = 0
    params = ProjectionParams()
    for tenant_id in tenants:
        svc = MemoryService(db, tenant_id)
        for store in svc.list_stores():
            if fitted >= limit:
                return fitted
            if not MIN_MEMORIES <= store.total_memories <= INLINE_MAX or svc.load_map(store.id, params.label(SAMPLE_CAP)):
                continue
            key = projection_key(tenant_id, store, memory_frame(svc.all_memories(store.id)), params)
            if key.count >= MIN_MEMORIES:
                fit_and_keep(svc, key, SAMPLE_CAP)
                fitted += 1
    return fitted


def _end_with(server_pid: int) -> None:
    """Exit once the server is gone (this process is then handed to another parent)."""
    while os.getppid() == server_pid:
        time.sleep(1)
    os._exit(0)


if __name__ == "__main__":
    background(int(sys.argv[1]))
