"""memex behind Debian's PgBouncer in transaction pooling mode, in front of the embedded server.

In this mode consecutive transactions of one client may run on different server connections, and
one server connection serves many clients in turn, with no reset in between. memex sets the
tenant and a key's scope per transaction (set_config(..., true)) and, with MEMEX_DATABASE_POOLER,
holds no connection and prepares no statement: the service and `memex serve` work through it,
two tenants' keys interleaved, and no transaction sees what the one before it set.

The embedded server listens on a unix socket only, in a directory only its OS user can enter
(`pgserver` when the tests run as root): PgBouncer runs as that user (it refuses root), with its
files in a directory that user can read. Clients log in to PgBouncer with a password; PgBouncer
logs in to PostgreSQL over the socket, which trusts it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from core import MemoryService
from core.admin import create_tenant
from core.db import Database
from tests.api_support import child_env, client, free_port, mcp_client, new_key, ready, start_server, stop_server
from tests.conftest import unique

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
pytestmark = pytest.mark.skipif(not os.path.exists(PGBOUNCER), reason="PgBouncer is not installed (apt-get install pgbouncer)")
PASSWORD = "app-secret"
SETTINGS = (
    "SELECT coalesce(current_setting('app.current_tenant_id', true), '') || coalesce(current_setting('app.key_user_id', true), '')"
    " || coalesce(current_setting('app.key_store_id', true), '') || coalesce(current_setting('app.read_only', true), '')"
)


@dataclass
class Bouncer:
    port: int
    proc: subprocess.Popen[bytes]
    workdir: Path

    def url(self) -> str:
        return f"postgresql://memex_api:{PASSWORD}@127.0.0.1:{self.port}/memex"

    def stats(self) -> int:
        """Transactions PgBouncer has passed to the memex database (its admin console)."""
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} dbname=pgbouncer user=pgbouncer password={PASSWORD}", autocommit=True
        ) as conn:
            cur = psycopg.ClientCursor(conn)  # the admin console speaks the simple query protocol only
            cur.execute("SHOW STATS")
            names = [c.name for c in cur.description or []]
            return sum(int(row[names.index("total_xact_count")]) for row in cur.fetchall() if row[0] == "memex")


def start_pgbouncer(db: Database, pool_size: int) -> Bouncer:
    assert db.embedded is not None
    info = db.embedded.server.get_postmaster_info()
    workdir = Path(tempfile.mkdtemp(prefix="memex-pgbouncer-"))  # not tmp_path: PgBouncer's user must read it
    port = free_port()
    (workdir / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"memex = host={info.socket_dir} port={info.port} dbname=memex\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = scram-sha-256\nauth_file = {workdir / 'userlist.txt'}\nadmin_users = pgbouncer\n"
        f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 200\nlog_connections = 0\nlog_disconnections = 0\n"
        f"logfile = {workdir / 'pgbouncer.log'}\npidfile = {workdir / 'pgbouncer.pid'}\n"
    )
    (workdir / "userlist.txt").write_text(f'"memex_api" "{PASSWORD}"\n"pgbouncer" "{PASSWORD}"\n')
    command = [PGBOUNCER]
    if os.geteuid() == 0:  # PgBouncer refuses root; the embedded server's user can enter its socket directory
        owner = pwd.getpwnam("pgserver")
        for path in [workdir, *workdir.iterdir()]:
            os.chown(path, owner.pw_uid, owner.pw_gid)
        command += ["-u", "pgserver"]
    # its log goes to the log file; stderr is not a pipe: unread, a full pipe would block PgBouncer
    proc = subprocess.Popen([*command, str(workdir / "pgbouncer.ini")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    while True:
        if proc.poll() is not None:
            log = workdir / "pgbouncer.log"
            raise RuntimeError(f"pgbouncer exited with {proc.returncode}: {log.read_text()[-2000:] if log.exists() else ''}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Bouncer(port, proc, workdir)
        except OSError:
            if time.monotonic() - started > 20:
                proc.kill()
                raise
            time.sleep(0.05)


def stop_pgbouncer(bouncer: Bouncer) -> None:
    bouncer.proc.terminate()
    try:
        bouncer.proc.wait(10)
    except subprocess.TimeoutExpired:
        bouncer.proc.kill()
        bouncer.proc.wait()
    shutil.rmtree(bouncer.workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def bouncer(db: Database) -> Iterator[Bouncer]:
    """PgBouncer with one server connection: every client's transactions take turns on it, so
    whatever one left behind, the next one would see."""
    started = start_pgbouncer(db, pool_size=1)
    yield started
    stop_pgbouncer(started)


@pytest.fixture(scope="module")
def pooled(bouncer: Bouncer) -> Iterator[Database]:
    """memex's application connection through PgBouncer, as MEMEX_DATABASE_POOLER=1 makes it."""
    database = Database(bouncer.url(), None, pooler=True)
    yield database
    database.dispose()


