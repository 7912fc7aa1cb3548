"""Helpers of the API tests: `memex serve` started as a user starts it (a subprocess of the
`memex` CLI on a free port, sharing the test database through MEMEX_DATA_DIR), API keys, and
the shape every error must have (RFC 9457 problem details, one line, no traceback)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from core import admin
from core.db import Database

if TYPE_CHECKING:  # the MCP SDK is imported by the tests that use it, not by every test session
    from mcp import Client
    from mcp_types import CallToolResult

ROOT = Path(__file__).resolve().parent.parent
PROBLEM = "application/problem+json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a memex subprocess: the test database (MEMEX_DATA_DIR, inherited), the
    application role only (no owner URL), and stores on the instant test embedder unless told."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "MEMEX_ADMIN_DATABASE_URL", "MEMEX_API_KEY")}
    env.update({"PYTHONPATH": str(ROOT), "MEMEX_EMBEDDING_MODEL": "test-hashing", **extra})
    return env


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path


def start_server(log: Path, *, workers: int = 1, env: dict[str, str] | None = None, timeout: float = 90.0) -> Server:
    """`python -m core serve --port P`, ready when GET /healthz answers 200."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", "serve", "--port", str(port), "--workers", str(workers)],
            env=env or child_env(),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(proc, f"http://127.0.0.1:{port}", log)
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"memex serve exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    stop_server(server)
    raise TimeoutError(f"memex serve not healthy after {timeout}s: {log.read_text(errors='replace')[-2000:]}")


def ready(http: httpx.Client, timeout: float = 60.0) -> dict:
    """GET /readyz until it answers 200 (the default model loads in a thread as the server starts)."""
    deadline = time.monotonic() + timeout
    while (answer := http.get("/readyz")).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer.json()


def stop_server(server: Server) -> None:
    """SIGTERM, as a service manager stops it (uvicorn drains, then re-raises the signal)."""
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait()


def new_key(db: Database, tenant_id: Any, **scope: Any) -> str:
    """An API key of the tenant (scope: user_id, store_id, read_only, expires_in_days, name)."""
    return admin.create_key(db, tenant_id, **scope)[1]


def client(url: str, key: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.Client(base_url=url, headers=headers, timeout=60)


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The problem details of an error response, checked: the status, the media type, the RFC
    9457 members, a one-line detail, and nothing that looks like a traceback."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers["content-type"]
    body = response.json()
    assert body["status"] == status and body["title"] and isinstance(body["detail"], str)
    assert "\n" not in body["detail"] and body["detail"].strip() == body["detail"] != ""
    assert "Traceback" not in response.text and 'File "' not in response.text
    return body


@asynccontextmanager
async def mcp_client(url: str, key: str | None) -> AsyncIterator[Client]:
    """The MCP SDK's own client over streamable HTTP, the key as a bearer header (the SDK's HTTP
    client is httpx2, not httpx)."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
        async with Client(streamable_http_client(f"{url}/mcp", http_client=http)) as session:
            yield session


def tool_error(result: CallToolResult) -> str:
    """The text of a tool error (what the model reads)."""
    from mcp_types import TextContent

    assert result.is_error, result
    [content] = result.content
    assert isinstance(content, TextContent)
    return content.text
