"""Work the explorer starts once per server process, in the background, when its first page runs:
UMAP's kernels loaded (the first map then fits in about a second), and the HNSW graph given the
rows that imports left out of it (core.service.indexing)."""

from __future__ import annotations

import logging
import threading

import streamlit as st

from core.admin import list_tenants
from core.db import Database
from core.explorer.projection import warm_up
from core.service.indexing import index_all_pending

log = logging.getLogger(__name__)


@st.cache_resource(show_spinner=False)
def start(_db: Database) -> None:
    """Once per process: warm UMAP up, let bulk writes index in the background, and index what
    imports made meanwhile left pending (big stores only)."""
    warm_up()
    _db.background_index = True
    if _db.admin is not None:  # tenants are listed by the owner
        threading.Thread(target=_index_pending, args=(_db,), name="memex-index-pending", daemon=True).start()


def _index_pending(db: Database) -> None:
    try:
        done = index_all_pending(db, [t.id for t in list_tenants(db)])
        if done:
            log.info("indexed %d memories that imports had left out of the HNSW graph", done)
    except Exception:
        log.exception("indexing the rows imports left pending failed")
