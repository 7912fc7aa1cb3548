"""API keys in the database, tested from outside as PostgreSQL's rowsecurity regression tests do:
connect as the application role, present a key (Database.with_key: memex_authenticate), then
try raw SQL in that transaction. The key's tenant, user/store scope and read-only flag are
enforced by PostgreSQL's policies, whatever the SQL asks."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from core import MemoryService, admin
from core.cli import main
from core.db import Database
from core.errors import ConfigError, Forbidden, NotFound, Unauthenticated
from core.evaluation import EvalCase
from core.keys import VISIBLE
from core.models import MemoryStore
from tests.api_support import new_key
from tests.conftest import unique

TABLES = ["users", "memory_stores", "memories", "memory_relationships", "evaluation_sets", "evaluation_cases"]
SCOPE = (
    "SELECT current_setting('app.current_tenant_id', true) AS tenant, current_setting('app.key_user_id', true) AS user_id,"
    " current_setting('app.key_store_id', true) AS store_id, current_setting('app.read_only', true) AS read_only"
)


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sqlstate(exc: pytest.ExceptionInfo[DBAPIError]) -> str:
    return getattr(exc.value.orig, "sqlstate", "")


@contextmanager
def refused(error: type[Exception], database_says: str) -> Iterator[None]:
    """The memex error a refusal of PostgreSQL becomes (core.db.database_errors), and what
    PostgreSQL said."""
    with pytest.raises(error) as info:
        yield
    assert database_says in str(info.value.__cause__), info.value.__cause__


def expire(superuser: Engine, key_id: UUID) -> None:
    with superuser.begin() as conn:
        conn.execute(text("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = :id"), {"id": key_id})


# The CLI and what the table holds --------------------------------------------------------------


def test_keys_create_json_prints_one_object_with_the_key_shown_only_then(capsys, superuser: Engine) -> None:
    tenant = unique("keys")
    code, out, _ = cli(
        capsys, "keys", "create", "--tenant", tenant, "--user", "ana", "--store", "notes", "--read-only", "--name", "ci", "--json"
    )
    assert code == 0 and len(out.splitlines()) == 1
    created = json.loads(out)
    assert created["tenant"] == tenant and UUID(created["id"]) and created["key"].startswith("mx_") and len(created["key"]) == 46
    assert (created["user"], created["store"], created["read_only"], created["name"]) == ("ana", "notes", True, "ci")
    assert created["prefix"] == created["key"][:VISIBLE]

    for listing in (["keys", "list"], ["keys", "list", "--json"], ["keys", "list", "--tenant", tenant, "--json"]):
        code, out, err = cli(capsys, *listing)
        assert code == 0 and created["id"] in out and created["key"] not in out + err and created["key"][VISIBLE:] not in out + err
    code, out, _ = cli(capsys, "keys", "list", "--tenant", tenant)
    assert out.split() == [created["id"], created["prefix"] + "…", "active", tenant, "/", "ana", "/", "notes", "read-only", "ci"]
    with superuser.connect() as conn:
        stored = conn.execute(text("SELECT * FROM api_keys WHERE id = :id"), {"id": created["id"]}).one()._mapping
    assert bytes(stored["secret_sha256"]) == hashlib.sha256(created["key"].encode()).digest()
    assert not any(created["key"][VISIBLE:] in str(value) for value in stored.values())  # only the visible prefix, no secret


def test_keys_create_with_expiry_and_keys_revoke(capsys, db: Database) -> None:
    code, out, _ = cli(capsys, "keys", "create", "--tenant", unique("keys"), "--expires-in-days", "7", "--json")
    created = json.loads(out)
    assert code == 0 and created["expires_at"] and created["user"] is None and created["read_only"] is False
    assert MemoryService.for_key(db, created["key"]).principal.key_id == UUID(created["id"])
    code, out, _ = cli(capsys, "keys", "revoke", created["id"])
    assert code == 0 and out.startswith(f"revoked API key {created['id']}")
    with pytest.raises(Unauthenticated, match="^invalid API key$"):
        MemoryService.for_key(db, created["key"])
    code, out, _ = cli(capsys, "keys", "list", "--tenant", created["tenant"])
    assert "revoked" in out


@pytest.mark.parametrize(
    "options, message",
    [
        (["--user", "u", "--expires-in-days", "-3"], "expires-in-days must be a number of days above 0 and at most 3650, not -3"),
        (["--user", "u", "--expires-in-days", "5000"], "expires-in-days must be a number of days above 0 and at most 3650, not 5000"),
        (["--store", "s"], "--store needs --user: store names are per user"),
    ],
)
def test_a_refused_key_creates_no_tenant_user_or_store(capsys, db: Database, options, message) -> None:
    name = unique("refused")
    code, out, err = cli(capsys, "keys", "create", "--tenant", name, *options)
    assert code != 0 and out == "" and err.strip() == f"memex: error: {message}"
    with pytest.raises(NotFound):
        admin.find_tenant(db, name)


def test_the_application_role_cannot_see_or_change_the_keys_table(db: Database, tenant, key: str) -> None:
    for attempt in ("SELECT count(*) FROM api_keys", "UPDATE api_keys SET revoked_at = NULL", "DELETE FROM api_keys"):
        with refused(ConfigError, "permission denied for table api_keys"):
            with db.tenant(tenant.id) as conn:
                conn.execute(text(attempt))
        with refused(ConfigError, "permission denied for table api_keys"):
            with db.with_key(key) as (conn, _):
                conn.execute(text(attempt))


def test_the_functions_are_the_owners_with_a_fixed_search_path_and_only_the_app_may_run_them(superuser: Engine) -> None:
    with superuser.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.proname, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) AS owner,"
                " has_function_privilege('memex_app', p.oid, 'EXECUTE') AS app,"
                " has_function_privilege('public', p.oid, 'EXECUTE') AS public"
                " FROM pg_proc p WHERE p.proname IN ('memex_authenticate', 'memex_record_access', 'memex_applied_migrations')"
            )
        ).all()
    assert len(rows) == 3
    for row in rows:
        assert (row.prosecdef, row.owner, row.app, row.public) == (True, "memex_owner", True, False), row.proname
        assert row.proconfig == ["search_path=pg_catalog, public"], row.proname


# Authentication ------------------------------------------------------------------------------------


def test_authenticate_sets_the_keys_scope_for_its_transaction_only(db: Database, svc: MemoryService, store: MemoryStore) -> None:
    key = new_key(db, svc.tenant_id, user_id=store.user_id, store_id=store.id, read_only=True, name="reader")
    with db.with_key(key) as (conn, principal):
        scope = conn.execute(text(SCOPE)).one()
        assert (scope.tenant, scope.user_id, scope.store_id, scope.read_only) == (
            str(svc.tenant_id),
            str(store.user_id),
            str(store.id),
            "on",
        )
        assert conn.scalar(text("SELECT current_user")) == "memex_app"
        assert conn.scalar(text("SELECT current_setting('app.actor', true)")) == f"key {principal.key_id} reader"
    assert (principal.tenant_id, principal.user_id, principal.store_id, principal.read_only) == (
        svc.tenant_id,
        store.user_id,
        store.id,
        True,
    )
    with db.app.connect() as conn:  # the pool's next transaction: no scope left behind
        assert tuple(conn.execute(text(SCOPE)).one()) in {("", "", "", ""), (None, None, None, None)}


def test_unknown_revoked_and_expired_keys_get_the_same_error(db: Database, tenant, superuser: Engine) -> None:
    revoked, expired = admin.create_key(db, tenant.id), admin.create_key(db, tenant.id)
    admin.revoke_key(db, revoked[0].id)
    expire(superuser, expired[0].id)
    presented = {
        "unknown": "mx_" + "A" * 43,
        "revoked": revoked[1],
        "expired": expired[1],
        "a prefix with another secret": revoked[1][:VISIBLE] + "B" * 35,
    }
    errors = {}
    for what, key in presented.items():
        with pytest.raises(DBAPIError) as refused:
            with db.app.begin() as conn:
                conn.execute(text("SELECT * FROM memex_authenticate(:key)"), {"key": key})
        errors[what] = (sqlstate(refused), refused.value.orig.diag.message_primary)
        with pytest.raises(Unauthenticated) as said:
            MemoryService.for_key(db, key)
        assert str(said.value) == "invalid API key"
    assert set(errors.values()) == {("28000", "invalid API key")}, errors


def test_a_key_records_when_it_was_last_used(db: Database, tenant, key: str) -> None:
    [record] = [k for k in admin.list_keys(db, tenant.id)]
    assert record.last_used_at is None
    MemoryService.for_key(db, key).list_stores()
    [record] = admin.list_keys(db, tenant.id)
    assert record.last_used_at is not None


def test_revocation_and_expiry_apply_to_the_next_transaction(db: Database, svc: MemoryService, store, superuser: Engine) -> None:
    svc.add_memory(store.id, "still here")
    for end in ("revoke", "expire"):
        record, key = admin.create_key(db, svc.tenant_id)
        agent = MemoryService.for_key(db, key)  # made while the key was good
        assert agent.list_memories(store.id).total == 1
        admin.revoke_key(db, record.id) if end == "revoke" else expire(superuser, record.id)
        with pytest.raises(Unauthenticated, match="^invalid API key$"):
            agent.list_memories(store.id)


def test_keys_of_a_deleted_store_or_user_die_with_it(db: Database, svc: MemoryService, user, store) -> None:
    store_key = new_key(db, svc.tenant_id, user_id=user.id, store_id=store.id)
    user_key = new_key(db, svc.tenant_id, user_id=user.id)
    svc.delete_store(store.id)
    with pytest.raises(Unauthenticated):
        MemoryService.for_key(db, store_key)
    assert MemoryService.for_key(db, user_key).list_stores() == []
    svc.delete_user(user.id)
    with pytest.raises(Unauthenticated):
        MemoryService.for_key(db, user_key)
    assert admin.list_keys(db, svc.tenant_id) == []


# Scope, with raw SQL in the key's own transaction -------------------------------------------------


@pytest.fixture
def two_stores(svc: MemoryService, user, store) -> tuple[MemoryStore, MemoryStore]:
    """`store` and a second store of another user in the same tenant, each with two related
    memories and an evaluation set."""
    bob = svc.create_user("bob")
    elsewhere = svc.get_or_create_store(bob.id, "default", embedding_model="test-hashing")
    for s in (store, elsewhere):
        a, b = svc.add_memory(s.id, f"first of {s.id}"), svc.add_memory(s.id, f"second of {s.id}")
        svc.add_relationship(a.id, b.id, "related_to")
        svc.save_eval_set(s.id, "set", [EvalCase("first", (a.id,))])
    return store, elsewhere


def counts(conn) -> dict[str, int]:
    return {table: conn.scalar(text(f"SELECT count(*) FROM {table}")) for table in TABLES}


def test_a_store_bound_key_sees_and_changes_only_its_store_even_in_raw_sql(db: Database, svc: MemoryService, two_stores) -> None:
    mine, elsewhere = two_stores
    key = new_key(db, svc.tenant_id, user_id=mine.user_id, store_id=mine.id)
    with db.with_key(key) as (conn, _):
        assert counts(conn) == {t: 1 for t in TABLES} | {"memories": 2}
        assert set(conn.scalars(text("SELECT DISTINCT store_id FROM memories"))) == {mine.id}
        assert conn.execute(text("UPDATE memories SET content = 'changed'")).rowcount == 2
        assert conn.execute(text("DELETE FROM memory_relationships")).rowcount == 1
        assert conn.execute(text("DELETE FROM memories WHERE store_id = :s"), {"s": elsewhere.id}).rowcount == 0
        assert conn.execute(text("UPDATE memory_stores SET store_name = 'taken' WHERE id = :s"), {"s": elsewhere.id}).rowcount == 0
        assert conn.execute(text("DELETE FROM users WHERE id <> :u"), {"u": mine.user_id}).rowcount == 0
    with refused(NotFound, 'new row violates row-level security policy "memories_key_scope"'):
        with db.with_key(key) as (conn, _):
            conn.execute(
                text(
                    "INSERT INTO memories (tenant_id, store_id, content, embedding, embedding_dim)"
                    " VALUES (:t, :s, 'planted', array_fill(0.1, ARRAY[384])::vector, 384)"
                ),
                {"t": svc.tenant_id, "s": elsewhere.id},
            )
    others = svc.list_memories(elsewhere.id).items
    assert sorted(m.content for m in others) == [f"first of {elsewhere.id}", f"second of {elsewhere.id}"]
    assert len(svc.list_relationships(elsewhere.id)) == 1 and svc.get_store(elsewhere.id).store_name == "default"


def test_a_user_bound_key_sees_only_its_user_stores_and_memories_even_in_raw_sql(db: Database, svc: MemoryService, two_stores) -> None:
    mine, elsewhere = two_stores
    svc.get_or_create_store(mine.user_id, "second", embedding_model="test-hashing")
    key = new_key(db, svc.tenant_id, user_id=mine.user_id)
    with db.with_key(key) as (conn, _):
        assert counts(conn) == {
            "users": 1,
            "memory_stores": 2,
            "memories": 2,
            "memory_relationships": 1,
            "evaluation_sets": 1,
            "evaluation_cases": 1,
        }
        assert conn.execute(text("DELETE FROM memories WHERE store_id = :s"), {"s": elsewhere.id}).rowcount == 0
        assert conn.execute(text("UPDATE users SET name = 'renamed'")).rowcount == 1
    with refused(NotFound, 'new row violates row-level security policy "memory_stores_key_scope"'):
        with db.with_key(key) as (conn, _):
            conn.execute(
                text(
                    "INSERT INTO memory_stores (tenant_id, user_id, store_name, embedding_model, embedding_dim) VALUES (:t, :u, 'x', 'test-hashing', 384)"
                ),
                {"t": svc.tenant_id, "u": elsewhere.user_id},
            )
    assert svc.get_user(elsewhere.user_id).name == "bob" and svc.list_memories(elsewhere.id).total == 2


def test_a_key_never_reaches_another_tenant(db: Database, svc: MemoryService, store, other) -> None:
    svc.add_memory(store.id, "mine")
    with db.with_key(new_key(db, svc.tenant_id)) as (conn, _):
        assert conn.scalar(text("SELECT count(*) FROM memories WHERE tenant_id <> :t"), {"t": svc.tenant_id}) == 0
        assert conn.scalar(text("SELECT count(*) FROM tenants")) == 1
        assert conn.execute(text("UPDATE memories SET content = 'pwned' WHERE store_id = :s"), {"s": other[1].id}).rowcount == 0
    assert other[0].list_memories(other[1].id).items[0].content == "The launch code of the other tenant is 0000"


# Read-only keys --------------------------------------------------------------------------------------


INSERTS = {
    "users": "INSERT INTO users (tenant_id, name) VALUES (:t, 'planted')",
    "memory_stores": "INSERT INTO memory_stores (tenant_id, user_id, store_name, embedding_model, embedding_dim) VALUES (:t, :u, 'planted', 'test-hashing', 384)",
    "memories": "INSERT INTO memories (tenant_id, store_id, content, embedding, embedding_dim) VALUES (:t, :s, 'planted', array_fill(0.1, ARRAY[384])::vector, 384)",
    "memory_relationships": "INSERT INTO memory_relationships (tenant_id, source_memory_id, target_memory_id, relationship_type) VALUES (:t, :m, :m, 'planted')",
    "evaluation_sets": "INSERT INTO evaluation_sets (tenant_id, store_id, name) VALUES (:t, :s, 'planted')",
    "evaluation_cases": "INSERT INTO evaluation_cases (tenant_id, set_id, query, expected_ids) VALUES (:t, :e, 'planted', ARRAY[:m]::uuid[])",
}
UPDATES = {
    "users": "UPDATE users SET name = name || '!'",
    "memory_stores": "UPDATE memory_stores SET store_name = store_name || '!'",
    "memories": "UPDATE memories SET content = 'changed', access_count = access_count + 1",
    "memory_relationships": "UPDATE memory_relationships SET strength = 1",
    "evaluation_sets": "UPDATE evaluation_sets SET name = name || '!'",
    "evaluation_cases": "UPDATE evaluation_cases SET query = 'changed'",
}


def test_the_database_refuses_every_write_of_a_read_only_key_even_in_raw_sql(db: Database, svc: MemoryService, two_stores) -> None:
    mine, _ = two_stores
    key = new_key(db, svc.tenant_id, read_only=True)
    with db.with_key(key) as (conn, _):
        before = counts(conn)
        ids = {
            "t": svc.tenant_id,
            "u": mine.user_id,
            "s": mine.id,
            "m": conn.scalar(text("SELECT id FROM memories WHERE store_id = :s LIMIT 1"), {"s": mine.id}),
            "e": conn.scalar(text("SELECT id FROM evaluation_sets WHERE store_id = :s"), {"s": mine.id}),
        }
    for table in TABLES:
        with refused(Forbidden, f'new row violates row-level security policy "{table}_read_only_insert"'):
            with db.with_key(key) as (conn, _):
                conn.execute(text(INSERTS[table]), ids)
        with db.with_key(key) as (conn, _):  # UPDATE and DELETE find no row they may touch
            assert conn.execute(text(UPDATES[table])).rowcount == 0, table
            assert conn.execute(text(f"DELETE FROM {table}")).rowcount == 0, table
    with db.with_key(key) as (conn, _):
        assert counts(conn) == before
        assert set(conn.scalars(text("SELECT access_count FROM memories"))) == {0}


def test_a_read_only_key_is_refused_in_words_and_its_searches_still_count_accesses(db: Database, svc: MemoryService, store) -> None:
    memory = svc.add_memory(store.id, "Ana likes tea")
    reader = MemoryService.for_key(db, new_key(db, svc.tenant_id, read_only=True))
    with pytest.raises(Forbidden, match="^this API key is read-only$"):
        reader.add_memory(store.id, "x")
    with pytest.raises(Forbidden, match="^this API key is read-only$"):
        reader.find_user("a-new-user", create=True)  # not a @writes method: the database says no
    [hit] = reader.search_memories(store.id, "Ana likes tea", min_similarity=0)
    assert hit.memory.id == memory.id
    assert svc.get_memory(memory.id).access_count == 1 and svc.get_memory(memory.id).last_accessed is not None


def test_record_access_counts_only_what_the_key_may_see(db: Database, svc: MemoryService, two_stores, other) -> None:
    mine, elsewhere = two_stores
    theirs = other[0].list_memories(other[1].id).items[0].id
    outside = svc.list_memories(elsewhere.id).items[0].id
    inside = svc.list_memories(mine.id).items[0].id
    with db.with_key(new_key(db, svc.tenant_id, user_id=mine.user_id, store_id=mine.id, read_only=True)) as (conn, _):
        conn.execute(text("SELECT memex_record_access(:ids)"), {"ids": [inside, outside, theirs]})
    assert [svc.get_memory(inside).access_count, svc.get_memory(outside).access_count] == [1, 0]
    assert other[0].get_memory(theirs).access_count == 0


@pytest.fixture(scope="module")
def api_db(db: Database) -> Iterator[Database]:
    """The connection `memex serve` makes: the API's own role, memex_api."""
    from core.db import API_ROLE

    assert db.embedded is not None
    api = Database(db.embedded.url(API_ROLE), None)
    yield api
    api.dispose()


