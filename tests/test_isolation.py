"""Tenant isolation, tested from the outside as in PostgreSQL's rowsecurity regression tests:
connect as the application role, set a tenant (or none), try to reach another tenant's rows."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from core import MemoryService, NewMemory, NotFound
from core.db import Database
from core.models import MemoryStore, TenantFigures


def other_memory_id(other: tuple[MemoryService, MemoryStore]):
    other_svc, other_store = other
    return other_svc.list_memories(other_store.id).items[0].id


def test_service_cannot_read_update_delete_or_relate_another_tenants_memory(svc, store, other) -> None:
    victim = other_memory_id(other)
    mine = svc.add_memory(store.id, "my own memory")
    with pytest.raises(NotFound):
        svc.get_memory(victim)
    with pytest.raises(NotFound):
        svc.update_memory(victim, content="overwritten")
    with pytest.raises(NotFound):
        svc.delete_memory(victim)
    with pytest.raises(NotFound):
        svc.add_relationship(mine.id, victim, "related_to")
    with pytest.raises(NotFound):
        svc.add_relationship(victim, mine.id, "related_to")
    with pytest.raises(NotFound):
        svc.get_store(other[1].id)
    assert svc.expire_memories([victim]) == 0
    assert svc.set_archived([victim]) == 0
    assert svc.delete_memories([victim]) == 0
    assert other[0].get_memory(victim).content == "The launch code of the other tenant is 0000"


def test_search_and_listing_never_return_another_tenants_rows(svc, store, other) -> None:
    svc.add_memory(store.id, "launch code of my tenant")
    with pytest.raises(NotFound):
        svc.search_memories(other[1].id, "launch code", min_similarity=-1)
    results = svc.search_memories(store.id, "launch code of the other tenant", min_similarity=-1, limit=50)
    assert {r.memory.tenant_id for r in results} == {svc.tenant_id}
    assert all(s.tenant_id == svc.tenant_id for s in svc.list_stores())


def test_a_tenants_figures_count_its_own_users_stores_and_memories_only(svc, store, other) -> None:
    svc.add_memories(store.id, [NewMemory("one"), NewMemory("two")])
    assert svc.tenant_figures() == TenantFigures(users=1, stores=1, memories=2)
    assert other[0].tenant_figures() == TenantFigures(users=1, stores=1, memories=1)


def test_raw_sql_as_the_application_role_sees_and_changes_only_its_tenant(db: Database, svc, store, other) -> None:
    svc.add_memory(store.id, "visible to my tenant")
    victim = other_memory_id(other)
    with db.tenant(svc.tenant_id) as conn:
        assert conn.scalar(text("SELECT count(*) FROM memories WHERE tenant_id <> :t"), {"t": svc.tenant_id}) == 0
        assert conn.scalar(text("SELECT count(*) FROM tenants")) == 1
        assert conn.execute(text("UPDATE memories SET content = 'pwned' WHERE id = :id"), {"id": victim}).rowcount == 0
        assert conn.execute(text("DELETE FROM memories WHERE id = :id"), {"id": victim}).rowcount == 0
    assert other[0].get_memory(victim).content != "pwned"


def test_raw_sql_cannot_write_a_row_into_another_tenant(db: Database, svc, store, other) -> None:
    other_svc, other_store = other
    with pytest.raises(DBAPIError, match="row-level security"):
        with db.app.begin() as conn:
            conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(svc.tenant_id)})
            conn.execute(
                text(
                    "INSERT INTO memories (tenant_id, store_id, content, embedding, embedding_dim)"
                    " VALUES (:t, :s, 'planted', array_fill(0.1, ARRAY[384])::vector, 384)"
                ),
                {"t": other_svc.tenant_id, "s": other_store.id},
            )


def test_a_relationship_cannot_point_into_another_tenant_even_in_raw_sql(db: Database, svc, store, other) -> None:
    mine = svc.add_memory(store.id, "mine")
    victim = other_memory_id(other)
    with pytest.raises(DBAPIError, match="foreign key"):
        with db.app.begin() as conn:
            conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(svc.tenant_id)})
            conn.execute(
                text(
                    "INSERT INTO memory_relationships (tenant_id, source_memory_id, target_memory_id, relationship_type)"
                    " VALUES (:t, :s, :g, 'related_to')"
                ),
                {"t": svc.tenant_id, "s": mine.id, "g": victim},
            )


def test_no_tenant_set_sees_no_rows_and_writes_nothing(db: Database, svc, store) -> None:
    svc.add_memory(store.id, "exists")
    with db.app.begin() as conn:
        for table in ("tenants", "users", "memory_stores", "memories", "memory_relationships"):
            assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == 0, table
        assert conn.execute(text("UPDATE memories SET content = 'x'")).rowcount == 0
        assert conn.execute(text("DELETE FROM memory_stores")).rowcount == 0
    with pytest.raises(DBAPIError, match="row-level security"):
        with db.app.begin() as conn:
            conn.execute(text("INSERT INTO users (tenant_id, name) VALUES (:t, 'intruder')"), {"t": svc.tenant_id})


def test_tenant_context_ends_with_the_transaction_on_a_pooled_connection(db: Database, svc, store) -> None:
    svc.add_memory(store.id, "only inside the transaction")
    with db.app.connect() as conn:
        with conn.begin():
            conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(svc.tenant_id)})
            assert conn.scalar(text("SELECT count(*) FROM memories")) == 1
        # same connection, next transaction: the setting reads '' now, and NULLIF keeps it harmless
        with conn.begin():
            assert conn.scalar(text("SELECT current_setting('app.current_tenant_id', true)")) == ""
            assert conn.scalar(text("SELECT count(*) FROM memories")) == 0


def test_a_failed_transaction_does_not_leak_its_tenant_to_the_next_user_of_the_connection(db: Database, svc, store, other) -> None:
    svc.add_memory(store.id, "tenant A's memory")
    other_svc, _ = other
    with pytest.raises(RuntimeError):
        with db.tenant(svc.tenant_id) as conn:
            assert conn.scalar(text("SELECT count(*) FROM memories")) == 1
            raise RuntimeError("the caller fails half-way")
    for _ in range(db.app.pool.size() + 2):  # every pooled connection
        with db.tenant(other_svc.tenant_id) as conn:
            assert conn.scalar(text("SELECT count(*) FROM memories WHERE tenant_id = :t"), {"t": svc.tenant_id}) == 0


@pytest.mark.parametrize(
    "statement",
    [
        "ALTER TABLE memories DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE memories NO FORCE ROW LEVEL SECURITY",
        "DROP POLICY memories_isolation ON memories",
        "ALTER POLICY memories_isolation ON memories USING (true)",
        "CREATE POLICY open_door ON memories USING (true)",
        "SET ROLE memex_owner",
        "SET ROLE postgres",
        "SET SESSION AUTHORIZATION postgres",
        "ALTER ROLE memex_app BYPASSRLS",
        "SELECT * FROM schema_migrations",
        "TRUNCATE memories",
        "SET row_security = off; SELECT count(*) FROM memories",
    ],
)
def test_application_role_cannot_switch_isolation_off(db: Database, statement: str) -> None:
    with pytest.raises((ProgrammingError, DBAPIError)) as caught:
        with db.app.begin() as conn:
            for part in statement.split("; "):
                conn.execute(text(part))
    message = str(caught.value.orig)
    assert any(s in message for s in ("permission denied", "must be owner", "must be superuser", "row-level security")), message
