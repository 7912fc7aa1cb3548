"""The explorer's shell and Overview page, through Streamlit's AppTest."""

from __future__ import annotations

import streamlit as st

from core import NewMemory
from core.admin import get_tenant
from tests.apptest import open_page


def test_sidebar_scope_drives_the_data_and_shows_the_isolation_in_force(svc, store, user, tenant) -> None:
    svc.add_memories(store.id, [NewMemory("Visible memory", memory_type="preference"), NewMemory("Second", archived=True)])
    at = open_page("overview", tenant=tenant.name, user=user.name, store="default")
    assert not at.exception and not at.error
    assert [s.value for s in at.sidebar.selectbox] == [tenant.name, user.name, "default"]
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Memories"], metrics["Live"], metrics["Expired"], metrics["Archived"]) == ("2", "1", "0", "1")  # they add up
    isolation = at.sidebar.text[0].value
    assert "memex_app" in isolation and str(tenant.id) in isolation
    assert at.query_params["tenant"] == tenant.name


def test_a_link_without_a_store_opens_the_users_default_store(svc, store, user, tenant) -> None:
    """The store agents write to unless they name one, even when another store sorts before it."""
    svc.get_or_create_store(user.id, "archive", embedding_model=store.embedding_model)
    at = open_page("overview", tenant=tenant.name, user=user.name)
    assert not at.exception
    assert at.sidebar.selectbox[2].value == "default" and at.sidebar.selectbox[2].options == ["default", "archive"]


def test_switching_tenant_never_shows_the_other_tenants_memories(db, svc, store, user, tenant, other) -> None:
    svc.add_memory(store.id, "Alpha tenant secret")
    other_svc, other_store = other
    other_user = other_svc.list_users()[0]
    at = open_page("overview", tenant=tenant.name, user=user.name, store="default")
    shown = [str(v) for df in at.dataframe for v in df.value["content"]]
    assert shown == ["Alpha tenant secret"]
    at = open_page("overview", tenant=get_tenant(db, other_svc.tenant_id).name, user=other_user.name, store="default")
    shown = [str(v) for df in at.dataframe for v in df.value["content"]]
    assert shown == ["The launch code of the other tenant is 0000"]
    assert "Alpha tenant secret" not in str([df.value for df in at.dataframe])


def test_the_first_screen_says_what_memex_is_and_counts_every_tenant(svc, store, user, tenant, other) -> None:
    st.cache_data.clear()  # the totals are kept a minute: an earlier test's, counted before `other` existed, would show
    at = open_page("overview", tenant=tenant.name, user=user.name, store="default")
    assert not at.exception and not at.error
    assert at.title[0].value == "Memex explorer"
    assert at.markdown[0].value.startswith("**memex is long-term memory for AI agents**")
    metrics = {m.label: m.value for m in at.metric}
    assert int(metrics["Tenants"]) >= 2 and int(metrics["Memories in all"].replace(",", "")) >= 1  # the other tenant's memory counts
    assert at.sidebar.expander[0].label == "Isolation details"  # role and tenant id behind it, the tenant's name beside its id
    assert f"tenant     {tenant.name}" in at.sidebar.text[0].value
