"""Analysts, memberships and roles (migration 012), tested from outside: as the application role,
the explorer may ask PostgreSQL which tenants an analyst opens and enter one of them; the roles
hold in the service (a clear refusal) and in the database (raw SQL in the analyst's transaction)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core import MemoryService, admin
from core.cli import main
from core.db import Database
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from core.models import MemoryStore, Tenant
from core.service import access
from core.service.access import Access
from tests.conftest import unique

PASSWORD = "correct horse battery"


@pytest.fixture
def email(db: Database) -> Iterator[str]:
    address = f"{unique('analyst')}@example.com"
    admin.add_analyst(db, address, PASSWORD)
    yield address
    try:
        admin.remove_analyst(db, address)
    except NotFound:
        pass


@pytest.fixture
def second(db: Database) -> Tenant:
    return admin.create_tenant(db, unique("second"))


def as_role(db: Database, email: str, tenant: Tenant, role: str) -> MemoryService:
    admin.grant(db, email, tenant.id, role)
    return MemoryService.for_analyst(db, email, tenant.id)


def test_the_application_role_cannot_read_analysts_or_memberships(db: Database, email: str) -> None:
    for table in ("analysts", "memberships"):
        with pytest.raises(DBAPIError, match="permission denied"), db.app.begin() as conn:
            conn.execute(text(f"SELECT * FROM {table}"))


def test_an_analyst_opens_only_the_tenants_of_their_memberships(db: Database, email: str, tenant: Tenant, second: Tenant) -> None:
    assert Access(db).tenants(email) == []
    admin.grant(db, email, tenant.id, "viewer")
    found = Access(db).tenants(email)
    assert [(m.tenant_id, m.tenant_name, m.role) for m in found] == [(tenant.id, tenant.name, "viewer")]
    with pytest.raises(NotFound, match="tenant not found"):
        MemoryService.for_analyst(db, email, second.id)
    admin.grant(db, email, tenant.id, "editor")  # a second grant changes the role
    assert [m.role for m in Access(db).tenants(email)] == ["editor"]


def test_an_operator_opens_every_tenant_as_admin(db: Database, email: str, tenant: Tenant, second: Tenant) -> None:
    assert not Access(db).is_operator(email)
    admin.set_analyst(db, email, operator=True)
    assert Access(db).is_operator(email)
    roles = {m.tenant_id: m.role for m in Access(db).tenants(email)}
    assert roles[tenant.id] == roles[second.id] == "admin"
    assert MemoryService.for_analyst(db, email, second.id).role == "admin"


def test_an_unknown_email_opens_nothing(db: Database, tenant: Tenant) -> None:
    assert Access(db).tenants("nobody@example.com") == []
    with pytest.raises(NotFound):
        MemoryService.for_analyst(db, "nobody@example.com", tenant.id)


def test_a_revoked_membership_applies_to_the_next_call(db: Database, email: str, tenant: Tenant) -> None:
    svc = as_role(db, email, tenant, "editor")
    assert svc.list_users() == []
    admin.revoke(db, email, tenant.id)
    with pytest.raises(NotFound, match="tenant not found"):
        svc.list_users()
    with pytest.raises(NotFound, match="not a member"):
        admin.revoke(db, email, tenant.id)


def test_a_viewer_reads_and_is_refused_every_change(
    db: Database, email: str, tenant: Tenant, svc: MemoryService, store: MemoryStore
) -> None:
    memory = svc.add_memory(store.id, "Alice likes green tea")
    viewer = as_role(db, email, tenant, "viewer")
    assert [m.id for m in viewer.list_memories(store.id).items] == [memory.id]
    assert not viewer.may("write") and not viewer.may("manage")
    with pytest.raises(Forbidden, match="a viewer may look, not change"):
        viewer.add_memory(store.id, "more")
    with pytest.raises(Forbidden, match="viewer"):
        viewer.delete_memory(memory.id)
    # raw SQL in the viewer's own transaction: PostgreSQL's read-only policies (migration 008)
    # hide every row from UPDATE and DELETE and refuse an INSERT, not only the service
    with viewer.transaction() as conn:
        assert conn.execute(text("UPDATE memories SET content = 'changed' WHERE id = :id"), {"id": memory.id}).rowcount == 0
        assert conn.execute(text("DELETE FROM memories WHERE id = :id"), {"id": memory.id}).rowcount == 0
    with pytest.raises(Forbidden, match="^a viewer may look, not change$") as refused, viewer.transaction() as conn:
        conn.execute(text("INSERT INTO users (tenant_id, name) VALUES (:t, 'intruder')"), {"t": tenant.id})
    assert "row-level security" in str(refused.value.__cause__)
    assert svc.get_memory(memory.id).content == "Alice likes green tea"


def test_an_editor_changes_memories_attributed_to_them_but_does_not_manage(
    db: Database, email: str, tenant: Tenant, svc: MemoryService, store: MemoryStore
) -> None:
    editor = as_role(db, email, tenant, "editor")
    assert editor.may("write") and not editor.may("manage")
    memory = editor.add_memory(store.id, "Alice moved to Lyon")
    editor.update_memory(memory.id, importance=0.9)
    assert {e.actor for e in svc.get_memory_history(memory.id)} == {f"analyst {email}"}
    with pytest.raises(Forbidden, match="only an admin of this tenant may do this, not an editor"):
        editor.create_user("bob")
    with pytest.raises(Forbidden, match="only an admin"):
        editor.create_tenant_key("agent")
    # the database refuses the key functions to anyone but the tenant's admin, whatever the SQL
    with pytest.raises(Forbidden, match="only an admin of this tenant manages its keys"), editor.transaction() as conn:
        conn.execute(text("SELECT * FROM memex_tenant_keys()"))


def test_a_tenant_admin_manages_users_stores_and_keys_of_that_tenant_only(db: Database, email: str, tenant: Tenant, second: Tenant) -> None:
    boss = as_role(db, email, tenant, "admin")
    assert boss.may("manage")
    user = boss.create_user("carol")
    boss.get_or_create_store(user.id, "work", embedding_model="test-hashing")
    key_id, secret = boss.create_tenant_key("carol's agent", read_only=True)
    listed = boss.tenant_keys()
    assert [k.id for k in listed] == [key_id] and listed[0].read_only and listed[0].tenant_id == tenant.id
    assert MemoryService.for_key(db, secret).tenant_id == tenant.id
    boss.revoke_tenant_key(key_id)
    with pytest.raises(Unauthenticated):
        MemoryService.for_key(db, secret)
    other_key, _ = admin.create_key(db, second.id, name="other tenant's")
    with pytest.raises(NotFound, match="not found in this tenant"):
        boss.revoke_tenant_key(other_key.id)
    assert admin.list_keys(db, second.id)[0].revoked_at is None


def test_the_api_role_may_not_ask_about_analysts(db: Database, email: str, tenant: Tenant) -> None:
    from core.db import api_database

    api = api_database()
    try:
        with pytest.raises(DBAPIError, match="the API may not act for analysts"), api.app.begin() as conn:
            conn.execute(text("SELECT * FROM memex_analyst_tenants(:e)"), {"e": email})
    finally:
        api.dispose()


# Local accounts -----------------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2_hashes(db: Database, email: str) -> None:
    with db.owner() as conn:
        stored = conn.scalar(text("SELECT password_hash FROM analysts WHERE email = :e"), {"e": email})
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_sign_in_says_the_same_for_an_unknown_email_and_a_wrong_password(db: Database, email: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(access, "WRONG_PASSWORD_DELAY_S", 0)
    assert Access(db).sign_in(email.upper(), PASSWORD) == email
    with pytest.raises(Unauthenticated, match="^wrong email or password$"):
        Access(db).sign_in(email, PASSWORD + "!")
    with pytest.raises(Unauthenticated, match="^wrong email or password$"):
        Access(db).sign_in("nobody@example.com", PASSWORD)


def test_repeated_wrong_passwords_lock_the_account_even_against_the_right_one(
    db: Database, email: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(access, "WRONG_PASSWORD_DELAY_S", 0)
    for _ in range(4):
        with pytest.raises(Unauthenticated, match="wrong email or password"):
            Access(db).sign_in(email, "not the password at all")
    with pytest.raises(Unauthenticated, match=r"too many wrong passwords: try again in \d+ s"):
        Access(db).sign_in(email, PASSWORD)
    admin.set_analyst(db, email, password=PASSWORD)  # a new password unlocks
    assert Access(db).sign_in(email, PASSWORD) == email


def test_bad_analyst_input_is_refused_in_one_line_and_writes_nothing(db: Database, email: str, tenant: Tenant) -> None:
    with pytest.raises(InvalidInput, match="at least 12 characters"):
        admin.add_analyst(db, "short@example.com", "short")
    with pytest.raises(InvalidInput, match="is not an email address"):
        admin.add_analyst(db, "not-an-email", PASSWORD)
    with pytest.raises(Conflict, match="already exists"):
        admin.add_analyst(db, email, PASSWORD)
    with pytest.raises(InvalidInput, match="role must be one of viewer, editor, admin"):
        admin.grant(db, email, tenant.id, "owner")
    assert all(a.email != "short@example.com" for a in admin.list_analysts(db))
    assert Access(db).tenants(email) == []


# The CLI ----------------------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_adds_grants_lists_and_revokes(
    db: Database, tenant: Tenant, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"{unique('cli')}@example.com"
    try:
        assert run(capsys, monkeypatch, "analysts", "add", address, stdin=PASSWORD + "\n")[0] == 0
        code, out, _ = run(capsys, monkeypatch, "analysts", "grant", address, "--tenant", tenant.name, "--role", "editor")
        assert code == 0 and f"may open {tenant.name} as editor" in out
        code, out, _ = run(capsys, monkeypatch, "analysts", "list", "--json")
        mine = next(a for a in json.loads(out) if a["email"] == address)
        assert mine["local_account"] and not mine["operator"]
        assert [(m["tenant"], m["role"]) for m in mine["memberships"]] == [(tenant.name, "editor")]
        assert Access(db).sign_in(address, PASSWORD) == address
        assert run(capsys, monkeypatch, "analysts", "revoke", address, "--tenant", tenant.name)[0] == 0
        assert Access(db).tenants(address) == []
    finally:
        run(capsys, monkeypatch, "analysts", "remove", address)


def test_cli_errors_name_what_is_wrong(
    db: Database, email: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run(capsys, monkeypatch, "analysts", "grant", email, "--tenant", "no-such-tenant", "--role", "viewer")
    assert code != 0 and out == "" and "no-such-tenant" in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, monkeypatch, "analysts", "add", f"{unique('x')}@example.com", stdin="tiny\n")
    assert code != 0 and "at least 12 characters" in err and "Traceback" not in err
