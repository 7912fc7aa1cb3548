"""The Admin page through AppTest: tenants, users and stores created, renamed and deleted for real,
deletions only after confirmation, and the sidebar selection kept valid.

(AppTest does not rerun app.py's sidebar after switching pages, so the sidebar's follow-up is
checked through the session state and URL it reads, not through its widgets.)"""

from __future__ import annotations

import numpy as np
import pytest

from core import NewMemory
from core.admin import create_tenant, find_tenant, list_tenants
from tests.apptest import open_page
from tests.conftest import unique


def open_admin(tenant, user, store="default"):
    at = open_page("admin", tenant=tenant.name, user=user.name, store=store)
    assert not at.exception, at.exception
    return at


def ok(at):
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def selection(at) -> dict[str, str | None]:
    return {k: at.session_state[k] if k in at.session_state else None for k in ("tenant", "user", "store")}


def submit(at, form: str, label: str):
    return ok(at.button(key=f"FormSubmitter:{form}-{label}").click().run())


def test_create_rename_delete_a_user(svc, store, user, tenant) -> None:
    at = open_admin(tenant, user)
    at.text_input(key="admin_new_user").set_value("bob")
    at = submit(at, "admin_create_user", "Create user")
    assert "bob" in [u.name for u in svc.list_users()]
    assert selection(at) == {"tenant": tenant.name, "user": "bob", "store": None}  # the sidebar moves to bob
    assert at.query_params["user"] == "bob" and "store" not in at.query_params
    assert [t.value for t in at.toast] == ["User created"]
    at.text_input(key="admin_rename_user_bob").set_value("robert")
    at = submit(at, "admin_rename_user_bob", "Rename")
    assert sorted(u.name for u in svc.list_users()) == sorted([user.name, "robert"])
    assert selection(at)["user"] == "robert" and at.query_params["user"] == "robert"
    ok(at.button(key="admin_delete_user").click().run())
    assert "robert" in [u.name for u in svc.list_users()]  # not before confirming
    ok(at.button(key="confirm_yes").click().run())
    assert [u.name for u in svc.list_users()] == [user.name]
    assert selection(at)["user"] is None and "user" not in at.query_params


def test_a_duplicate_user_name_is_refused_with_a_message(svc, store, user, tenant) -> None:
    at = open_admin(tenant, user)
    at.text_input(key="admin_new_user").set_value(user.name)
    at = at.button(key="FormSubmitter:admin_create_user-Create user").click().run()
    assert "already exists" in at.error[0].value
    assert len(svc.list_users()) == 1


def test_create_rename_delete_a_store(svc, store, user, tenant) -> None:
    svc.add_memory(store.id, "kept")
    at = open_admin(tenant, user)
    assert "test-hashing" in at.selectbox(key="admin_new_model").options  # in use in this tenant
    at.text_input(key="admin_new_store").set_value("notes")
    at.selectbox(key="admin_new_model").set_value("test-hashing")
    at = submit(at, "admin_create_store", "Create store")
    notes = svc.find_store(user.id, "notes")
    assert (notes.embedding_model, notes.embedding_dim) == ("test-hashing", 384)
    assert selection(at)["store"] == "notes"
    svc.add_memories(notes.id, [NewMemory("one"), NewMemory("two")])
    at.text_input(key="admin_rename_store_notes").set_value("journal")
    at = submit(at, "admin_rename_store_notes", "Rename")
    assert sorted(s.store_name for s in svc.list_stores(user.id)) == ["default", "journal"]
    assert selection(at)["store"] == "journal" and at.query_params["store"] == "journal"
    ok(at.button(key="admin_delete_store").click().run())
    assert "its 2 memories" in " ".join(m.value for m in at.markdown)  # the dialog says what goes
    ok(at.button(key="confirm_no").click().run())
    assert svc.find_store(user.id, "journal") is not None
    ok(at.button(key="admin_delete_store").click().run())
    ok(at.button(key="confirm_yes").click().run())
    assert [s.store_name for s in svc.list_stores(user.id)] == ["default"]
    assert svc.list_memories(store.id).total == 1  # the other store is untouched
    assert selection(at)["store"] is None and "store" not in at.query_params


def test_the_test_embedder_is_offered_only_when_in_use(svc, user, tenant) -> None:
    svc.get_or_create_store(user.id, "default", embedding_model="all-MiniLM-L6-v2")
    at = open_admin(tenant, user)
    options = at.selectbox(key="admin_new_model").options
    assert "test-hashing" not in options and options[0] == "all-MiniLM-L6-v2"


