"""First run on an empty database: the explorer offers the demo data and loads it in one click."""

from __future__ import annotations

import pytest
import streamlit as st
from sqlalchemy import create_engine, text
from streamlit.testing.v1 import AppTest

from core.admin import list_tenants
from core.db import APP_ROLE, OWNER_ROLE, Database
from core.explorer import state
from tests.apptest import open_page

EMPTY = "memex_first_run"


@pytest.fixture
def empty_database(db: Database, monkeypatch):
    """A freshly migrated database with no tenant, in the test cluster, served to the explorer."""
    superuser = create_engine(db.embedded.url("postgres", "postgres"), isolation_level="AUTOCOMMIT")
    with superuser.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {EMPTY} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {EMPTY} OWNER {OWNER_ROLE}"))
    with create_engine(db.embedded.url("postgres", EMPTY), isolation_level="AUTOCOMMIT").connect() as conn:
        conn.execute(text("CREATE EXTENSION vector"))
    fresh = Database(db.embedded.url(APP_ROLE, EMPTY), db.embedded.url(OWNER_ROLE, EMPTY), embedded=db.embedded)
    fresh.migrate()
    monkeypatch.setattr(state, "get_database", lambda: fresh)
    st.cache_resource.clear()
    yield fresh
    st.cache_resource.clear()
    fresh.dispose()
    with superuser.connect() as conn:
        conn.execute(text(f"DROP DATABASE {EMPTY} WITH (FORCE)"))
    superuser.dispose()


def offer_script() -> None:
    from core.explorer import state

    state.offer_demo(state.database())


def test_an_empty_database_opens_on_the_offer_of_the_demo(empty_database) -> None:
    at = open_page("overview")
    assert not at.exception
    assert "The database is empty" in at.info[0].value
    assert [b.label for b in at.button] == ["Load the demo data"]
    assert at.sidebar.selectbox.len == 0  # no scope to pick yet


def test_one_click_loads_the_demo_into_the_empty_database(empty_database) -> None:
    # AppTest reruns a multipage app's page without its entry script after the first run, so the
    # click (a widget of app.py's first run) is driven on the offer itself.
    at = AppTest.from_function(offer_script, default_timeout=600)  # the demo's weeks of searches are real searches
    at.run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    assert {t.name for t in list_tenants(empty_database)} == {"Acme Travel", "Globex Engineering", "Northwind Health"}