@dataclass
class Side:
    svc: MemoryService  # the service made from the key, through PgBouncer
    key: str
    store_id: object
    words: str


def side(db: Database, pooled: Database, name: str) -> Side:
    tenant = create_tenant(db, unique(name))
    owner_side = MemoryService(db, tenant.id)
    user = owner_side.create_user("ana")
    store = owner_side.get_or_create_store(user.id, "default", embedding_model="test-hashing")
    key = new_key(db, tenant.id)
    return Side(MemoryService.for_key(pooled, key), key, store.id, f"tenant {name} memory")


def test_the_service_with_two_tenants_keys_interleaved_through_pgbouncer(db: Database, pooled: Database, bouncer: Bouncer) -> None:
    pooled.check_app_role()
    a, b = side(db, pooled, "a"), side(db, pooled, "b")
    before = bouncer.stats()
    for i in range(8):  # > psycopg's prepare threshold: a prepared statement would be missing on the next turn
        for me, them in ((a, b), (b, a)):
            me.svc.add_memory(me.store_id, f"{me.words} {i}")
            found = me.svc.search_memories(me.store_id, me.words, limit=50, min_similarity=-1)
            assert {r.memory.content.rsplit(" ", 1)[0] for r in found} == {me.words}
            assert all(m.content.startswith(me.words) for m in me.svc.list_memories(me.store_id, limit=100).items)
            with pytest.raises(LookupError):
                me.svc.get_store(them.store_id)
    assert a.svc.list_memories(a.store_id).total == b.svc.list_memories(b.store_id).total == 8
    assert bouncer.stats() > before + 100  # it all went through PgBouncer


def test_no_transaction_sees_the_scope_of_the_one_before(db: Database, pooled: Database, svc: MemoryService, store) -> None:
    keys = [new_key(db, svc.tenant_id, user_id=store.user_id, store_id=store.id, read_only=True), new_key(db, svc.tenant_id)]
    for i in range(10):
        with pooled.with_key(keys[i % 2]) as (conn, principal):
            assert conn.scalar(text("SELECT current_setting('app.current_tenant_id', true)")) == str(svc.tenant_id)
            assert conn.scalar(text("SELECT current_setting('app.read_only', true)")) == ("on" if principal.read_only else "off")
        with pooled.app.connect() as conn:  # the same single server connection, next in turn
            assert conn.scalar(text(SETTINGS)) == ""
            assert conn.scalar(text("SELECT count(*) FROM memories")) == 0  # no tenant in force: nothing visible


def test_memex_serve_through_pgbouncer_answers_two_tenants_alike_and_apart(db: Database, bouncer: Bouncer, tmp_path) -> None:
    keys = {name: new_key(db, create_tenant(db, unique(name)).id) for name in ("a", "b")}
    env = child_env(DATABASE_URL=bouncer.url(), MEMEX_DATABASE_POOLER="1", MEMEX_DATA_DIR=str(tmp_path / "unused"))
    server = start_server(tmp_path / "serve.log", env=env)
    try:
        before = bouncer.stats()
        with client(server.url, None) as anyone:
            assert ready(anyone)["status"] == "ready"

        def work(job: tuple[str, int]) -> list[str]:
            name, i = job
            with client(server.url, keys[name]) as http:
                assert http.post("/v1/memories", json={"content": f"tenant {name} memory {i}", "user": "ana"}).status_code == 201
                found = http.post(
                    "/v1/search", json={"query": "tenant memory", "user": "ana", "mode": "text", "limit": 100, "min_similarity": -1}
                )
                listed = http.get("/v1/memories", params={"user": "ana", "limit": 1000})
                exported = http.get("/v1/export", params={"user": "ana", "embeddings": False})
                return (
                    [h["content"] for h in found.json()["results"]]
                    + [m["content"] for m in listed.json()["items"]]
                    + exported.text.splitlines()
                )

        jobs = [(name, i) for i in range(6) for name in ("a", "b")]
        with ThreadPoolExecutor(4) as pool:  # concurrent requests of both tenants on PgBouncer's single server connection
            seen = dict(zip(jobs, pool.map(work, jobs)))
        for (name, _), contents in seen.items():
            assert contents and all(f"tenant {name} memory" in c for c in contents), (name, contents)
        for name in keys:
            with client(server.url, keys[name]) as http:
                assert http.get("/v1/memories", params={"user": "ana"}).json()["total"] == 6

        async def recall(name: str) -> list[str]:
            async with mcp_client(server.url, keys[name]) as session:
                found = await session.call_tool("search_memories", {"query": "tenant memory", "user": "ana", "mode": "text", "limit": 100})
                return [hit["content"] for hit in found.structured_content["results"]]

        for name in keys:
            recalled = asyncio.run(recall(name))
            assert len(recalled) == 6 and all(c.startswith(f"tenant {name} memory") for c in recalled)
        assert bouncer.stats() > before
    finally:
        stop_server(server)
    assert "Traceback" not in server.log.read_text()
