"""The SQL of `memex bench` (core.bench), run as the superuser of the benchmark's own cluster.

Never run against a user's data: these drop and rebuild the vector index around a bulk load,
build the seed's layout beside memex's for comparison, read the exact answers search is graded
against, check the counters, keep the build's description for a later `--reuse` run, and EXPLAIN
the statements the service sent. The service's own searches go through core.service as usual.
Statements that must not run in a transaction (VACUUM, index builds that report notices) take an
Engine; the rest take a Connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np
from sqlalchemy import Connection, Engine, event, text

from core.status import IS_SQL

LIVE = IS_SQL["live"]


def _name(identifier: str) -> str:
    """An index or table name the benchmark made up, checked before it goes into DDL."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", identifier):
        raise ValueError(f"not a plain identifier: {identifier!r}")
    return identifier


def _autocommit(engine: Engine, *statements: str) -> list[str]:
    """Statements in autocommit; returns the server's notices (an HNSW build reports there when
    its graph outgrows maintenance_work_mem, an ivfflat built empty that it has little data)."""
    notices: list[str] = []
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        raw: Any = conn.connection.driver_connection  # psycopg's connection: notices are its own API

        def handler(diag: Any) -> None:
            notices.append(str(diag.message_primary))

        raw.add_notice_handler(handler)
        try:
            for sql in statements:
                conn.execute(text(sql))
        finally:
            raw.remove_notice_handler(handler)
    return notices


def server_versions(conn: Connection) -> tuple[str, str]:
    """(PostgreSQL, pgvector) versions, for the report."""
    postgresql = conn.execute(text("SHOW server_version")).scalar_one()
    pgvector = conn.execute(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).scalar_one()
    return postgresql, pgvector


def index_definition(conn: Connection, index: str) -> str:
    """The CREATE INDEX statement of an index, to build it again after dropping it."""
    return conn.execute(text("SELECT indexdef FROM pg_indexes WHERE indexname = :n"), {"n": index}).scalar_one()


def drop_index(engine: Engine, index: str) -> list[str]:
    """Drop an index (a bulk load is faster without the vector index, built again afterwards)."""
    return _autocommit(engine, f"DROP INDEX {_name(index)}")


def create_index(engine: Engine, definition: str) -> list[str]:
    """Run a CREATE INDEX statement read by index_definition; returns the build's notices."""
    if not definition.upper().startswith("CREATE INDEX "):
        raise ValueError(f"not an index definition: {definition[:60]!r}")
    return _autocommit(engine, definition)


def vacuum_analyze(engine: Engine, *tables: str) -> list[str]:
    """VACUUM ANALYZE, so the planner's statistics and the visibility map match the loaded rows."""
    return _autocommit(engine, *(f"VACUUM ANALYZE {_name(t)}" for t in tables))


def relation_bytes(conn: Connection, index: str, table: str) -> tuple[int, int]:
    """(the index's size, the table's size without its indexes) in bytes."""
    row = conn.execute(
        text("SELECT pg_relation_size(CAST(:i AS regclass)), pg_table_size(CAST(:t AS regclass))"), {"i": _name(index), "t": _name(table)}
    ).one()
    return int(row[0]), int(row[1])


class StoreCounts(NamedTuple):
    rows: dict[UUID, int]  # memories per store, counted
    counters: dict[UUID, int]  # memory_stores.total_memories
    live: dict[UUID, int]  # memories search may return: neither expired nor archived


def store_counts(conn: Connection) -> StoreCounts:
    """Every store's counted rows beside its counter, and its live rows, across all tenants."""
    return StoreCounts(
        dict(conn.execute(text("SELECT store_id, count(*) FROM memories GROUP BY 1")).tuples().all()),
        dict(conn.execute(text("SELECT id, total_memories FROM memory_stores")).tuples().all()),
        dict(conn.execute(text(f"SELECT store_id, count(*) FROM memories WHERE {LIVE} GROUP BY 1")).tuples().all()),
    )


