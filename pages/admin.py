"""Admin: tenants, their users and the users' memory stores (create, rename, delete, change the model).

Writes run in button callbacks, before the sidebar is drawn, so the sidebar follows at once
what was created, renamed or deleted."""

from collections.abc import Callable
from dataclasses import astuple
from functools import partial
from typing import TypeVar

import pandas as pd
import streamlit as st

from core import MemoryService, admin
from core.config import get_settings
from core.embeddings import MODELS
from core.errors import Conflict, NotFound
from core.explorer.auth import Viewer
from core.explorer.keys import KeyBook, keys_section
from core.explorer.labels import count
from core.explorer.state import database, enter_through_app, guard, service_for, set_params
from core.explorer.widgets import ask, confirm_pending, data_version, date_columns, done, flash, show_flash
from core.models import MemoryStore, Tenant, TenantFigures, User

enter_through_app()  # this page reads no scope, but a deep link to it must still run app.py first
db = database()
T = TypeVar("T")
COUNTED_AT_ONCE = 50  # tenants whose users, stores and memories the Tenants table counts without being asked


def selected(level: str, named: dict[str, T]) -> T | None:
    """The one of `named` the sidebar points at for this level, if any."""
    name = st.session_state.get(level)
    return named[name] if name in named else None


def figures_of(viewer: Viewer, tenant: Tenant) -> TenantFigures | None:
    """A tenant's users, stores and memories, counted in its own scope (a transaction, and for a
    signed-in operator one more, the opening checked); None for a tenant deleted since the list."""
    try:
        return service_for(viewer, tenant.id).tenant_figures()
    except NotFound:
        return None


def follow(**levels: str | None) -> None:
    """Point the sidebar at these names (None clears the level). Only valid inside a callback."""
    for level, name in levels.items():
        if name is None:
            st.session_state.pop(level, None)
            st.session_state.pop(f"pick_{level}", None)
        else:
            st.session_state[level] = st.session_state[f"pick_{level}"] = name
    set_params(**levels)


def change(action: Callable[[], object], message: str, **levels: str | None) -> str:
    """Run a write and point the sidebar at what it made; returns what to tell the user."""
    action()
    follow(**levels)
    return message


def act(what: str, action: Callable[[], object], message: str, **levels: str | None) -> bool:
    """Callback of a create or rename: the write, then the sidebar follows and the user is told.
    False when it failed (guard said why)."""
    with guard(f"Could not {what}"):
        flash(change(action, message, **levels))
        return True
    return False


def create_once(kind: str, create: Callable[[str], bool]) -> None:
    """Callback of a create form. Enter in the name field sends the form, which then clears; a
    click on Create right after sends it again, empty: that second send only repeats that the
    first one worked, instead of reporting an empty name."""
    name = st.session_state.get(f"admin_new_{kind}", "")
    last, version = st.session_state.get(f"admin_created_{kind}", (None, None))
    if not name.strip() and last is not None and version == data_version():
        flash(f"{kind.capitalize()} {last} created")
        return
    if create(name):
        st.session_state[f"admin_created_{kind}"] = (name.strip(), data_version())


def crud(
    kind: str,
    current: str | None,
    create: Callable[[str], bool],
    rename: Callable[[str, str], object],
    delete_detail: str,
    delete: Callable[[str], str],
    extra: Callable[[], object] | None = None,
) -> None:
    """Create / rename the current one / delete the current one (after confirmation), side by side.
    `create` gets the new name, `rename` the current name and the new one, `delete` the current name."""
    c = st.columns(3)
    with c[0].form(f"admin_create_{kind}", border=True, clear_on_submit=True):
        st.text_input(f"New {kind} name", key=f"admin_new_{kind}")
        if extra:
            extra()
        st.form_submit_button(f"Create {kind}", icon=":material/add:", on_click=partial(create_once, kind, create))
    if current is None:
        return

    def renamed() -> None:
        rename(current, st.session_state[f"admin_rename_{kind}_{current}"])

    with c[1].form(f"admin_rename_{kind}_{current}", border=True):
        st.text_input(f"Rename the selected {kind} to", value=current, key=f"admin_rename_{kind}_{current}")
        st.form_submit_button("Rename", icon=":material/edit:", on_click=renamed)
    with c[2].container(border=True):
        st.write(f"Delete the selected {kind}: {delete_detail}")
        if st.button(f"Delete {kind}", icon=":material/delete:", key=f"admin_delete_{kind}"):
            ask(f"Delete this {kind}", f"Deletes {delete_detail} This cannot be undone.", partial(delete, current), subject=current)


