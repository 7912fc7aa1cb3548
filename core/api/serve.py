"""`memex serve` (uvicorn) and `memex mcp` (stdio)."""

from __future__ import annotations

import os
import sys

from core.errors import ConfigError, MemexError


def serve(host: str, port: int, workers: int) -> None:
    """uvicorn with an import-string factory: each worker builds the app (and its connection pool)
    itself, so any number of workers, or replicas, answer alike: all state is in PostgreSQL.

    On SIGTERM uvicorn drains, restores the handler it found and raises the signal again: set
    first, it makes that a normal exit, whose atexit stops the embedded server if no other
    process uses it. Workers of --workers N die by the signal itself (uvicorn's children start
    with the default action), so their parent holds the embedded server too and stops it last.
    """
    import uvicorn

    from core.config import get_settings
    from core.db import EmbeddedServer, exit_normally_on_sigterm

    exit_normally_on_sigterm()
    settings = get_settings()
    if workers > 1 and not settings.database_url:
        EmbeddedServer(settings.data_dir)
    uvicorn.run(
        "core.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        timeout_graceful_shutdown=10,
        log_level="warning",
        proxy_headers=False,
    )


def stdio() -> int:
    """The MCP tools over stdio for a local client that starts this process; the key comes from
    MEMEX_API_KEY and is checked before any MCP traffic (stdout belongs to the protocol)."""
    from core.api.caller import Callers
    from core.api.mcp import build_server
    from core.db import api_database

    key = os.environ.get("MEMEX_API_KEY", "").strip()
    if not key:
        raise ConfigError("set MEMEX_API_KEY to an API key (memex keys create --tenant T)")
    callers = Callers(api_database())
    try:
        callers.service(key)
    except MemexError as exc:
        print(f"memex mcp: error: {exc}", file=sys.stderr)
        return 2
    build_server(callers, stdio_key=key).run("stdio")
    return 0