LIFTS = {
    "read-only off": "SELECT set_config('app.read_only', 'off', true)",
    "store scope off": "SELECT set_config('app.key_store_id', '', true), set_config('app.key_user_id', '', true)",
    "another tenant": "SELECT set_config('app.current_tenant_id', :other, true)",
}


@pytest.mark.parametrize("lift", list(LIFTS))
def test_the_apis_role_cannot_lift_its_keys_scope_with_raw_sql(
    api_db: Database, db: Database, svc: MemoryService, two_stores, other, lift
) -> None:
    """memex serve connects as memex_api: every statement needs the scope memex_authenticate
    signed for this transaction, so changing a setting leaves nothing to read or write."""
    mine, theirs = two_stores
    other_svc, other_store = other
    key = new_key(db, svc.tenant_id, user_id=mine.user_id, store_id=mine.id, read_only=True)
    with api_db.with_key(key) as (conn, _):
        assert conn.scalar(text("SELECT count(*) FROM memories")) > 0  # signed: its own store is there
        conn.execute(text(LIFTS[lift]), {"other": str(other_svc.tenant_id)})
        assert counts(conn) == dict.fromkeys(TABLES, 0)
        assert conn.scalar(text("SELECT count(*) FROM tenants")) == 0
        assert conn.execute(text("UPDATE memories SET content = 'forged'")).rowcount == 0
        assert conn.execute(text("DELETE FROM memories")).rowcount == 0
    with pytest.raises(Forbidden, match="no scope signed by memex_authenticate"), api_db.with_key(key) as (conn, _):
        conn.execute(text(LIFTS[lift]), {"other": str(other_svc.tenant_id)})
        conn.execute(text("SELECT memex_record_access(ARRAY(SELECT gen_random_uuid()))"))
    assert {m.content for m in svc.list_memories(mine.id, limit=100).items}.isdisjoint({"forged"})
    assert other_svc.list_memories(other_store.id).total == 1


