"""Typed results of the service. Plain frozen dataclasses: cheap, comparable, easy to print."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Tenant:
    id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True)
class User:
    id: UUID
    tenant_id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True)
class MemoryStore:
    id: UUID
    tenant_id: UUID
    user_id: UUID
    store_name: str
    embedding_model: str
    embedding_dim: int
    total_memories: int
    last_accessed: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Memory:
    id: UUID
    tenant_id: UUID
    store_id: UUID
    content: str
    memory_type: str
    source: str | None
    importance: float
    access_count: int
    last_accessed: datetime | None
    expires_at: datetime | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    archived: bool = False

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def status(self, now: datetime) -> str:
        """archived, expired or live (archived wins: search skips it whatever its expiry)."""
        return "archived" if self.archived else "expired" if self.is_expired(now) else "live"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoreBreakdown:
    """Why a result ranked where it did. Terms that a search mode does not use stay None."""

    similarity: float | None = None
    vector_rank: int | None = None
    text_rank: float | None = None
    text_position: int | None = None
    fused: float | None = None
    importance: float | None = None
    recency: float | None = None
    relevance: float | None = None
    mmr: float | None = None
    final: float = 0.0


@dataclass(frozen=True)
class SearchResult:
    memory: Memory
    similarity: float | None
    score: float
    breakdown: ScoreBreakdown = field(default_factory=ScoreBreakdown)

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-ready form: the memory's fields, its similarity and score, and the breakdown."""
        out = self.memory.to_dict()
        out.update(similarity=self.similarity, score=self.score, breakdown=asdict(self.breakdown))
        return out


@dataclass(frozen=True)
class Relationship:
    id: UUID
    tenant_id: UUID
    source_memory_id: UUID
    target_memory_id: UUID
    relationship_type: str
    strength: float
    created_at: datetime


@dataclass(frozen=True)
class RelatedMemory:
    """A memory reached through a relationship, with the edge that reached it."""

    memory: Memory
    relationship_type: str
    strength: float
    direction: str  # "outgoing" (memory is the target) or "incoming" (memory is the source)
    depth: int = 1


@dataclass(frozen=True)
class StoreStats:
    store_id: UUID
    total: int
    live: int
    expired: int
    archived: int
    by_type: dict[str, int]
    by_source: dict[str, int]
    relationships_by_type: dict[str, int]
    mean_importance: float | None
    total_accesses: int
    never_accessed: int
    oldest: datetime | None
    newest: datetime | None
