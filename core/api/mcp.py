"""The MCP tools (official `mcp` SDK, 2.x server API), defined once and served over streamable
HTTP inside `memex serve` (at /mcp) and over stdio by `memex mcp`.

No tool takes a tenant: over HTTP the bearer key of each request decides it (checked by
PostgreSQL in ApiKeyVerifier, again in every transaction), over stdio the key in MEMEX_API_KEY.
A failure the model can act on (not found, invalid, read-only) comes back as a tool error with
memex's one-line message; anything else is logged and reported without detail.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from mcp.server import MCPServer
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import AnyHttpUrl, BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from core.api import schemas as s
from core.api.caller import Callers, resolve_store
from core.errors import MemexError
from core.fields import NewMemory
from core.models import NewRelationship
from core.search import Filters, SearchParams
from core.service import MemoryService
from core.service.base import UNSET

INSTRUCTIONS = (
    "Long-term memory for this user, kept between conversations. Before answering a question that may depend on "
    "something said earlier (preferences, facts about people, plans, decisions), call search_memories. When the user "
    "states something worth remembering later, call add_memory with one self-contained fact per memory (write who and "
    "what, not 'he' or 'it'). When a fact changes, add the new one and relate it to the old one with add_relationship "
    "(relationship_type 'updates'), or update_memory if the old one was simply wrong."
)
T = TypeVar("T")
UserArg = Annotated[
    str | None, Field(max_length=100, description="The user whose memories these are; leave empty when the key is bound to one.")
]
StoreArg = Annotated[str | None, Field(max_length=100, description="The memory store's name; leave empty for the default store.")]


class ApiKeyVerifier:
    """The SDK's TokenVerifier: `Authorization: Bearer <key>` checked by PostgreSQL; an unknown,
    revoked or expired key gets 401 before any MCP processing."""

    def __init__(self, callers: Callers):
        self.callers = callers

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            # asked of PostgreSQL every time: a revoked or expired key is refused at its next request
            svc = await run_in_threadpool(lambda: self.callers.service(token, fresh=True))
        except MemexError:
            return None
        return AccessToken(token=token, client_id=str(svc.tenant_id), scopes=[])


class SearchHits(BaseModel):
    results: list[s.Hit]


def argument_errors(exc: ValidationError) -> str:
    """Pydantic's report of a tool's arguments as one line, each bad argument by name with what it
    was given (the model's own input): "memory_id: Input should be a valid UUID, ... (got 'x')".
    The SDK's text spans several lines, names its internal model and links pydantic's docs."""
    said = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(part) for part in err["loc"]) or "arguments"
        what = " ".join(str(err["msg"]).split())
        value = err.get("input")
        if err["type"] != "missing" and (value is None or isinstance(value, str | int | float | bool)):
            shown = repr(value)
            what += f" (got {shown if len(shown) <= 80 else shown[:77] + '...'})"
        said.append(f"{where}: {what}")
    return "; ".join(said)


class MemexMCPServer(MCPServer):
    """MCPServer whose argument errors are one line naming each bad argument, for every tool.

    The SDK turns a ValidationError of the arguments into a ToolError with pydantic's text and
    the ValidationError as its cause, raised out of call_tool (which its tools/call handler wraps
    in the error result): the one place that still holds the ValidationError."""

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if type(exc) is ToolError and isinstance(exc.__cause__, ValidationError):
                # the cause stays the ValidationError: the SDK logs its field names, not the values
                raise ToolError(f"Error executing tool {name}: {argument_errors(exc.__cause__)}") from exc.__cause__
            raise


def build_server(callers: Callers, *, stdio_key: str | None = None) -> MCPServer:
    """Every memex tool on one MCPServer. `stdio_key` is the key of a stdio server; over HTTP
    each request's verified bearer key is used."""
    server = MemexMCPServer(
        "memex",
        instructions=INSTRUCTIONS,
        token_verifier=ApiKeyVerifier(callers),
        # resource-server auth only (no OAuth routes); issuer_url is required by the model, unused
        auth=AuthSettings(issuer_url=AnyHttpUrl("https://memex.invalid"), resource_server_url=None),
        log_level="WARNING",
    )

    def call(ctx: Context, work: Callable[[MemoryService], T]) -> T:
        """Run `work` with the caller's service; memex's errors become tool errors the model reads."""
        key = stdio_key
        request = ctx.request_context.request
        if request is not None:
            user = request.scope.get("user")
            if not isinstance(user, AuthenticatedUser):  # unreachable behind the SDK's auth middleware
                raise ToolError("not authenticated")
            key = user.access_token.token
        try:
            return work(callers.service(key, interface="mcp"))
        except MemexError as exc:
            raise ToolError(str(exc).splitlines()[0]) from None

    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    write = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)

    @server.tool(annotations=write)
    def add_memory(
        ctx: Context,
        content: Annotated[str, Field(min_length=1, max_length=100_000, description="One self-contained fact, in plain words.")],
        memory_type: Annotated[str, Field(max_length=50, description="fact, preference, event, instruction, ...")] = "fact",
        importance: Annotated[float, Field(ge=0, le=1, description="0 trivia to 1 essential.")] = 0.5,
        source: Annotated[str | None, Field(max_length=100, description="Where it came from (e.g. chat, email).")] = None,
        metadata: Annotated[dict[str, Any] | None, Field(description="Extra structured data, a JSON object.")] = None,
        expires_at: Annotated[datetime | None, Field(description="When it stops being true (ISO 8601), if it will.")] = None,
        user: UserArg = None,
        store: StoreArg = None,
    ) -> s.MemoryOut:
        """Remember one thing for later conversations. Returns the stored memory with its id."""

        def work(svc: MemoryService) -> s.MemoryOut:
            target = resolve_store(svc, user, store, create=True)
            item = NewMemory(content, memory_type, source, importance, metadata, expires_at)
            return s.MemoryOut.of(svc.add_memories(target.id, [item])[0])

        return call(ctx, work)

    @server.tool(annotations=write)
    def add_memories(
        ctx: Context,
        memories: Annotated[list[s.MemoryFields], Field(min_length=1, max_length=s.MAX_BATCH, description="Up to 1,000 memories.")],
        user: UserArg = None,
        store: StoreArg = None,
    ) -> s.MemoryList:
        """Remember several things at once (all or none are stored)."""

        def work(svc: MemoryService) -> s.MemoryList:
            target = resolve_store(svc, user, store, create=True)
            added = svc.add_memories(target.id, [NewMemory(**m.model_dump()) for m in memories])
            return s.MemoryList(memories=[s.MemoryOut.of(m) for m in added])

        return call(ctx, work)

    @server.tool(annotations=read)
    def search_memories(
        ctx: Context,
        query: Annotated[str, Field(min_length=1, max_length=10_000, description="What you want to recall, as a question or keywords.")],
        limit: Annotated[int, Field(ge=1, le=100, description="How many memories at most.")] = 5,
        mode: Annotated[
            s.Mode,
            Field(
                description="vector (meaning), text (words), hybrid (both; best for most questions), weighted (meaning + importance + recency)."
            ),
        ] = "hybrid",
        min_similarity: Annotated[float, Field(ge=-1, le=1, description="Leave out memories less similar than this (cosine).")] = 0.2,
        memory_types: Annotated[list[str], Field(max_length=50, description="Only these memory types.")] = [],  # noqa: B006
        sources: Annotated[list[str], Field(max_length=50, description="Only these sources.")] = [],  # noqa: B006
        user: UserArg = None,
        store: StoreArg = None,
    ) -> SearchHits:
        """Recall what is known: the memories that best answer the query, best first, each with its score (what the mode ranks by) and similarity."""

        def work(svc: MemoryService) -> SearchHits:
            target = resolve_store(svc, user, store, create=False)
            params = SearchParams(limit, min_similarity, mode, Filters(tuple(memory_types), tuple(sources)))
            return SearchHits(results=[s.Hit.of_result(r, explain=True) for r in svc.search(target, query, params)])

        return call(ctx, work)

    @server.tool(annotations=read)
    def get_memory(ctx: Context, memory_id: Annotated[UUID, Field(description="The memory's id.")]) -> s.MemoryOut:
        """One memory, whole."""
        return call(ctx, lambda svc: s.MemoryOut.of(svc.get_memory(memory_id)))

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False))
    def update_memory(
        ctx: Context,
        memory_id: Annotated[UUID, Field(description="The memory to change.")],
        content: Annotated[str | None, Field(max_length=100_000, description="New content (embedded again).")] = None,
        memory_type: Annotated[str | None, Field(max_length=50)] = None,
        importance: Annotated[float | None, Field(ge=0, le=1)] = None,
        archived: Annotated[bool | None, Field(description="true takes it out of search without deleting it.")] = None,
    ) -> s.MemoryOut:
        """Correct a memory that is wrong (to record a change over time, add a new memory instead)."""
        changes = {"content": content, "memory_type": memory_type, "importance": importance, "archived": archived}
        fields: dict[str, Any] = {name: UNSET if value is None else value for name, value in changes.items()}
        return call(ctx, lambda svc: s.MemoryOut.of(svc.update_memory(memory_id, **fields)))

    @server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False))
    def delete_memory(ctx: Context, memory_id: Annotated[UUID, Field(description="The memory to delete.")]) -> dict[str, bool]:
        """Forget a memory for good, with its relationships."""

        def work(svc: MemoryService) -> dict[str, bool]:
            svc.delete_memory(memory_id)
            return {"deleted": True}

        return call(ctx, work)

    @server.tool(annotations=write)
    def add_relationship(
        ctx: Context,
        source_memory_id: Annotated[UUID, Field(description="The memory the relationship starts from (e.g. the newer fact).")],
        target_memory_id: Annotated[UUID, Field(description="The memory it points to (e.g. the older fact).")],
        relationship_type: Annotated[
            str, Field(min_length=1, max_length=50, description="updates, contradicts, related, caused_by, part_of, ...")
        ],
        strength: Annotated[float, Field(ge=0, le=1)] = 0.5,
    ) -> s.RelationshipOut:
        """Link two memories; the same source, target and type again only changes the strength."""
        rel = NewRelationship(source_memory_id, target_memory_id, relationship_type, strength)
        return call(ctx, lambda svc: s.RelationshipOut.model_validate(svc.add_relationships([rel])[0], from_attributes=True))

    @server.tool(annotations=read)
    def related_memories(
        ctx: Context,
        memory_id: Annotated[UUID, Field(description="Start from this memory.")],
        depth: Annotated[int, Field(ge=1, le=3, description="How many relationships to follow.")] = 1,
        direction: Annotated[str, Field(pattern="^(outgoing|incoming|both)$")] = "both",
        limit: Annotated[int, Field(ge=1, le=100)] = 10,
    ) -> s.RelatedList:
        """Memories linked to one memory, nearest and strongest first."""
        return call(
            ctx,
            lambda svc: s.RelatedList(
                related=[s.Related.of(r) for r in svc.neighbours(memory_id, depth, direction=direction, limit=limit)]
            ),
        )

    @server.tool(annotations=read)
    def list_memories(
        ctx: Context,
        contains: Annotated[str | None, Field(max_length=1000, description="Only memories whose text contains this.")] = None,
        memory_types: Annotated[list[str], Field(max_length=50)] = [],  # noqa: B006
        include_expired: bool = False,
        limit: Annotated[int, Field(ge=1, le=200)] = 50,
        offset: Annotated[int, Field(ge=0)] = 0,
        user: UserArg = None,
        store: StoreArg = None,
    ) -> s.MemoryPageOut:
        """Browse memories, newest first (search_memories is better to answer a question)."""

        def work(svc: MemoryService) -> s.MemoryPageOut:
            target = resolve_store(svc, user, store, create=False)
            page = svc.list_memories(
                target.id,
                memory_types=memory_types or None,
                text_contains=contains,
                include_expired=include_expired,
                limit=limit,
                offset=offset,
            )
            return s.MemoryPageOut(items=[s.MemoryOut.of(m) for m in page.items], total=page.total, next_cursor=None)

        return call(ctx, work)

    return server
