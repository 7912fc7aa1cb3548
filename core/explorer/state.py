"""The explorer's shared state: the database, the tenant/user/store in force, the URL.

The selection lives in st.session_state and is mirrored into the URL's query parameters on
every run, so a copied link reproduces the view (tenant, user, store and the page's own state).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import streamlit as st

from core import admin
from core.db import Database, get_database
from core.demo import load_demo
from core.errors import MemexError, Unavailable
from core.explorer.auth import Viewer
from core.explorer.labels import markdown_literal
from core.models import MemoryStore, Tenant, User
from core.service import MemoryService
from core.service.access import Access

log = logging.getLogger("memex.explorer")


@dataclass(frozen=True)
class Scope:
    """What the sidebar selected. `svc` runs every query as memex_app inside `tenant`."""

    svc: MemoryService
    tenant: Tenant
    user: User
    store: MemoryStore


@st.cache_resource(show_spinner="Starting the database…")
def database() -> Database:
    return get_database()


def failure_message(exc: Exception, action: str = "") -> str:
    """One short sentence for what went wrong, with what to do; the log keeps the traceback."""
    if isinstance(exc, Unavailable):
        log.warning("database unreachable\n%s", traceback.format_exc())
        return "The database is not reachable right now. It may be restarting: wait a moment and reload the page."
    if isinstance(exc, MemexError):  # messages quote what the user typed: shown literally
        message = markdown_literal(exc)
        return f"{action}: {message}" if action else message
    log.error("unexpected error\n%s", traceback.format_exc())
    return f"Something unexpected failed ({type(exc).__name__}). The server log has the details; reloading the page usually helps."


@contextmanager
def guard(action: str = "") -> Iterator[None]:
    """Show what went wrong as one short message with what to do, never a traceback."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the page must survive
        icon = ":material/cloud_off:" if isinstance(exc, Unavailable) else ":material/error:"
        st.error(failure_message(exc, action), icon=icon)


def param(name: str, default: str | None = None) -> str | None:
    """A page's state from the URL (the first value) or the default."""
    return st.query_params.get(name, default)


def url_number(name: str, default: float, low: float, high: float, cast: type = float) -> Any:
    """A number of the page's state from the URL, kept inside [low, high]; the default when the
    link holds none or garbage."""
    try:
        return cast(min(high, max(low, float(param(name) or default))))
    except ValueError:
        return default


def set_params(**values: Any) -> None:
    """Write page state to the URL; None removes a key."""
    for key, value in values.items():
        if value is None or value == "":
            st.query_params.pop(key, None)
        else:
            st.query_params[key] = str(value)


def _pick(label: str, options: list[str], key: str, help: str | None = None) -> str:
    """A selectbox (of at least one option) whose value starts from the URL and is written back to it.

    The name last chosen is remembered while another tenant (or user) lacks it: switching to a
    tenant with a user of that name selects that user again, and so does coming back after a tenant
    without one. The sidebar says when the remembered name is missing here."""
    wanted = st.session_state.get(key) or param(key)
    index = options.index(wanted) if wanted in options else 0
    choice = st.sidebar.selectbox(label, options, index=index, key=f"pick_{key}", help=help)
    choice = choice or options[0]
    if wanted in options or wanted is None or choice != options[index]:  # found, or the user chose another
        st.session_state[key] = choice
    else:
        st.sidebar.caption(markdown_literal(f"No {label.lower()} named {wanted} here: showing {choice}."))
    set_params(**{key: choice})
    return choice


def offer_demo(db: Database) -> None:
    st.title("Memex explorer")
    st.info(
        "The database is empty. Load the demo data set to look around: three tenants of assistant memories, "
        "with users, stores, relationships, expired and archived memories, and weeks of logged searches, edits and evaluation runs.",
        icon=":material/database:",
    )
    if st.button("Load the demo data", type="primary", icon=":material/download:"):
        bar = st.progress(0.0, text="Embedding the demo memories with the local model…")
        with guard("Loading the demo failed"):
            report = load_demo(db, progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total} memories"))
            st.success(
                f"Loaded {report.memories} memories, {report.relationships} relationships and {report.searches} logged searches"
                f" for {report.tenants} tenants."
            )
            st.rerun()
    st.stop()


