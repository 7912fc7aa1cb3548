"""Request and response bodies of the REST API (and the MCP tools' results).

Memories travel with the field names of core.fields (checked at import: a field added there
must be added here), and are checked by the service's own rules (core.fields.FIELDS): the limits
written into these schemas only describe the API to clients and to the fuzzer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from core import validation
from core.fields import NAMES
from core.models import SORTABLE, Memory, RelatedMemory, SearchResult
from core.ranking import MODES

MAX_BATCH = 1_000
MAX_PAGE = 1_000
Text = Annotated[str, Field(min_length=1, max_length=validation.MAX_CONTENT_CHARS)]
Label = Annotated[str, Field(min_length=1, max_length=100)]
Unit = Annotated[float, Field(ge=0, le=1)]
Scope = Annotated[str | None, Field(max_length=100, description="name or id; fixed by a key bound to one")]


Mode = Literal["vector", "text", "hybrid", "weighted"]
SortField = Literal["created_at", "updated_at", "importance", "access_count", "last_accessed", "expires_at", "memory_type", "source"]
assert get_args(Mode) == MODES and get_args(SortField) == SORTABLE


class Strict(BaseModel):
    # NaN and infinities (JSON has neither, Python's json reads them) are refused as what they are,
    # not as a number out of range ("min_similarity: NaN" said "should be <= 1")
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class MemoryFields(Strict):
    """A memory to add. Without `embedding` it is embedded with the store's model; with the `id`
    of a memory of this store, that memory is updated instead."""

    content: Text
    memory_type: Annotated[str, Field(min_length=1, max_length=50)] = "fact"
    source: Annotated[str | None, Field(max_length=100)] = None
    importance: Unit = 0.5
    metadata: dict[str, Any] | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    id: UUID | None = None
    embedding: Annotated[list[float] | None, Field(max_length=4096)] = None
    archived: bool = False


assert set(MemoryFields.model_fields) == set(NAMES), "core.fields and the API's memory fields differ"


class MemoryIn(MemoryFields):
    """POST /v1/memories: one memory, and where it goes."""

    user: Scope = None
    store: Scope = None


class MemoryBatch(Strict):
    memories: Annotated[list[MemoryFields], Field(min_length=1, max_length=MAX_BATCH)]
    user: Scope = None
    store: Scope = None


class MemoryChanges(Strict):
    """PATCH: only the fields sent change (null clears source and expires_at). `if_updated_at`,
    the updated_at you read, refuses the change (409) if someone changed the memory since."""

    content: Text | None = None
    memory_type: Annotated[str | None, Field(min_length=1, max_length=50)] = None
    source: Annotated[str | None, Field(max_length=100)] = None
    importance: Unit | None = None
    metadata: dict[str, Any] | None = None
    expires_at: datetime | None = None
    archived: bool | None = None
    if_updated_at: datetime | None = None


class MemoryOut(BaseModel):
    id: UUID
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
    archived: bool

    @classmethod
    def of(cls, m: Memory) -> MemoryOut:
        return cls.model_validate(m, from_attributes=True)


class MemoryList(BaseModel):
    memories: list[MemoryOut]


class MemoryPageOut(BaseModel):
    items: list[MemoryOut]
    total: int = Field(description="memories matching the filters, all pages")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last one")


class SearchIn(Strict):
    """The query's text, or its embedding (a vector of the store's model, for agents that embed
    themselves; vector and weighted modes), or both (the text is then not embedded again)."""

    query: Annotated[str | None, Field(min_length=1, max_length=validation.MAX_QUERY_CHARS)] = None
    embedding: Annotated[list[float] | None, Field(min_length=1, max_length=4096)] = None
    limit: Annotated[int, Field(ge=1, le=validation.MAX_LIMIT)] = 5
    min_similarity: Annotated[float, Field(ge=-1, le=1)] = 0.7
    mode: Mode = "vector"
    memory_types: Annotated[list[Label], Field(max_length=50)] = []
    sources: Annotated[list[Label], Field(max_length=50)] = []
    mmr_lambda: Unit | None = None
    record_access: bool = Field(True, description="count the returned memories as accessed (the default for agents)")
    explain: bool = Field(False, description="add each result's score breakdown")
    user: Scope = None
    store: Scope = None


class Breakdown(BaseModel):
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
    terms: dict[str, float] | None = Field(
        None, description="hybrid and text: each query term (stem) the memory holds, with its BM25 share"
    )
    lift: float | None = Field(None, description="hybrid: what a strong neighbouring turn added")
    lifted_by: str | None = Field(None, description="hybrid: the id of the neighbour that lent the lift")
    session_bonus: float | None = Field(None, description="hybrid: the share of the best candidate score of its session")
    date_boost: float | None = Field(None, description="hybrid: added for a date the query names")
    date: str | None = Field(None, description="hybrid: the date of the query it matched")
    origin: str | None = Field(None, description="hybrid: vector, text, vector+text or neighbour")


_MEMORY_FIELDS = tuple(MemoryOut.model_fields)


class Hit(MemoryOut):
    similarity: float | None
    score: float = Field(description="what the mode ranks by (the similarity in vector mode)")
    breakdown: Breakdown | None = None

    @classmethod
    def of_result(cls, r: SearchResult, *, explain: bool) -> Hit:
        fields = {name: getattr(r.memory, name) for name in _MEMORY_FIELDS}  # validated once, not as a MemoryOut first
        breakdown = Breakdown.model_validate(r.breakdown, from_attributes=True) if explain else None
        return cls.model_validate({**fields, "similarity": r.similarity, "score": r.score, "breakdown": breakdown})


class SearchOut(BaseModel):
    results: list[Hit]


class RelationshipIn(Strict):
    source_memory_id: UUID
    target_memory_id: UUID
    relationship_type: Annotated[str, Field(min_length=1, max_length=50)]
    strength: Unit = 0.5


class RelationshipOut(BaseModel):
    id: UUID
    source_memory_id: UUID
    target_memory_id: UUID
    relationship_type: str
    strength: float
    created_at: datetime


class Related(BaseModel):
    memory: MemoryOut
    relationship_type: str
    strength: float
    direction: str
    depth: int

    @classmethod
    def of(cls, r: RelatedMemory) -> Related:
        return cls(
            memory=MemoryOut.of(r.memory), relationship_type=r.relationship_type, strength=r.strength, direction=r.direction, depth=r.depth
        )


class RelatedList(BaseModel):
    related: list[Related]


class StoreIn(Strict):
    user: Scope = None
    store: Scope = None
    embedding_model: Annotated[str | None, Field(max_length=100)] = None


class StoreOut(BaseModel):
    id: UUID
    user_id: UUID
    store_name: str
    embedding_model: str
    embedding_dim: int
    total_memories: int
    last_accessed: datetime | None
    created_at: datetime


class StoreList(BaseModel):
    stores: list[StoreOut]


class ImportOut(BaseModel):
    memories: int
    relationships: int
    skipped: list[str]
