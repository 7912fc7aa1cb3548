"""Embedding maps: the vectors a map is fitted on, and the fitted maps kept in the database
(store_projections, migration 010). The fitting itself (UMAP) is the explorer's
(core.explorer.projection): this module stores and returns plain arrays."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import numpy as np

from core import validation
from core.service.base import TenantBound
from core.sql import memories, projections, stores


@dataclass(frozen=True)
class StoredMap:
    """A map as kept: the memories placed (ids as text) and their coordinates, with what it was
    fitted on (the store's model, its number of memories and latest update then)."""

    ids: list[str]
    coords: np.ndarray  # (len(ids), dims) float32
    model: str
    memory_count: int
    latest_update: datetime | None
    computed_at: datetime
    fit_seconds: float

    def matches(self, model: str, memory_count: int, latest_update: datetime | None) -> bool:
        """Still exactly the store's map: nothing was added, removed, edited or re-embedded since."""
        return (self.model, self.memory_count, self.latest_update) == (model, memory_count, latest_update)


def _ids_blob(ids: list[str]) -> bytes:
    return bytes.fromhex("".join(str(i).replace("-", "") for i in ids))


def _ids_from_blob(blob: bytes) -> list[str]:
    h = bytes(blob).hex()
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-{h[i + 12 : i + 16]}-{h[i + 16 : i + 20]}-{h[i + 20 : i + 32]}" for i in range(0, len(h), 32)
    ]


class ProjectionOps(TenantBound):
    def store_vectors(self, store_id: UUID | str) -> tuple[list[str], np.ndarray]:
        """Every memory of the store (whatever its status), oldest first: (ids as text, an (n, dim)
        float32 matrix), read in one binary COPY. What a map is fitted on."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            store = stores.fetch(conn, store_id)
            return memories.vectors(conn, store_id, store.embedding_dim)

    def save_map(
        self,
        store_id: UUID | str,
        params: str,
        ids: list[str],
        coords: np.ndarray,
        *,
        model: str,
        memory_count: int,
        latest_update: datetime | None,
        computed_at: datetime,
        fit_seconds: float,
    ) -> None:
        """Keep a fitted map (replacing the one of the same parameters)."""
        store_id = validation.uuid(store_id, "store id")
        c = np.ascontiguousarray(coords, dtype="<f4")
        if c.ndim != 2 or c.shape[0] != len(ids) or c.shape[1] not in (2, 3):
            raise ValueError("coords must be (len(ids), 2 or 3)")
        with self.transaction() as conn:
            stores.fetch(conn, store_id)
            projections.save(
                conn,
                self.tenant_id,
                store_id,
                params,
                model=model,
                memory_count=memory_count,
                latest_update=latest_update,
                computed_at=computed_at,
                fit_seconds=float(fit_seconds),
                dims=int(c.shape[1]),
                ids=_ids_blob(ids),
                coords=c.tobytes(),
            )

    def load_map(self, store_id: UUID | str, params: str) -> StoredMap | None:
        """The kept map of these parameters, current or not (StoredMap.matches tells), or None."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            row = projections.load(conn, store_id, params)
        if row is None:
            return None
        coords = np.frombuffer(bytes(row.coords), dtype="<f4").reshape(-1, row.dims).astype(np.float32)
        return StoredMap(
            _ids_from_blob(row.ids), coords, row.model, row.memory_count, row.latest_update, row.computed_at, float(row.fit_seconds)
        )

    def forget_maps(self, store_id: UUID | str) -> int:
        """Drop the store's kept maps (the next view fits again)."""
        store_id = validation.uuid(store_id, "store id")
        with self.transaction() as conn:
            return projections.delete(conn, store_id)