def exact_nearest(conn: Connection, store_id: UUID, vector: np.ndarray, dim: int, k: int) -> list[UUID]:
    """The true k nearest live memories of a store, with the service's filters and distance
    expression, index scans off: what search is graded against."""
    conn.execute(text("SET LOCAL enable_indexscan = off"))
    return list(
        conn.execute(
            text(
                f"SELECT id FROM memories WHERE store_id = :s AND embedding_dim = {int(dim)} AND {LIVE}"
                f" ORDER BY embedding::vector({int(dim)}) <=> :q, id LIMIT {int(k)}"
            ),
            {"s": store_id, "q": vector},
        ).scalars()
    )


def create_seed_table(engine: Engine, dim: int) -> list[str]:
    """The seed's layout on the same non-archived rows: one vector(D) column, ivfflat (lists = 100)
    created while the table is empty (as the seed's migration did), then the rows, then a btree
    on store_id."""
    dim = int(dim)
    return _autocommit(
        engine,
        "DROP TABLE IF EXISTS seed_memories",
        f"CREATE TABLE seed_memories (id uuid PRIMARY KEY, store_id uuid NOT NULL, embedding vector({dim}), expires_at timestamptz)",
        "CREATE INDEX seed_memories_embedding ON seed_memories USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100)",
        "CREATE INDEX seed_memories_store ON seed_memories (store_id)",
        f"INSERT INTO seed_memories SELECT id, store_id, embedding::vector({dim}), expires_at FROM memories WHERE NOT archived",
        "VACUUM ANALYZE seed_memories",
    )


def has_seed_table(conn: Connection) -> bool:
    return bool(conn.execute(text("SELECT to_regclass('seed_memories') IS NOT NULL")).scalar())


def seed_nearest(conn: Connection, store_id: UUID, vector: np.ndarray, dim: int, k: int) -> list[UUID]:
    """The seed's query (probes left at ivfflat's default of 1, as the seed did), planned for each
    call as node-postgres' unnamed statements are (psycopg would switch to a generic plan)."""
    dim, k = int(dim), int(k)
    conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
    return list(
        conn.execute(
            text(
                f"SELECT id, 1 - (embedding <=> CAST(:q AS vector({dim}))) AS similarity FROM seed_memories"
                " WHERE store_id = :s AND (expires_at IS NULL OR expires_at > now())"
                f" AND 1 - (embedding <=> CAST(:q AS vector({dim}))) >= -1"
                f" ORDER BY embedding <=> CAST(:q AS vector({dim})) LIMIT {k}"
            ),
            {"s": store_id, "q": vector},
        ).scalars()
    )


def save_meta(conn: Connection, meta: dict[str, Any]) -> None:
    """Keep the build's description in the benchmark database (a later `--reuse` run reads it)."""
    conn.execute(text("CREATE TABLE IF NOT EXISTS bench_meta (id int PRIMARY KEY, meta jsonb NOT NULL)"))
    conn.execute(
        text("INSERT INTO bench_meta VALUES (1, CAST(:m AS jsonb)) ON CONFLICT (id) DO UPDATE SET meta = EXCLUDED.meta"),
        {"m": json.dumps(meta, default=str)},
    )


def load_meta(conn: Connection) -> dict[str, Any] | None:
    """The description save_meta kept; None when this database was not built by the benchmark."""
    if not conn.execute(text("SELECT to_regclass('bench_meta')")).scalar():
        return None
    return conn.execute(text("SELECT meta FROM bench_meta WHERE id = 1")).scalar()


@contextmanager
def recorded_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    """The statements (and parameters) sent through `engine` inside the block, as sent."""
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def explain_replay(conn: Connection, statements: list[tuple[str, Any]]) -> list[str]:
    """Replay recorded statements up to the last vector query (advisory locks left out), then
    that query under EXPLAIN (ANALYZE, BUFFERS): its plan with the same tenant and settings."""
    vector = [i for i, (sql, _) in enumerate(statements) if "<=>" in sql][-1]
    for sql, params in statements[:vector]:
        if not sql.lstrip().upper().startswith("SELECT PG_ADVISORY"):
            conn.exec_driver_sql(sql, params)
    sql, params = statements[vector]
    return [r[0] for r in conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]
