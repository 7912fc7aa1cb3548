"""Fixtures: one real embedded PostgreSQL for the session, a fresh tenant for each test.

The data directory is set before memex reads its settings, so the service, the CLI run
in-process and the explorer's AppTests all use this test database.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine

_DATA_DIR = tempfile.mkdtemp(prefix="memex-test-")
# Removed at exit: ~150 MB a session, and left behind they filled the disk over a few hundred runs.
# Registered before the embedded server starts, so it runs after pgserver's own exit handler stops it.
atexit.register(shutil.rmtree, _DATA_DIR, ignore_errors=True)
os.environ["MEMEX_DATA_DIR"] = _DATA_DIR
os.environ["MEMEX_MAPS_AT_START"] = "0"  # the explorer fits no map at start: tests see each map's first fit
# No start-up work (core.explorer.startup) in the explorers a session starts (the AppTests' process,
# each browser test's server): each one ran a process compiling UMAP and indexing every tenant's
# pending rows beside the tests. The test of a fresh server's first map turns it back on.
os.environ["MEMEX_EXPLORER_START_WORK"] = "0"
# UMAP's compiled kernels, kept between test sessions (and shared by the processes a session
# starts) as the explorer keeps them in its data directory: only the first session compiles them.
# One directory per pytest-xdist worker: numba's cache is not safe for two processes compiling the
# same functions into it at once (a reader can meet a half-written index). A worker inherits the
# main process's environment, this setting included, so a worker's own directory is set outright.
_NUMBA_CACHE = Path(__file__).resolve().parent.parent / "test-output" / "numba-cache"
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["NUMBA_CACHE_DIR"] = str(_NUMBA_CACHE / worker)
else:
    os.environ.setdefault("NUMBA_CACHE_DIR", str(_NUMBA_CACHE / "main"))
os.environ.pop("DATABASE_URL", None)
os.environ.pop("MEMEX_ADMIN_DATABASE_URL", None)

from core import MemoryService  # noqa: E402
from core.admin import create_tenant  # noqa: E402
from core.db import Database, get_database  # noqa: E402
from core.models import MemoryStore, Tenant, User  # noqa: E402
from tests.api_support import Server, client, new_key, start_server, stop_server  # noqa: E402


@pytest.fixture(scope="session")
def db() -> Database:
    return get_database()


@pytest.fixture(scope="session")
def data_dir() -> str:
    return _DATA_DIR


@pytest.fixture(scope="session")
def superuser(db: Database) -> Iterator[Engine]:
    """The embedded server's superuser: bypasses RLS, so it sees the ground truth of every tenant."""
    engine = create_engine(db.embedded.url("postgres"), pool_size=1, max_overflow=0, pool_pre_ping=True)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module", autouse=True)
def _write_figures(request: pytest.FixtureRequest) -> Iterator[None]:
    """A module's FIGURES counter, if it keeps one, to test-output/reliability/<name>.json:
    the figures docs/RELIABILITY.md quotes."""
    yield
    figures = getattr(request.module, "FIGURES", None)
    if figures is not None:
        out = Path(__file__).resolve().parent.parent / "test-output" / "reliability"
        out.mkdir(parents=True, exist_ok=True)
        name = Path(request.module.__file__).stem.removeprefix("test_reliability_")
        (out / f"{name}.json").write_text(json.dumps(dict(sorted(figures.items())), indent=2))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tenant(db: Database) -> Tenant:
    return create_tenant(db, unique("tenant"))


@pytest.fixture
def svc(db: Database, tenant: Tenant) -> MemoryService:
    return MemoryService(db, tenant.id)


@pytest.fixture
def user(svc: MemoryService) -> User:
    return svc.create_user(unique("user"))


@pytest.fixture
def store(svc: MemoryService, user: User) -> MemoryStore:
    """A store on the test-only hashing embedder: instant, deterministic, no model to load."""
    return svc.get_or_create_store(user.id, "default", embedding_model="test-hashing")


@pytest.fixture
def other(db: Database) -> Iterator[tuple[MemoryService, MemoryStore]]:
    """A second tenant with a store and one memory, the target of break-in attempts."""
    t = create_tenant(db, unique("other"))
    other_svc = MemoryService(db, t.id)
    u = other_svc.create_user("mallory-victim")
    s = other_svc.get_or_create_store(u.id, "default", embedding_model="test-hashing")
    other_svc.add_memory(s.id, "The launch code of the other tenant is 0000", memory_type="secret")
    yield other_svc, s


# The API (memex serve, MCP) ------------------------------------------------------------------


@pytest.fixture(scope="session")
def api_server(db: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One `memex serve` (the CLI, a subprocess) for the HTTP, MCP and fuzz tests: the test
    database, the application role only, new stores on the instant test embedder."""
    server = start_server(tmp_path_factory.mktemp("serve") / "serve.log")
    yield server
    stop_server(server)


@pytest.fixture
def api(api_server: Server) -> Iterator[Server]:
    """The live server, and after the test the proof that nothing the test sent made it fail:
    no traceback in its log (an unexpected error logs one, and answers 500)."""
    start = api_server.log.stat().st_size
    yield api_server
    with api_server.log.open("rb") as log:
        log.seek(start)
        written = log.read().decode(errors="replace")
    assert "Traceback" not in written, written[-3000:]


@pytest.fixture
def key(db: Database, tenant: Tenant) -> str:
    """An API key of `tenant`, bound to nothing (the request names user and store)."""
    return new_key(db, tenant.id, name="test")


@pytest.fixture
def http(api: Server, key: str) -> Iterator[httpx.Client]:
    """An HTTP client of the live server carrying `key`."""
    with client(api.url, key) as c:
        yield c
