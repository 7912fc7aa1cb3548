"""The REST API under /v1: each route translates HTTP to one MemoryService call and back."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from core.api import schemas as s
from core.api.caller import Callers, import_target, resolve_store
from core.api.problems import responses
from core.config import get_settings
from core.embeddings import resolve_model
from core.errors import Conflict, InvalidInput
from core.fields import NewMemory
from core.jsonl import parse_chunks
from core.models import NewRelationship, StoreName, StoreStats
from core.search import Filters, SearchParams
from core.service import MemoryService
from core.service.base import UNSET

NDJSON = "application/x-ndjson"
# the key, as clients send it; declared so that the OpenAPI schema (and Schemathesis) know it
bearer = HTTPBearer(auto_error=False, scheme_name="HTTPBearer", description="An API key: `Authorization: Bearer mx_...`")


async def caller(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> MemoryService:
    """The key's service: a key seen lately without a thread (FastAPI runs a plain function
    dependency in its threadpool: one more hop per request), else PostgreSQL asked in one."""
    callers: Callers = request.app.state.callers
    key = credentials.credentials if credentials else None
    svc = callers.seen(key)
    return svc if svc is not None else await run_in_threadpool(callers.service, key)


Caller = Annotated[MemoryService, Depends(caller)]
UserParam = Annotated[str | None, Query(max_length=100, description="user name or id (fixed by a key bound to one)")]
StoreParam = Annotated[str | None, Query(max_length=100, description="store name or id; `default` when absent")]
router = APIRouter(prefix="/v1", responses=responses(401, 403, 422, 500, 503))
# a JSON body: 400 when it cannot be decoded, 413 over the size limit (core.api.app)
BODY = (400, 413)


@router.get("/stores", response_model=s.StoreList, responses=responses(404), tags=["stores"])
def list_stores(svc: Caller, user: UserParam = None) -> s.StoreList:
    """The stores the key may see (of one user when named)."""
    owner = None if user is None else svc.find_user(user).id
    return s.StoreList(stores=[s.StoreOut.model_validate(x, from_attributes=True) for x in svc.list_stores(owner)])


@router.post("/stores", status_code=201, response_model=s.StoreOut, responses=responses(*BODY, 404, 409), tags=["stores"])
def create_store(body: s.StoreIn, svc: Caller) -> s.StoreOut:
    """Find or create a store (and its user): the original getOrCreateStore. A new store gets
    `embedding_model` (the server's default when absent); an existing one must already use it."""
    if body.embedding_model:
        try:  # an unknown model is refused before anything is created
            resolve_model(body.embedding_model)
        except InvalidInput as exc:
            raise InvalidInput(f"embedding_model: {exc}") from None
    store = resolve_store(svc, body.user, body.store, create=True, embedding_model=body.embedding_model)
    if body.embedding_model and body.embedding_model != store.embedding_model:
        raise Conflict(f"embedding_model: store {store.store_name!r} uses {store.embedding_model}")
    return s.StoreOut.model_validate(store, from_attributes=True)


@router.get("/stats", response_model=StoreStats, responses=responses(404), tags=["stores"])
def store_stats(svc: Caller, user: UserParam = None, store: StoreParam = None) -> StoreStats:
    """A store's figures: statuses (they add up to the total), types, sources, relationships, usage."""
    return svc.store_stats(resolve_store(svc, user, store, create=False).id)


@router.post("/memories", status_code=201, response_model=s.MemoryOut, responses=responses(*BODY, 404, 409), tags=["memories"])
def create_memory(body: s.MemoryIn, svc: Caller) -> s.MemoryOut:
    """Store one memory (embedded with the store's model unless it brings its vector)."""
    store = resolve_store(svc, body.user, body.store, create=True)
    item = NewMemory(**body.model_dump(exclude={"user", "store"}))
    return s.MemoryOut.of(svc.add_memories(store.id, [item])[0])


@router.post("/memories/batch", status_code=201, response_model=s.MemoryList, responses=responses(*BODY, 404, 409), tags=["memories"])
def create_memories(body: s.MemoryBatch, svc: Caller) -> s.MemoryList:
    """Store up to 1,000 memories in one transaction (all or none), embedded in one request."""
    store = resolve_store(svc, body.user, body.store, create=True)
    added = svc.add_memories(store.id, [NewMemory(**m.model_dump()) for m in body.memories])
    return s.MemoryList(memories=[s.MemoryOut.of(m) for m in added])


@router.get("/memories", response_model=s.MemoryPageOut, responses=responses(404), tags=["memories"])
def list_memories(
    svc: Caller,
    user: UserParam = None,
    store: StoreParam = None,
    memory_type: Annotated[list[str] | None, Query(max_length=50, description="only these types (repeat the parameter)")] = None,
    source: Annotated[list[str] | None, Query(max_length=50, description="only these sources (repeat the parameter)")] = None,
    contains: Annotated[str | None, Query(max_length=1000, description="content or metadata contains, any case")] = None,
    metadata: Annotated[str | None, Query(max_length=10_000, description="a JSON object the metadata must contain")] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    min_importance: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_importance: Annotated[float | None, Query(ge=0, le=1)] = None,
    include_expired: bool = False,
    archived: Annotated[bool | None, Query(description="true: only archived; false: none; absent: both")] = None,
    order_by: s.SortField = "created_at",
    descending: bool = True,
    limit: Annotated[int, Query(ge=1, le=s.MAX_PAGE)] = 100,
    cursor: Annotated[str | None, Query(max_length=500, description="next_cursor of the previous page")] = None,
) -> s.MemoryPageOut:
    """One page of a store's memories, with every filter of the service's list_memories."""
    target = resolve_store(svc, user, store, create=False)
    page = svc.list_memories(
        target.id,
        memory_types=memory_type,
        sources=source,
        text_contains=contains,
        metadata=_json_object(metadata, "metadata"),
        created_after=created_after,
        created_before=created_before,
        min_importance=min_importance,
        max_importance=max_importance,
        include_expired=include_expired,
        archived=archived,
        order_by=order_by,
        descending=descending,
        limit=limit + 1,  # one more than asked, to know whether another page follows
        after=_read_cursor(cursor, order_by, descending),
    )
    items = page.items[:limit]
    last = items[-1] if len(page.items) > limit else None
    return s.MemoryPageOut(
        items=[s.MemoryOut.of(m) for m in items],
        total=page.total,
        next_cursor=_write_cursor(getattr(last, order_by), last.id, order_by, descending) if last else None,
    )


@router.get("/memories/{memory_id:uuid}", response_model=s.MemoryOut, responses=responses(404), tags=["memories"])
def get_memory(memory_id: UUID, svc: Caller) -> s.MemoryOut:
    return s.MemoryOut.of(svc.get_memory(memory_id))


@router.patch("/memories/{memory_id:uuid}", response_model=s.MemoryOut, responses=responses(*BODY, 404, 409), tags=["memories"])
def update_memory(memory_id: UUID, body: s.MemoryChanges, svc: Caller) -> s.MemoryOut:
    """Change the fields sent; new content is embedded again."""
    sent = body.model_dump(exclude_unset=True)
    if_updated_at = sent.pop("if_updated_at", None)
    for name in ("content", "memory_type", "importance", "metadata", "archived"):
        if name in sent and sent[name] is None:
            raise InvalidInput(f"{name}: cannot be null")
    fields: dict[str, Any] = {name: sent.get(name, UNSET) for name in s.MemoryChanges.model_fields if name != "if_updated_at"}
    return s.MemoryOut.of(svc.update_memory(memory_id, **fields, if_updated_at=if_updated_at))


@router.delete("/memories/{memory_id:uuid}", status_code=204, responses=responses(404), tags=["memories"])
def delete_memory(memory_id: UUID, svc: Caller) -> Response:
    svc.delete_memory(memory_id)
    return Response(status_code=204)


@router.get("/memories/{memory_id:uuid}/related", response_model=s.RelatedList, responses=responses(404), tags=["relationships"])
def related_memories(
    memory_id: UUID,
    svc: Caller,
    depth: Annotated[int, Query(ge=1, le=3)] = 1,
    direction: Annotated[str, Query(pattern="^(outgoing|incoming|both)$")] = "both",
    relationship_type: Annotated[list[str] | None, Query(max_length=50)] = None,
    min_strength: Annotated[float, Query(ge=0, le=1)] = 0.0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 20,
) -> s.RelatedList:
    """Memories reachable through relationships, nearest and strongest first."""
    found = svc.neighbours(
        memory_id, depth, direction=direction, relationship_types=relationship_type, min_strength=min_strength, limit=limit
    )
    return s.RelatedList(related=[s.Related.of(r) for r in found])


@router.post("/relationships", status_code=201, response_model=s.RelationshipOut, responses=responses(*BODY, 404), tags=["relationships"])
def add_relationship(body: s.RelationshipIn, svc: Caller) -> s.RelationshipOut:
    """Relate two memories (an upsert: the same source, target and type take the new strength)."""
    rel = svc.add_relationships([NewRelationship(body.source_memory_id, body.target_memory_id, body.relationship_type, body.strength)])[0]
    return s.RelationshipOut.model_validate(rel, from_attributes=True)


@router.delete("/relationships/{relationship_id:uuid}", status_code=204, responses=responses(404), tags=["relationships"])
def delete_relationship(relationship_id: UUID, svc: Caller) -> Response:
    svc.delete_relationship(relationship_id)
    return Response(status_code=204)


class _OrjsonRequest(Request):
    """A request whose JSON body orjson reads: a query vector of 384 numbers takes json.loads
    ~0.2 ms, orjson ~0.02. What orjson refuses (NaN, invalid UTF-8, ...) goes to json.loads, so
    such a body is read, or refused, exactly as before."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._json = json.loads(body)
        return self._json


class OrjsonRoute(APIRoute):
    """A route whose body is read by _OrjsonRequest (FastAPI's way to change the Request class).
    For bodies of numbers, strings and flags only: orjson reads an integer beyond 64 bits as a
    float, which a free-form JSON field (a memory's metadata) would store changed."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            return await handler(_OrjsonRequest(request.scope, request.receive))

        return route


def search(body: s.SearchIn, svc: Caller) -> Response:
    """The best memories for a query in any mode; `explain` adds each score's breakdown. Send the
    query's text, or its embedding (vector and weighted modes), or both."""
    if body.query is None and body.embedding is None:
        raise InvalidInput("query: send the query's text, or its embedding")
    if body.query is None and body.mode in ("text", "hybrid"):
        raise InvalidInput(f"query: {body.mode} search needs the query's text, not only its embedding")
    filters = Filters(tuple(body.memory_types), tuple(body.sources))
    if body.embedding is None:  # the query is embedded with the store's model, outside any transaction
        assert body.query is not None
        store = resolve_store(svc, body.user, body.store, create=False)
        params = SearchParams(body.limit, body.min_similarity, body.mode, filters, mmr_lambda=body.mmr_lambda)
        results = svc.search(store, body.query, params, record_access=body.record_access)
    else:  # nothing to embed: the key, the store and the search in one transaction
        with svc.one_transaction():
            store = resolve_store(svc, body.user, body.store, create=False)
            if body.query is None:
                results = svc.search_by_embedding(
                    store,
                    body.embedding,
                    body.limit,
                    body.min_similarity,
                    record_access=body.record_access,
                    memory_types=filters.memory_types,
                    sources=filters.sources,
                    mode=body.mode,
                )
            else:
                params = SearchParams(body.limit, body.min_similarity, body.mode, filters, mmr_lambda=body.mmr_lambda)
                results = svc.search(store, body.query, params, record_access=body.record_access, query_embedding=body.embedding)
    return as_json(s.SearchOut(results=[s.Hit.of_result(r, explain=body.explain) for r in results]))


router.add_api_route(
    "/search",
    search,
    methods=["POST"],
    response_model=s.SearchOut,
    responses=responses(*BODY, 404),
    tags=["search"],
    route_class_override=OrjsonRoute,
)


def as_json(model: BaseModel) -> Response:
    """The response, serialized in the route's own thread: returned as a model, FastAPI would
    validate it again, in another hop through its threadpool."""
    return Response(model.model_dump_json(by_alias=True), media_type="application/json")


@router.post(
    "/import",
    response_model=s.ImportOut,
    responses=responses(404, 409, 413, 415),
    tags=["transfer"],
    # no body parameter: FastAPI would parse it whole; the body is JSON Lines, one memory (or
    # relationship) per line, documented here as an array of memories for clients and the fuzzer
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {NDJSON: {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/MemoryFields"}}}},
        }
    },
)
async def import_jsonl(
    request: Request, svc: Caller, user: UserParam = None, store: StoreParam = None, skip_bad: bool = False, new_ids: bool = False
) -> s.ImportOut:
    """Import a JSONL file (the format of `memex export`): read as it arrives, every line checked
    before anything is written; a bad line refuses the file (422) unless `skip_bad`."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (NDJSON, "application/jsonl", "application/json-lines"):
        raise HTTPException(415, f"send the file as {NDJSON}")
    # read as it arrives, bounded by the body limit: the file is checked whole before any write
    data = b"".join([chunk async for chunk in request.stream()])

    def run() -> s.ImportOut:
        found = import_target(svc, user, store)  # a StoreName: created by the import's transaction, with the default model
        target, dim = (
            (found, resolve_model(get_settings().default_embedding_model)[1])
            if isinstance(found, StoreName)
            else (found.id, found.embedding_dim)
        )
        report = svc.import_memories(target, parse_chunks(data, dim), skip_bad=skip_bad, new_ids=new_ids)
        return s.ImportOut(memories=report.memories, relationships=report.relationships, skipped=report.skipped)

    return await run_in_threadpool(run)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {"content": {NDJSON: {"schema": {"type": "string"}}}, "description": "JSON Lines: memories, then relationships"},
        **responses(404),
    },
    tags=["transfer"],
)
def export_jsonl(svc: Caller, user: UserParam = None, store: StoreParam = None, embeddings: bool = True) -> StreamingResponse:
    """The store as JSON Lines (every memory, then every relationship inside it), streamed."""
    target = resolve_store(svc, user, store, create=False)

    def lines() -> Iterator[bytes]:
        for line in svc.export_lines(target.id, embeddings=embeddings):
            yield line.encode() + b"\n"

    return StreamingResponse(lines(), media_type=NDJSON)


def _json_object(value: str | None, field: str) -> dict[str, Any] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{field}: not valid JSON ({exc.msg})") from None
    if not isinstance(parsed, dict):
        raise InvalidInput(f"{field}: must be a JSON object")
    return parsed


def _write_cursor(value: Any, memory_id: UUID, order_by: str, descending: bool) -> str:
    payload = {"v": value.isoformat() if isinstance(value, datetime) else value, "id": str(memory_id), "o": order_by, "d": descending}
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def _read_cursor(cursor: str | None, order_by: str, descending: bool) -> tuple[Any, str] | None:
    if cursor is None:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value, memory_id = payload["v"], payload["id"]
        same_order = (payload["o"], payload["d"]) == (order_by, descending)
    except (ValueError, KeyError, TypeError):
        raise InvalidInput("cursor: not a cursor this API gave") from None
    if not same_order:
        raise InvalidInput("cursor: it belongs to a listing in another order; keep order_by and descending")
    if order_by in ("created_at", "updated_at", "last_accessed", "expires_at") and value is not None:
        try:
            value = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise InvalidInput("cursor: not a cursor this API gave") from None
    return value, memory_id