def test_the_apis_role_without_any_key_sees_nothing(api_db: Database, svc: MemoryService, store) -> None:
    svc.add_memory(store.id, "only for signed scopes")
    with api_db.app.begin() as conn:
        conn.execute(text("SELECT set_config('app.current_tenant_id', :t, true)"), {"t": str(svc.tenant_id)})
        assert conn.scalar(text("SELECT count(*) FROM memories")) == 0
        assert conn.scalar(text("SELECT count(*) FROM users")) == 0


def test_memex_serve_refuses_a_role_that_is_not_the_apis(db: Database, monkeypatch) -> None:
    from core.config import Settings
    from core.db import APP_ROLE, api_database

    assert db.embedded is not None
    url = db.embedded.url(APP_ROLE).render_as_string(hide_password=False)
    with pytest.raises(ConfigError, match="not a member of memex_api"):
        api_database(Settings(DATABASE_URL=url))


def test_a_search_over_the_api_presents_its_key_once(api_db: Database, svc: MemoryService, store, monkeypatch, superuser) -> None:
    """POST /v1/search with the query's vector: the key, the store, the search and the access count
    in one transaction of the API's role (one memex_authenticate, one commit); the log entry
    follows, written by the log writer in the key's scope (its key name on it)."""
    from core.api import schemas as s
    from core.api.caller import Callers
    from core.api.routes import search
    from core.embeddings import get_embedder
    from core.service import logwriter

    wanted = svc.add_memory(store.id, "Ana's passport expires in March")
    caller = Callers(api_db).service(new_key(svc.db, svc.tenant_id, name="agent"))
    presented = []
    with_key = api_db.with_key
    monkeypatch.setattr(api_db, "with_key", lambda key: presented.append(key) or with_key(key))
    monkeypatch.setattr(logwriter, "LINGER_S", 5.0)  # the entry waits: the request's own transactions are counted alone
    vector = get_embedder("test-hashing").embed_one("Ana's passport expires in March").tolist()
    out = search(s.SearchIn(embedding=vector, store=store.store_name, user=str(store.user_id), limit=1, min_similarity=-1), caller)
    assert [h["id"] for h in json.loads(bytes(out.body))["results"]] == [str(wanted.id)] and len(presented) == 1
    logwriter.writer(api_db).flush()
    with superuser.connect() as conn:
        logged = conn.scalar(text("SELECT result_count FROM retrieval_log WHERE store_id = :s AND key_name = 'agent'"), {"s": store.id})
        counted = conn.scalar(text("SELECT access_count FROM memories WHERE id = :id"), {"id": wanted.id})
    assert (logged, counted) == (1, 1) and len(presented) == 2


