"""Every error in one JSON shape: RFC 9457 problem details (`application/problem+json`), with a
one-line `detail` that names what is wrong. Never a traceback, never a hint of another tenant:
memex's own errors already speak only of what the caller named."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import (
    ConfigError,
    Conflict,
    EmbeddingError,
    Forbidden,
    InvalidInput,
    MemexError,
    NotFound,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("memex.api")
PROBLEM = "application/problem+json"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="memex"'}
STATUS: dict[type[MemexError], int] = {
    InvalidInput: 422,
    NotFound: 404,
    Conflict: 409,
    Forbidden: 403,
    Unauthenticated: 401,
    Unavailable: 503,
    EmbeddingError: 502,
    ConfigError: 500,
}


class FieldError(BaseModel):
    loc: str
    msg: str


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldError] | None = None  # 422 from request validation: every field at fault


def problem(
    status: int,
    detail: str | None,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
) -> JSONResponse:
    body = Problem(title=HTTPStatus(status).phrase, status=status, detail=detail, instance=instance, errors=errors)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=PROBLEM)


def _one_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


async def memex_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MemexError)
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
    if status >= 500 and status != 503:
        log.error("%s on %s %s: %s", type(exc).__name__, request.method, request.url.path, exc)
    detail = "the server is not configured correctly; its log says why" if isinstance(exc, ConfigError) else _one_line(str(exc))
    headers = CHALLENGE if status == 401 else {"Retry-After": "5"} if status == 503 else None
    return problem(status, detail, instance=request.url.path, headers=headers)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=exc.headers)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:  # Starlette names only the first matching route's methods
        headers["Allow"] = ", ".join(_allowed_methods(request))
    detail = exc.detail if isinstance(exc.detail, str) else None
    if exc.status_code == 404 and detail == "Not Found":  # no route matched: Starlette's two words say nothing of why
        detail = f"no such path: {request.url.path} (ids in paths are UUIDs; the endpoints are listed at /docs)"
    return problem(exc.status_code, detail, instance=request.url.path, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """The methods some route answers at this path, asked of the routes' own matching (FastAPI
    keeps included routers as nested routes, so a flat look at path regexes misses them)."""
    return [
        method
        for method in ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.router.routes)
    ]


async def validation_error(request: Request, exc: Exception) -> Response:
    """422 naming every field at fault in one line; the rejected values are not echoed."""
    assert isinstance(exc, RequestValidationError)
    errors = [_field_error(e) for e in exc.errors()]
    return problem(422, "; ".join(f"{e.loc}: {e.msg}" for e in errors), instance=request.url.path, errors=errors)


def _field_error(error: Any) -> FieldError:
    """Where and what: a body that is not JSON is placed by character (FastAPI puts the offset
    where a field name would be)."""
    if error.get("type") == "json_invalid":
        return FieldError(loc="body", msg=f"not valid JSON (at character {error['loc'][-1]})")
    return FieldError(loc=".".join(str(p) for p in error["loc"]), msg=error["msg"])


async def unexpected(request: Request, exc: Exception) -> Response:
    """500 without a traceback (the server log has it)."""
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "internal error; the server log has the details", instance=request.url.path)


class BodyTooLarge(HTTPException):
    """Raised from `receive()` once a body passes its limit. `Connection: close`: otherwise the
    server reads the rest of the body to keep the connection open for another request."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body is larger than {limit:,} bytes", headers={"Connection": "close"})


class BodyLimit:
    """413 for bodies over a limit, at once from Content-Length, else by counting chunks as the
    app receives them (streamed uploads): nothing is buffered here. Longest prefix wins; None
    means the route limits itself (the MCP endpoint)."""

    def __init__(self, app: ASGIApp, default: int, per_prefix: dict[str, int | None]):
        self.app = app
        self.default = default
        self.per_prefix = sorted(per_prefix.items(), key=lambda kv: -len(kv[0]))

    def limit_for(self, path: str) -> int | None:
        return next((limit for prefix, limit in self.per_prefix if path.startswith(prefix)), self.default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.limit_for(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return await self._reject(scope, receive, send, limit)
        seen, started = 0, False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._reject(scope, receive, send, limit)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem(413, f"request body is larger than {limit:,} bytes", instance=scope["path"], headers={"Connection": "close"})
        await response(scope, receive, send)


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error responses (problem details)."""
    return {code: {"model": Problem, "description": HTTPStatus(code).phrase} for code in codes}