st.title("Admin")
st.caption(
    "Tenants, users and memory stores. The sidebar picks the tenant, user and store this page acts on; "
    "deleting asks first and removes everything under what is deleted."
)
show_flash()

tenant = user = store = None
chosen: MemoryService | None = None  # the selected tenant's service
tenant_stores: list[MemoryStore] = []
viewer: Viewer = st.session_state["viewer"]
own: MemoryService | None = st.session_state.get("tenant_service")
if not viewer.operator:  # a tenant's admin: that tenant's users, stores and keys, nothing of the others
    if own is None or own.role != "admin":
        st.info("Only operators and a tenant's admins manage users, stores and keys.", icon=":material/lock:")
        st.stop()
    with guard("Could not read the tenant"):
        tenant, chosen, tenant_stores = own.get_tenant(), own, own.list_stores()
elif not db.has_owner:
    st.error(
        "Managing tenants needs the schema owner's connection, which this explorer was started without: "
        "set MEMEX_ADMIN_DATABASE_URL for it, or use `memex tenants` and `memex keys`.",
        icon=":material/key_off:",
    )
    st.stop()
else:
    with guard("Could not read the tenants"):
        tenants = {t.name: t for t in admin.list_tenants(db)}
        st.subheader("Tenants")
        # row-level security shows no transaction two tenants: each is counted in its own (~1 ms
        # each), so with many tenants only when asked
        counted = len(tenants) <= COUNTED_AT_ONCE or st.toggle(
            f"Count the users, stores and memories of all {len(tenants):,} tenants",
            key="admin_count_tenants",
            help="Each tenant is counted in its own transaction, under its row-level security: about a millisecond a tenant.",
        )
        figures = {n: figures_of(viewer, t) if counted else None for n, t in tenants.items()}
        st.dataframe(
            pd.DataFrame(
                [(n, *(astuple(f) if (f := figures[n]) else (None, None, None)), t.created_at) for n, t in tenants.items()],
                columns=["tenant", "users", "stores", "memories", "created"],
            ),
            hide_index=True,
            placeholder="–",
            column_config=date_columns("created"),
        )
        picked = selected("tenant", tenants)
        picked_svc = service_for(viewer, picked.id) if picked else None
        tenant_stores = picked_svc.list_stores() if picked_svc else []
        tenant, chosen = picked, picked_svc  # only once its stores are read: what follows needs all three
        crud(
            "tenant",
            tenant.name if tenant else None,
            lambda new: act(
                "create the tenant", lambda: admin.create_tenant(db, new), "Tenant created", tenant=new.strip(), user=None, store=None
            ),
            lambda old, new: act(
                "rename the tenant", lambda: admin.rename_tenant(db, tenants[old].id, new), "Tenant renamed", tenant=new.strip()
            ),
            f"all its users, {count(len(tenant_stores), 'store')} and {count(sum(s.total_memories for s in tenant_stores), 'memory')}.",
            lambda old: change(lambda: admin.delete_tenant(db, tenants[old].id), "Tenant deleted", tenant=None, user=None, store=None),
        )

