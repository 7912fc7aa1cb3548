"""MemoryService: the one tenant-scoped surface of memex, for one tenant.

    from core import MemoryService, get_database
    svc = MemoryService(get_database(), tenant_id)
    store = svc.get_or_create_store(user_id)
    svc.add_memory(store.id, "Prefers window seats on long flights", memory_type="preference")
    svc.search_memories(store.id, "where does the user like to sit?", min_similarity=0.3)

Every call runs as the application role with this tenant set in each of its transactions, and
only there; what another tenant holds is invisible to it, whatever ids the caller passes. The
operations are grouped by what they act on, one module each: users, stores, memories,
relationships, search (and its explanation), log (the retrieval log and its replay), history
(restore, purge), curation, evaluation, transfer (import, export), indexing (rows bulk writes
left out of the HNSW graph), projections (kept embedding maps).
"""

from __future__ import annotations

from core.service.curation import CurationOps
from core.service.evaluation import EvaluationOps
from core.service.history import HistoryOps
from core.service.indexing import IndexOps
from core.service.log import LogOps
from core.service.memories import MemoryOps
from core.service.projections import ProjectionOps
from core.service.relationships import RelationshipOps
from core.service.stores import StoreOps
from core.service.transfer import TransferOps
from core.service.users import UserOps


class MemoryService(
    UserOps, StoreOps, MemoryOps, RelationshipOps, LogOps, HistoryOps, CurationOps, EvaluationOps, TransferOps, IndexOps, ProjectionOps
):
    """Users, stores, memories, relationships, search and its log, history, curation, evaluation,
    transfer, the HNSW graph's pending rows and the kept embedding maps of one tenant."""


__all__ = ["MemoryService"]
