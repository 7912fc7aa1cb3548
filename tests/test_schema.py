"""The schema as PostgreSQL sees it: migrations, forced RLS, the roles, the vector indexes."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from core.db import APP_ROLE, OWNER_ROLE, Database
from core.migrate import all_migrations

TENANT_TABLES = ("tenants", "users", "memory_stores", "memories", "memory_relationships")


def test_running_migrations_again_changes_nothing(db: Database) -> None:
    assert db.migrate() == []
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
            results.append(target.migrate())
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


# Tables only the owner reads (memex_app has no privilege on them at all)
OWNER_ONLY = ("schema_migrations", "api_keys", "memex_scope_key", "analysts", "memberships")


def tenant_tables(db: Database) -> list[str]:
    """Every table of the schema but the owner's own (migrations, API keys)."""
    with db.owner() as conn:
        return conn.scalars(
            text(
                "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace"
                " AND relname <> ALL(:owner_only) ORDER BY relname"
            ),
            {"owner_only": list(OWNER_ONLY)},
        ).all()


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
        policies = conn.execute(text("SELECT tablename, qual, with_check FROM pg_policies WHERE policyname LIKE '%isolation'")).all()
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
        # only the rows of big stores are in the graph (migration 010)
        assert any(
            f"((embedding)::vector({dim})) vector_cosine_ops" in d and f"WHERE ((embedding_dim = {dim}) AND indexed)" in d for d in defs
        ), dim


def test_migrate_refuses_a_database_with_a_migration_this_code_does_not_have(db: Database, superuser, capsys, monkeypatch) -> None:
    """A database migrated by a newer memex (or a migration file removed since) is reported by name,
    by the CLI and the explorer, and nothing is applied on top of a schema this code does not know."""
    import core.db
    from core.cli import main
    from core.errors import ConfigError
    from core.explorer import state
    from core.migrate import migrate
    from tests.apptest import open_page

    name = "memex_unknown_migration"
    admin = create_engine(db.embedded.url("postgres", "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name} OWNER {OWNER_ROLE}"))
    with create_engine(db.embedded.url("postgres", name), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("CREATE EXTENSION vector"))
    owner = create_engine(db.embedded.url(OWNER_ROLE, name))
    try:
        migrate(owner)
        with owner.begin() as conn:
            conn.execute(text("INSERT INTO schema_migrations (version, checksum) VALUES ('999_from_the_future', 'x')"))
        with pytest.raises(ConfigError, match="records migration 999_from_the_future as applied, but .* has no such file"):
            migrate(owner)
        monkeypatch.setenv("DATABASE_URL", str(db.embedded.url(APP_ROLE, name).render_as_string(hide_password=False)))
        monkeypatch.setenv("MEMEX_ADMIN_DATABASE_URL", str(db.embedded.url(OWNER_ROLE, name).render_as_string(hide_password=False)))
        from core.config import get_settings

        get_settings.cache_clear()
        assert main(["migrate"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "999_from_the_future" in err[0]
        # the explorer says the same, in one line, and shows nothing else
        monkeypatch.setattr(state, "get_database", core.db._process_database.__wrapped__)  # a fresh Database, not the cached one
        state.database.clear()
        at = open_page("search")
        assert not at.exception
        assert len(at.error) == 1 and "Could not open the database" in at.error[0].value and "999_from_the_future" in at.error[0].value
        assert not at.dataframe and not at.sidebar.selectbox
    finally:
        get_settings.cache_clear()
        state.database.clear()
        owner.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def test_a_missing_grant_reads_as_a_configuration_error_and_an_rls_refusal_as_not_found(svc, store, other) -> None:
    """Both are SQLSTATE 42501; only row-level security means 'outside the tenant'."""
    from core.db import database_errors
    from core.errors import ConfigError, NotFound

    with pytest.raises(ConfigError, match="lacks a privilege .*permission denied for table schema_migrations"):
        with svc.transaction() as conn:
            conn.execute(text("SELECT * FROM schema_migrations"))
    other_svc, _ = other
    with pytest.raises(NotFound, match="outside the tenant"):
        with svc.transaction() as conn, database_errors():
            conn.execute(text("INSERT INTO users (tenant_id, name) VALUES (:t, 'intruder')"), {"t": other_svc.tenant_id})


def test_the_application_role_has_no_privilege_on_the_owners_tables(db: Database) -> None:
    with db.app.connect() as conn:
        granted = conn.execute(
            text("SELECT t, has_table_privilege(current_user, t, 'SELECT,INSERT,UPDATE,DELETE') FROM unnest(CAST(:t AS text[])) t"),
            {"t": list(OWNER_ONLY)},
        ).all()
    assert granted == [(t, False) for t in OWNER_ONLY]


def test_every_table_the_application_may_touch_needs_a_signed_scope_for_the_api(db: Database) -> None:
    """memex serve's role (memex_api) reads and writes nothing without the scope memex_authenticate
    signed: a restrictive policy on every table memex_app may use, later tables included."""
    with db.owner() as conn:
        touched = set(
            conn.scalars(
                text(
                    "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace"
                    " AND has_table_privilege('memex_app', oid, 'SELECT,INSERT,UPDATE,DELETE')"
                )
            )
        )
        signed = conn.execute(
            text("SELECT tablename, permissive, roles, qual, with_check FROM pg_policies WHERE policyname LIKE '%\\_api\\_signed'")
        ).all()
    assert touched and touched == {p.tablename for p in signed}
    for p in signed:
        assert (p.permissive, p.roles) == ("RESTRICTIVE", ["memex_api"])
        assert "memex_scope_signed()" in p.qual and "memex_scope_signed()" in p.with_check
