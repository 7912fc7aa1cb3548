"""Typed results of the service. Plain frozen dataclasses: cheap, comparable, easy to print."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from core import validation
from core.errors import InvalidInput
from core.status import status_of

# Told (done, total) as long work advances; what it returns is ignored.
Progress = Callable[[int, int], object]


@dataclass(frozen=True)
class Tenant:
    id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True)
class TenantFigures:
    """What a tenant holds, counted in its own scope."""

    users: int
    stores: int
    memories: int


@dataclass(frozen=True)
class Principal:
    """Who an API key is, as PostgreSQL resolved it: its tenant, and its user/store scope and
    read-only flag (None: the key is not bound to one)."""

    key_id: UUID
    tenant_id: UUID
    key_name: str
    user_id: UUID | None
    store_id: UUID | None
    read_only: bool


@dataclass(frozen=True)
class ApiKey:
    """An API key as operators see it: never the secret, only its visible prefix."""

    id: UUID
    tenant_id: UUID
    name: str
    prefix: str
    user_id: UUID | None
    store_id: UUID | None
    read_only: bool
    expires_at: datetime | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


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
class StoreName:
    """A store named by its user (name or id) and its name: a write that takes one creates the
    user and the store, with `embedding_model` (else the default), in its own transaction when
    they are missing, so a write that fails leaves neither behind."""

    user: str
    store_name: str
    embedding_model: str | None = None


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

    def status(self, now: datetime) -> str:
        """archived, expired or live (core.status)."""
        return status_of(self.archived, self.expires_at, now)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# A store's memories as a table (MemoryOps.memory_table): the columns of each row, in order. The
# explorer's frames of a whole store are built from these rows; `id` (first) is text, the others
# are Memory's fields of these names.
TABLE_COLUMNS = (
    "id",
    "content",
    "memory_type",
    "source",
    "importance",
    "access_count",
    "last_accessed",
    "expires_at",
    "created_at",
    "updated_at",
    "archived",
    "metadata",
)

# What a listing of memories can be ordered by.
SORTABLE = ("created_at", "updated_at", "importance", "access_count", "last_accessed", "expires_at", "memory_type", "source")


@dataclass(frozen=True)
class MemoryPage:
    """One page of a listing and the number of memories matching in all."""

    items: list[Memory]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True)
class ScoreBreakdown:
    """Why a result ranked where it did. Terms that a search mode does not use stay None.

    Hybrid (core.hybrid): final = fused + lift + session_bonus + date_boost, where fused combines
    the similarity and text_rank (BM25: the sum of
    `terms`, each matched query lexeme's share); `lifted_by` is the neighbouring candidate that lent
    the lift; `origin` says which side made it a candidate (vector, text, both, or neighbour)."""

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
    terms: dict[str, float] | None = None
    lift: float | None = None
    lifted_by: str | None = None
    session_bonus: float | None = None
    date_boost: float | None = None
    date: str | None = None
    origin: str | None = None


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
class NewRelationship:
    source_memory_id: UUID | str
    target_memory_id: UUID | str
    relationship_type: str
    strength: float = 0.5

    def checked(self) -> NewRelationship:
        source = validation.uuid(self.source_memory_id, "source_memory_id")
        target = validation.uuid(self.target_memory_id, "target_memory_id")
        if source == target:
            raise InvalidInput("a memory cannot have a relationship with itself")
        return NewRelationship(
            source,
            target,
            validation.label(self.relationship_type, "relationship_type", 50),
            validation.unit_interval(self.strength, "strength"),
        )


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


@dataclass(frozen=True)
class Retrieval:
    """One logged search: who asked what of which store, with every setting that decided the
    answer, what came back (with scores) and the best of what was cut, and how long it took."""

    id: UUID
    store_id: UUID
    at: datetime | None  # None until written: the database's clock then
    interface: str  # python, cli, api, mcp, explorer
    key_id: UUID | None
    key_name: str | None
    actor: str
    query: str
    mode: str
    params: dict[str, Any]
    model: str
    results: list[dict[str, Any]]  # {id, rank, score, similarity, breakdown}
    near_misses: list[dict[str, Any]]  # {id, similarity, score, reason}
    result_count: int
    latency_ms: float


@dataclass(frozen=True)
class HistoryEvent:
    """One change of a memory, recorded by the database: created, updated, archived,
    unarchived, expired, merged (into `merged_into`), deleted or restored."""

    memory_id: UUID
    store_id: UUID
    version: int
    event: str
    at: datetime
    actor: str
    changes: dict[str, list[Any]]  # {field: [old, new]}
    snapshot: dict[str, Any] | None  # the memory as it was before it went (deleted, merged)
    merged_into: UUID | None


@dataclass(frozen=True)
class Membership:
    """A tenant an analyst may open, and the role there: viewer, editor or admin."""

    tenant_id: UUID
    tenant_name: str
    role: str


@dataclass(frozen=True)
class Analyst:
    """A person who uses the explorer: an email, a local password or OpenID Connect, operator or not."""

    id: UUID
    email: str
    operator: bool
    local_account: bool
    memberships: list[Membership]