if tenant is not None and chosen is not None:
    svc = chosen
    with guard("Could not read the users"):
        st.subheader("Users of the selected tenant")
        st.text(tenant.name)
        users = {u.name: u for u in svc.list_users()}
        per_user = {u: [s for s in tenant_stores if s.user_id == users[u].id] for u in users}
        st.dataframe(
            pd.DataFrame(
                [(u, len(per_user[u]), sum(s.total_memories for s in per_user[u]), users[u].created_at) for u in users],
                columns=["user", "stores", "memories", "created"],
            ),
            hide_index=True,
            column_config=date_columns("created"),
        )
        user = selected("user", users)
        user_stores = per_user[user.name] if user else []
        crud(
            "user",
            user.name if user else None,
            lambda new: act("create the user", lambda: svc.create_user(new), "User created", user=new.strip(), store=None),
            lambda old, new: act("rename the user", lambda: svc.rename_user(users[old].id, new), "User renamed", user=new.strip()),
            f"their {count(len(user_stores), 'store')} and {count(sum(s.total_memories for s in user_stores), 'memory')}.",
            lambda old: change(lambda: svc.delete_user(users[old].id), "User deleted", user=None, store=None),
        )
        if not users:
            st.info("This tenant has no users yet: create the first one above.")
        book = KeyBook.of_operator(db, tenant.id) if viewer.local else KeyBook.of_tenant_admin(svc)
        keys_section(book, users, tenant_stores)

    if user is not None:
        with guard("Could not read the stores"):
            st.subheader("Stores of the selected user")
            st.text(user.name)
            stores = {s.store_name: s for s in per_user[user.name]}
            st.dataframe(
                pd.DataFrame(
                    [
                        (s.store_name, s.embedding_model, s.embedding_dim, s.total_memories, s.last_accessed, s.created_at)
                        for s in stores.values()
                    ],
                    columns=["store", "model", "dimensions", "memories", "last accessed", "created"],
                ),
                hide_index=True,
                placeholder="never",
                column_config=date_columns("last accessed", "created"),
            )
            in_use = {s.embedding_model for s in tenant_stores}
            models = sorted(
                (m for m in MODELS if m != "test-hashing" or m in in_use), key=lambda m: (m != get_settings().default_embedding_model, m)
            )
            store = selected("store", stores)

            def create_store(owner: User, new: str) -> bool:
                def make() -> None:
                    if svc.find_store(owner.id, new.strip()) is not None:
                        raise Conflict(f"this user already has a store named {new.strip()!r}")
                    svc.get_or_create_store(owner.id, new, embedding_model=st.session_state["admin_new_model"])

                return act("create the store", make, "Store created", store=new.strip())

            crud(
                "store",
                store.store_name if store else None,
                partial(create_store, user),
                lambda old, new: act("rename the store", lambda: svc.rename_store(stores[old].id, new), "Store renamed", store=new.strip()),
                f"its {count(store.total_memories if store else 0, 'memory')} and their relationships.",
                lambda old: change(lambda: svc.delete_store(stores[old].id), "Store deleted", store=None),
                extra=lambda: st.selectbox("Embedding model", models, key="admin_new_model"),
            )
            if not stores:
                st.info("This user has no store yet: create one above.")

            if store is not None:
                st.subheader("Embedding model of the selected store")
                c = st.columns([2, 2, 1])
                model = c[0].selectbox("New model", [m for m in models if m != store.embedding_model], key="admin_model")
                held = store.total_memories
                reembed = held > 0 and c[1].checkbox(
                    f"Re-embed all {count(held, 'memory')} with it",
                    key="admin_reembed",
                    help="A store's vectors all come from one model, so every memory is embedded again.",
                )
                if c[2].button("Change the model", icon=":material/sync:", disabled=model is None or (held > 0 and not reembed)):
                    bar = st.progress(0.0, text="Re-embedding…")
                    with guard("Could not change the model"):
                        svc.set_store_model(
                            store.id,
                            model,
                            reembed=held > 0,
                            progress=lambda done, total: bar.progress(done / total, text=f"{done} of {total} memories"),
                        )
                        done(f"Model changed, {count(held, 'memory')} re-embedded")
                if held > 0 and not reembed:
                    st.caption("The store holds memories: tick the box to re-embed them all, or the change is refused.")

confirm_pending()