def test_changing_the_model_of_a_full_store_needs_the_reembed_choice(svc, store, user, tenant) -> None:
    mini = svc.get_or_create_store(user.id, "mini", embedding_model="all-MiniLM-L6-v2")
    vector = np.ones(384, dtype=np.float32)
    svc.add_memories(mini.id, [NewMemory("Prefers aisle seats", embedding=vector), NewMemory("Owns a cat", embedding=vector)])
    at = open_admin(tenant, user, store="mini")
    at.selectbox(key="admin_model").set_value("test-hashing").run()
    change = next(b for b in at.button if b.label == "Change the model")
    assert change.disabled  # refused while the store holds memories and re-embedding is not chosen
    assert at.checkbox(key="admin_reembed").label == "Re-embed all 2 memories with it"
    at.checkbox(key="admin_reembed").check().run()
    ok(next(b for b in at.button if b.label == "Change the model").click().run())
    changed = svc.get_store(mini.id)
    assert changed.embedding_model == "test-hashing"
    _, vectors = svc.store_embeddings(mini.id)
    assert not np.allclose(vectors[0], vectors[1])  # every memory has its new vector
    assert [t.value for t in at.toast] == ["Model changed, 2 memories re-embedded"]


def test_create_rename_delete_a_tenant(db, svc, store, user, tenant) -> None:
    at = open_admin(tenant, user)
    name = unique("new-tenant")
    at.text_input(key="admin_new_tenant").set_value(name)
    at = submit(at, "admin_create_tenant", "Create tenant")
    assert find_tenant(db, name).name == name
    assert selection(at) == {"tenant": name, "user": None, "store": None}
    assert "no users yet" in at.info[0].value
    at.text_input(key=f"admin_rename_tenant_{name}").set_value(name + "-renamed")
    at = submit(at, f"admin_rename_tenant_{name}", "Rename")
    assert selection(at)["tenant"] == name + "-renamed" and at.query_params["tenant"] == name + "-renamed"
    ok(at.button(key="admin_delete_tenant").click().run())
    assert name + "-renamed" in [t.name for t in list_tenants(db)]
    ok(at.button(key="confirm_yes").click().run())
    names = [t.name for t in list_tenants(db)]
    assert name + "-renamed" not in names and tenant.name in names
    assert selection(at)["tenant"] is None


def test_a_second_send_of_the_create_form_after_enter_repeats_the_success(db, svc, store, user, tenant) -> None:
    """Enter in the name field sends the form (which then clears); a click on Create right after
    sends it again, empty: no "name is empty" error, and one tenant."""
    at = open_admin(tenant, user)
    name = unique("entered")
    at.text_input(key="admin_new_tenant").set_value(name)
    at = submit(at, "admin_create_tenant", "Create tenant")  # what Enter does
    at = submit(at, "admin_create_tenant", "Create tenant")  # the click that follows, on the cleared form
    assert [t.name for t in list_tenants(db)].count(name) == 1
    assert [t.value for t in at.toast][-1] == f"Tenant {name} created"
    at.button(key="FormSubmitter:admin_create_user-Create user").click().run()  # an empty name on its own is still refused
    assert "name is empty" in at.error[0].value


def test_an_operator_creates_a_key_that_is_shown_once_and_revokes_it(db, svc, store, user, tenant) -> None:
    from core.admin import list_keys
    from core.errors import Unauthenticated
    from core.service import MemoryService

    at = open_admin(tenant, user)
    at.text_input(key="admin_key_name").set_value("support agent")
    at.checkbox(key="admin_key_read_only").check()
    at = submit(at, "admin_create_key", "Create key")
    (key,) = list_keys(db, tenant.id)
    (shown,) = [c.value for c in at.code]
    assert shown.startswith(key.prefix) and (key.name, key.read_only) == ("support agent", True)
    assert MemoryService.for_key(db, shown).principal.read_only  # the key works, read-only
    at.run()
    assert not at.code  # shown once: never again
    assert key.prefix + "…" in "\n".join(str(d.value) for d in at.dataframe)
    at = ok(at.selectbox(key="admin_revoke_choice").set_value(str(key.id)).run())
    ok(at.button(key="admin_revoke_key").click().run())
    assert list_keys(db, tenant.id)[0].revoked_at is None  # not before confirming
    ok(at.button(key="confirm_yes").click().run())
    assert list_keys(db, tenant.id)[0].revoked_at is not None
    with pytest.raises(Unauthenticated):
        MemoryService.for_key(db, shown)


def test_the_tenants_table_counts_each_tenants_users_stores_and_memories_and_with_many_only_when_asked(
    db, svc, store, user, tenant
) -> None:
    svc.get_or_create_store(user.id, "second", embedding_model="test-hashing")
    svc.add_memories(store.id, [NewMemory("one"), NewMemory("two"), NewMemory("three")])
    for _ in range(51 - len(list_tenants(db))):  # more tenants than the table counts unasked (admin.py's COUNTED_AT_ONCE)
        create_tenant(db, unique("many"))
    at = open_admin(tenant, user)
    rows = at.dataframe[0].value.set_index("tenant")
    assert rows.loc[tenant.name, ["users", "stores", "memories"]].isna().all()  # not counted yet: a transaction a tenant
    ok(at.toggle(key="admin_count_tenants").set_value(True).run())
    rows = at.dataframe[0].value.set_index("tenant")
    assert rows.loc[tenant.name, ["users", "stores", "memories"]].tolist() == [1, 2, 3]
    assert len(rows) == len(list_tenants(db))
