"""The ASGI app of `memex serve`: REST under /v1, MCP (streamable HTTP) at /mcp, OpenAPI at
/openapi.json, docs at /docs, /healthz (the process is up) and /readyz (the database answers, its
migrations are the ones this code knows, and the default embedding model has loaded)."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry import TelemetryConfig
from mcp.server.transport_security import TransportSecuritySettings
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from core.api import problems
from core.api.caller import Callers
from core.api.mcp import build_server
from core.api.routes import router
from core.config import get_settings
from core.db import Database, api_database
from core.embeddings import warm_embedder
from core.errors import MemexError
from core.migrate import all_migrations
from core.service import logwriter

MiB = 1024 * 1024
BODY_LIMIT = 4 * MiB  # a batch of 1,000 memories without vectors; single memories are far smaller
BATCH_LIMIT = 32 * MiB  # a batch with its 1536-d vectors
IMPORT_LIMIT = 64 * MiB  # an import file is checked whole before any write, so it is held: bounded
MCP_LIMIT = 4 * MiB

log = logging.getLogger(__name__)


def telemetry() -> TelemetryConfig:
    """FastAPI's own OpenTelemetry (a span, metrics and logs of each request) when this process is
    set up for OpenTelemetry, as an OTEL_* or FASTAPI_OTEL_* variable says; otherwise off: it
    looks for providers on every request, ~0.2 ms of each search (docs/BENCHMARKS.md)."""
    if any(name.startswith(("OTEL_", "FASTAPI_OTEL_")) for name in os.environ):
        return {}
    return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}


class _Forward:
    """/mcp, forwarded to the MCP app of the running lifespan (503 outside one). The SDK's session
    manager runs once per instance, and one app may see several lifespans (tests, fuzzers), so a
    new MCP app is made for each."""

    target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.target is None:
            return await problems.problem(503, "the MCP endpoint is not running")(scope, receive, send)
        await self.target(scope, receive, send)


def warm_default_model(done: threading.Event) -> None:
    """Load the default embedding model (the one new stores get) while the server starts, not in
    an agent's first request: the local model took 13 s of a first POST /v1/memories on two vCPUs.
    A request that embeds before the load ends waits for the same load (the model's own lock);
    /readyz says ready once it has ended, loaded or not (a request that needs it says what fails)."""
    model = get_settings().default_embedding_model
    try:
        warm_embedder(model)
    except MemexError as exc:
        log.warning("the default embedding model %s did not load: %s", model, exc)
    except Exception:
        log.exception("loading the default embedding model %s failed", model)
    finally:
        done.set()


def create_app(db: Database | None = None) -> FastAPI:
    """The whole app. Without `db` (uvicorn's factory, once per worker) it connects as the
    API role only (core.db.api_database): the owner's URL is never read here."""
    if db is None:
        db = api_database()
        db.background_index = True  # bulk writes into big stores put their rows into the HNSW graph off the request (core.service.indexing)
    callers = Callers(db)
    mcp = build_server(callers)
    forward = _Forward()
    hosts = [h.strip() for h in os.environ.get("MEMEX_API_ALLOWED_HOSTS", "").split(",") if h.strip()]
    model_loaded = threading.Event()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=warm_default_model, args=(model_loaded,), name="memex-warm-model", daemon=True).start()
        # stateless: each POST stands alone, so any worker or replica answers it alike
        forward.target = mcp.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            json_response=True,
            max_request_body_size=MCP_LIMIT,
            # DNS-rebinding protection for browsers; list public host names in MEMEX_API_ALLOWED_HOSTS
            transport_security=TransportSecuritySettings(
                enable_dns_rebinding_protection=bool(hosts), allowed_hosts=hosts, allowed_origins=[f"https://{h}" for h in hosts]
            ),
        )
        try:
            async with mcp.session_manager.run():
                yield
        finally:
            forward.target = None
            # a worker of --workers N ends by the signal itself, without atexit: its last searches' entries are written now
            await run_in_threadpool(logwriter.writer(db).flush)

    app = FastAPI(
        telemetry=telemetry(),
        title="memex",
        version="0.2.0",
        lifespan=lifespan,
        description="Persistent memory for AI agents. Every request carries an API key (`Authorization: Bearer mx_...`); "
        "the key decides the tenant, and PostgreSQL enforces it. Errors are RFC 9457 problem details.",
    )
    app.state.db = db
    app.state.callers = callers
    app.add_exception_handler(MemexError, problems.memex_error)
    app.add_exception_handler(HTTPException, problems.http_error)
    app.add_exception_handler(RequestValidationError, problems.validation_error)
    app.add_exception_handler(Exception, problems.unexpected)
    app.add_middleware(
        problems.BodyLimit,
        default=BODY_LIMIT,
        per_prefix={"/v1/memories/batch": BATCH_LIMIT, "/v1/import": IMPORT_LIMIT, "/mcp": None},
    )

    @app.get("/healthz", tags=["operations"])
    def healthz() -> dict[str, str]:
        """The process is up (it does not ask the database)."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], responses=problems.responses(503))
    async def readyz() -> dict[str, str]:
        """The database answers and holds exactly the migrations this code knows, and the default
        embedding model has loaded (an agent's first request does not wait for it)."""
        applied = await run_in_threadpool(db.applied_migrations)
        known = [m.version for m in all_migrations()]
        if applied != known:
            missing = sorted(set(known) - set(applied)) or sorted(set(applied) - set(known))
            raise HTTPException(503, f"the database schema is not this version's (migration {missing[0]}); run `memex migrate`")
        if not model_loaded.is_set():
            raise HTTPException(503, f"loading the default embedding model ({get_settings().default_embedding_model})")
        return {"status": "ready", "schema": known[-1]}

    app.include_router(router)
    app.router.routes.append(Route("/mcp", endpoint=forward, include_in_schema=False))
    _problem_openapi(app)
    return app


def _problem_openapi(app: FastAPI) -> None:
    """Error responses in the schema as application/problem+json, as they are sent."""

    def openapi() -> dict[str, Any]:
        if not app.openapi_schema:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            for item in schema["paths"].values():
                for operation in item.values():
                    for code, response in operation.get("responses", {}).items():
                        if code[0] in "45" and "application/json" in response.get("content", {}):
                            response["content"] = {problems.PROBLEM: response["content"].pop("application/json")}
            for unused in ("HTTPValidationError", "ValidationError"):
                schema["components"]["schemas"].pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to customise the schema
