"""The demo data set: three tenants of assistant memories, written by hand in data/demo.json.

Loading is idempotent: tenants, users and stores are found by name, memories get ids derived
from their keys, and a store that already has its retrieval log (written last, by
core.demo_activity) is left as it is, so loading twice leaves one copy.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid5

from core.admin import find_tenant, list_tenants
from core.db import Database
from core.demo_activity import record_activity
from core.fields import NewMemory
from core.models import NewRelationship, Progress
from core.service import MemoryService

DEMO_FILE = Path(__file__).resolve().parent / "data" / "demo.json"
_NAMESPACE = UUID("a4f0c9f2-3b1e-4d57-8f0a-6c2b9e7d5a14")


@dataclass(frozen=True)
class DemoReport:
    tenants: int
    users: int
    stores: int
    memories: int
    relationships: int
    searches: int  # logged searches written by this load (none for stores loaded before)


def database_is_empty(db: Database) -> bool:
    return not list_tenants(db)


def load_demo(db: Database, *, progress: Progress | None = None) -> DemoReport:
    """Load the demo tenants with weeks of activity (core.demo_activity); `progress(done, total)` counts memories."""
    data = json.loads(DEMO_FILE.read_text(encoding="utf-8"))
    now = datetime.now(UTC).replace(microsecond=0)
    total = sum(len(s["memories"]) for t in data["tenants"] for u in t["users"] for s in u["stores"])
    counts = dict(tenants=0, users=0, stores=0, memories=0, relationships=0, searches=0)
    for tenant_data in data["tenants"]:
        tenant = find_tenant(db, tenant_data["name"], create=True)
        svc = MemoryService(db, tenant.id, actor="demo", interface="python")
        counts["tenants"] += 1
        for user_data in tenant_data["users"]:
            user = svc.find_user(user_data["name"], create=True)
            counts["users"] += 1
            for store_data in user_data["stores"]:
                store = svc.get_or_create_store(user.id, store_data["name"])
                counts["stores"] += 1
                if svc.retrievals(store.id, limit=1).total:  # loaded before, activity included: leave it as it is
                    counts["memories"] += len(store_data["memories"])
                    counts["relationships"] += len(store_data["relationships"])
                    if progress:
                        progress(counts["memories"], total)
                    continue
                ids = {m["key"]: uuid5(_NAMESPACE, f"{tenant.name}/{m['key']}") for m in store_data["memories"]}
                items = []
                for m in store_data["memories"]:
                    created = now - timedelta(days=m["age_days"], hours=zlib.crc32(m["key"].encode()) % 24)
                    expires = None if m["expires_in_days"] is None else now + timedelta(days=m["expires_in_days"])
                    items.append(
                        NewMemory(
                            content=m["content"],
                            memory_type=m["memory_type"],
                            source=m["source"],
                            importance=m["importance"],
                            metadata=m["metadata"],
                            created_at=created,
                            expires_at=expires,
                            id=ids[m["key"]],
                        )
                    )
                # a usage history: the access count, last accessed half-way since creation
                accesses = {ids[m["key"]]: m["access_count"] for m in store_data["memories"]}
                svc.set_usage(
                    [
                        (m.id, accesses[m.id], m.created_at + (now - m.created_at) / 2 if accesses[m.id] else None)
                        for m in svc.add_memories(store.id, items)
                    ]
                )
                svc.add_relationships(
                    NewRelationship(ids[r["source"]], ids[r["target"]], r["relationship_type"], r["strength"])
                    for r in store_data["relationships"]
                )
                linked = {ids[r[end]] for r in store_data["relationships"] for end in ("source", "target")}
                activity = record_activity(svc, store, linked, f"{tenant.name}/{user.name}/{store.store_name}", now)
                counts["searches"] += activity.searches
                counts["memories"] += len(items)
                counts["relationships"] += len(store_data["relationships"])
                if progress:
                    progress(counts["memories"], total)
    return DemoReport(**counts)
