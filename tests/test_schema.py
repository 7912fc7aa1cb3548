"""The schema as PostgreSQL sees it: migrations, forced RLS, the roles, the vector indexes."""

from __future__ import annotations

import threading

from sqlalchemy import create_engine, text

from core.db import APP_ROLE, OWNER_ROLE, Database
from core.migrate import all_migrations, migrate

TENANT_TABLES = ("tenants", "users", "memory_stores", "memories", "memory_relationships")


def test_running_migrations_again_changes_nothing(db: Database) -> None:
    assert migrate(db) == []
    with db.owner() as conn:
        versions = conn.scalars(text("SELECT version FROM schema_migrations ORDER BY version")).all()
    assert versions == [m.version for m in all_migrations()]


def test_two_processes_migrating_a_new_database_together_apply_each_file_once(db: Database) -> None:
    name = "memex_migration_race"
    superuser = create_engine(db.embedded.url("postgres", "postgres"), isolation_level="AUTOCOMMIT")
    with superuser.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}"))
    in_db = create_engine(db.embedded.url("postgres", name), isolation_level="AUTOCOMMIT")
    with in_db.connect() as conn:
        conn.execute(text("CREATE EXTENSION vector"))
    in_db.dispose()
    racers = [Database(db.embedded.url(APP_ROLE, name), db.embedded.url(OWNER_ROLE, name)) for _ in range(2)]
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run(target: Database) -> None:
        try:
            results.append(migrate(target))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(r,)) for r in racers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    expected = [m.version for m in all_migrations()]
    assert sorted(results, key=len) == [[], expected]
    for r in racers:
        r.dispose()
    with superuser.connect() as conn:
        conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
    superuser.dispose()


def tenant_tables(db: Database) -> list[str]:
    """Every table of the schema but the migrations' bookkeeping."""
    with db.owner() as conn:
        return conn.scalars(text(
            "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace"
            " AND relname <> 'schema_migrations' ORDER BY relname")).all()


def test_row_level_security_is_enabled_and_forced_on_every_table(db: Database) -> None:
    tables = tenant_tables(db)
    assert set(TENANT_TABLES) <= set(tables)
    with db.owner() as conn:
        rows = conn.execute(
            text("SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY(:t)"), {"t": tables}
        ).all()
    assert {r.relname: (r.relrowsecurity, r.relforcerowsecurity) for r in rows} == {t: (True, True) for t in tables}


def test_every_table_has_an_isolation_policy_on_reads_and_writes_with_nullif(db: Database) -> None:
    with db.owner() as conn:
        policies = conn.execute(
            text("SELECT tablename, qual, with_check FROM pg_policies WHERE policyname LIKE '%isolation'")
        ).all()
    assert {p.tablename for p in policies} == set(tenant_tables(db))
    for p in policies:
        assert "NULLIF(current_setting('app.current_tenant_id'::text, true), ''::text)" in p.qual
        assert p.with_check == p.qual
        assert "SELECT" not in p.qual.upper()  # the row's own tenant_id, no subquery


def test_application_role_is_neither_owner_nor_superuser_nor_bypassrls(db: Database) -> None:
    with db.app.connect() as conn:
        row = conn.execute(
            text(
                "SELECT current_user AS role, rolsuper, rolbypassrls,"
                " pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE relname = 'memories'), 'USAGE') AS owns"
                " FROM pg_roles WHERE rolname = current_user"
            )
        ).one()
    assert (row.role, row.rolsuper, row.rolbypassrls, row.owns) == (APP_ROLE, False, False, False)


def test_each_supported_dimension_has_a_partial_hnsw_cosine_index(db: Database) -> None:
    with db.owner() as conn:
        defs = conn.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'memories' AND indexdef LIKE '%hnsw%'")).all()
    for dim in (256, 384, 512, 1024, 1536):
        assert any(f"((embedding)::vector({dim})) vector_cosine_ops" in d and f"WHERE (embedding_dim = {dim})" in d for d in defs), dim
