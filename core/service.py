"""MemoryService: the whole tenant-scoped API in one object, for one tenant.

    from core import MemoryService, get_database
    svc = MemoryService(get_database(), tenant_id)
    store = svc.get_or_create_store(user_id)
    svc.add_memory(store.id, "Prefers window seats on long flights", memory_type="preference")
    svc.search_memories(store.id, "where does the user like to sit?", min_similarity=0.3)

Every call runs as the application role with this tenant set in each of its transactions, and
only there; what another tenant holds is invisible to it, whatever ids the caller passes.
"""

from __future__ import annotations

from core.memories import MemoryOps
from core.relationships import RelationshipOps
from core.search import SearchOps
from core.stores import StoreOps
from core.users import UserOps


class MemoryService(UserOps, StoreOps, MemoryOps, RelationshipOps, SearchOps):
    """Users, stores, memories, relationships and search of one tenant."""