def sidebar_scope(viewer: Viewer) -> Scope | None:
    """Tenant, then user, then store; None when the chosen user has no store yet. The tenants
    offered are those PostgreSQL lets this viewer open (every tenant for the local operator of
    an explorer without sign-in); a link naming any other shows nothing of it."""
    db = database()
    st.session_state["tenant_service"] = None
    tenants = open_tenants(viewer)
    if not tenants:
        if viewer.local:
            offer_demo(db)
        else:
            st.title("Memex explorer")
            st.info(
                "You may not open any tenant yet. Ask an operator to grant you one "
                "(`memex analysts grant EMAIL --tenant T --role viewer`).",
                icon=":material/lock:",
            )
            st.stop()
    st.sidebar.header("Scope")
    wanted = st.session_state.get("tenant") or param("tenant")
    if wanted is not None and wanted not in tenants:  # not even its name is repeated: it may exist, and not be theirs
        st.session_state.pop("tenant", None)
        st.query_params.pop("tenant", None)
        st.sidebar.caption("That link's tenant is not one you may open: showing one of yours.")
    svc = service_for(viewer, tenants[_pick("Tenant", list(tenants), "tenant")])
    st.session_state["tenant_service"] = svc  # the Admin page's, even before the tenant has a user
    tenant = svc.get_tenant()
    users = {u.name: u for u in svc.list_users()}
    if not users:
        st.sidebar.warning("This tenant has no users yet" + (": add one on the Admin page." if svc.may("manage") else "."))
        return None
    user = users[_pick("User", list(users), "user")]
    stores = {s.store_name: s for s in svc.list_stores(user.id)}
    if not stores:
        st.sidebar.warning("This user has no store yet" + (": create one on the Admin page." if svc.may("manage") else "."))
        return None
    # "default" first: the store agents write to unless they name one, and the one a link without a store means
    store = stores[_pick("Store", sorted(stores, key=lambda name: name != "default"), "store")]
    if svc.role is not None:
        st.sidebar.caption(f"Your role here: {svc.role} ({ROLE_MEANS[svc.role]})")
    isolation_panel(svc, store, tenant)
    return Scope(svc, tenant, user, store)


ROLE_MEANS = {
    "viewer": "you may look, not change",
    "editor": "you may add, edit, curate and import",
    "admin": "you also manage its users, stores and keys",
}


def open_tenants(viewer: Viewer) -> dict[str, UUID]:
    """The tenants this viewer may open, by name: PostgreSQL's answer for an analyst, every
    tenant for the local operator."""
    if viewer.email is None:
        return {t.name: t.id for t in admin.list_tenants(database())}
    return {m.tenant_name: m.tenant_id for m in Access(database()).tenants(viewer.email)}


def service_for(viewer: Viewer, tenant_id: UUID) -> MemoryService:
    """A tenant's service as this viewer may use it: an analyst's asks PostgreSQL on every
    transaction (a revoked membership applies at once) and signs their changes."""
    if viewer.email is None:
        return MemoryService(database(), tenant_id, actor="explorer", interface="explorer")
    return MemoryService.for_analyst(database(), viewer.email, tenant_id)


def may_administer(viewer: Viewer) -> bool:
    """Whether the Admin page is offered: operators manage every tenant, a tenant's admins its
    users, stores and keys."""
    svc = st.session_state.get("tenant_service")
    return viewer.operator or (svc is not None and svc.role == "admin")


def isolation_panel(svc: MemoryService, store: MemoryStore, tenant: Tenant) -> None:
    """The store in plain words, and behind an expander what PostgreSQL itself reports for this
    page's queries: the role they run as and the tenant set for them."""
    st.sidebar.caption(
        markdown_literal(f"{store.total_memories:,} memories · embedded with {store.embedding_model} ({store.embedding_dim} dimensions)")
    )
    with st.sidebar.expander("Isolation details", icon=":material/shield:"):
        role, tenant_setting = svc.session_identity()
        st.caption(
            "Every query of this page runs as a database role that row-level security confines to one tenant; "
            "this is what PostgreSQL reports for them."
        )
        name = tenant.name if tenant_setting == str(tenant.id) else "(not the selected tenant!)"
        st.text(f"tenant     {name}\ntenant id  {tenant_setting}\nrole       {role}")


def enter_through_app() -> None:
    """Run app.py first when a page's URL is the first request of a fresh server.

    While a `pages/` directory exists, Streamlit (1.67) serves the first request of a process in
    its legacy mode: a page's URL runs that page file alone, without app.py's navigation and
    sidebar (app.py has not run, so there is no scope in the session). Leaving legacy mode and
    running again makes app.py draw the sidebar and then run the requested page, URL included.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if "scope" not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


def current_scope() -> Scope:
    """The scope the sidebar selected, for a page; stops the page with a hint when there is none."""
    enter_through_app()
    scope = st.session_state.get("scope")
    if scope is None:
        st.info("Pick a tenant, user and store in the sidebar (or create them on the Admin page).")
        st.stop()
    return scope
