"""Work the explorer starts once per server process, in the background, once its first page has
run: UMAP's kernels loaded, the maps of small stores that have none fitted and kept (so a demo's
maps are drawn from the database when first opened), and the HNSW graph given the rows that
imports left out of it (core.service.indexing)."""

from __future__ import annotations

import logging
import os
import threading
from uuid import UUID

import streamlit as st

from core.admin import list_tenants
from core.db import Database
from core.explorer.frames import memory_frame
from core.explorer.projection import INLINE_MAX, MIN_MEMORIES, SAMPLE_CAP, ProjectionParams, fit_and_keep, projection_key, warm_up
from core.service import MemoryService
from core.service.indexing import index_all_pending

# A few seconds of background work for a demo; a big deployment maps the rest when opened.
# MEMEX_MAPS_AT_START changes it (the test suite sets 0: its stores come and go).
MAX_MAPS_AT_START = 50

log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False)
def start(_db: Database) -> None:
    """Once per process: warm UMAP up, let bulk writes index in the background, and index what
    imports made meanwhile left pending (big stores only)."""
    warming = warm_up()
    _db.background_index = True
    if _db.admin is not None:  # tenants are listed by the owner
        threading.Thread(target=_background, args=(_db, warming), name="memex-startup", daemon=True).start()


def _background(db: Database, warming: threading.Thread) -> None:
    try:
        tenants = [t.id for t in list_tenants(db)]
        warming.join()
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