def test_one_transaction_holds_only_its_own_services_calls(svc: MemoryService, store, other) -> None:
    """Inside one_transaction() the service's calls share its transaction (and its end: a raise
    rolls back what they wrote); another tenant's service opens its own, with its own tenant."""
    other_svc, other_store = other
    with pytest.raises(RuntimeError, match="undo"), svc.one_transaction():
        with svc.transaction() as first, svc.transaction() as second:
            assert first is second
        svc.add_memory(store.id, "written, then rolled back with the request", embedding=[1.0] * store.embedding_dim)
        assert other_svc.list_memories(other_store.id).total == 1
        with svc.transaction() as conn:
            assert conn.scalar(text("SELECT count(*) FROM memories WHERE store_id = :s"), {"s": other_store.id}) == 0
        raise RuntimeError("undo")
    assert svc.list_memories(store.id).total == 0


@pytest.mark.parametrize("key", [None, "", "mx_" + "a" * 300])
def test_a_missing_or_oversized_key_is_refused_before_postgresql_even_when_asked_fresh(api_db: Database, key) -> None:
    """The MCP endpoint asks for a fresh check of its key: the same refusals as every request."""
    from core.api.caller import Callers
    from core.errors import Unauthenticated

    with pytest.raises(Unauthenticated):
        Callers(api_db).service(key, fresh=True)
