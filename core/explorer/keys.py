"""The Admin page's API keys of a tenant: list them (prefixes, scopes, use; never a secret),
create one (shown once), revoke one (after confirmation). An operator's go through the owner's
connection (core.admin); a tenant admin's through the service, which PostgreSQL confines to
their tenant (KeyBook says which)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from uuid import UUID

import pandas as pd
import streamlit as st

from core import admin
from core.db import Database
from core.explorer.labels import count
from core.explorer.state import guard
from core.explorer.widgets import ask, flash
from core.models import ApiKey, MemoryStore, User
from core.service import MemoryService

_SHOWN = "admin_new_key"


def _state(key: ApiKey, now: datetime) -> str:
    if key.revoked_at:
        return "revoked"
    return "expired" if key.expires_at and key.expires_at <= now else "active"


@dataclass(frozen=True)
class KeyBook:
    """How this page lists, creates (returning the secret) and revokes one tenant's keys."""

    list: Callable[[], list[ApiKey]]
    create: Callable[..., str]
    revoke: Callable[[str], object]

    @classmethod
    def of_operator(cls, db: Database, tenant_id: UUID) -> KeyBook:
        return cls(
            lambda: admin.list_keys(db, tenant_id),
            lambda **values: admin.create_key(db, tenant_id, **values)[1],
            partial(admin.revoke_key, db),
        )

    @classmethod
    def of_tenant_admin(cls, svc: MemoryService) -> KeyBook:
        return cls(svc.tenant_keys, lambda **values: svc.create_tenant_key(**values)[1], svc.revoke_tenant_key)


def _revoke(book: KeyBook, key_id: str) -> str:
    book.revoke(key_id)
    return "Key revoked: requests with it are refused from now on"


def keys_section(book: KeyBook, users: dict[str, User], stores: list[MemoryStore]) -> None:
    st.subheader("API keys of the selected tenant")
    st.caption(
        "Agents reach memex over HTTP or MCP with a key; the key decides the tenant (PostgreSQL checks it on "
        "every request) and may be bound to one user or store, read-only, or expiring."
    )
    if shown := st.session_state.pop(_SHOWN, None):
        st.success("New key created. Copy it now: it is shown only once and memex keeps only its hash.", icon=":material/key:")
        st.code(shown, language=None)
    with guard("Could not read the keys"):
        now = datetime.now(UTC)
        keys = book.list()
        names = {u.id: u.name for u in users.values()}
        store_names = {s.id: f"{names.get(s.user_id, '?')} / {s.store_name}" for s in stores}
        if keys:
            st.dataframe(
                pd.DataFrame(
                    {
                        "key": [f"{k.prefix}…" for k in keys],
                        "name": [k.name for k in keys],
                        "scope": [
                            store_names.get(k.store_id, "") if k.store_id else names.get(k.user_id, "") if k.user_id else "whole tenant"
                            for k in keys
                        ],
                        "access": ["read-only" if k.read_only else "read and write" for k in keys],
                        "state": [_state(k, now) for k in keys],
                        "created": [k.created_at for k in keys],
                        "last used": [k.last_used_at for k in keys],
                        "expires": [k.expires_at for k in keys],
                    }
                ),
                hide_index=True,
                placeholder="never",  # the only empty cells: a key never used, or without an expiry
                column_config={c: st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm") for c in ("created", "last used", "expires")},
            )
        else:
            st.info("This tenant has no API key yet.")
    left, right = st.columns(2)
    with left.form("admin_create_key", border=True):
        name = st.text_input("Name of the new key", placeholder="e.g. support agent", key="admin_key_name")
        user = st.selectbox("Bound to user", [None, *users], format_func=lambda u: u or "any user of the tenant", key="admin_key_user")
        store = st.selectbox(
            "Bound to store",
            [None, *[s.id for s in stores]],
            format_func=lambda s: "any store of that scope" if s is None else store_names[s],
            key="admin_key_store",
        )
        read_only = st.checkbox("Read-only (search and read, never write)", key="admin_key_read_only")
        days = st.number_input("Expires after (days, 0 for never)", 0, 3650, 0, key="admin_key_days")
        if st.form_submit_button("Create key", icon=":material/key:", type="primary"):
            with guard("Could not create the key"):
                chosen = next((s for s in stores if s.id == store), None)
                secret = book.create(
                    name=name.strip(),
                    read_only=read_only,
                    expires_in_days=days or None,
                    user_id=chosen.user_id if chosen else (users[user].id if user else None),
                    store_id=chosen.id if chosen else None,
                )
                st.session_state[_SHOWN] = secret
                flash("Key created")
                st.rerun()
    with right.container(border=True):
        active = [k for k in keys if _state(k, now) == "active"] if keys else []
        st.write(f"Revoke a key: {count(len(active), 'active key')}.")
        chosen_key = st.selectbox(
            "Key",
            [str(k.id) for k in active],
            format_func=lambda i: next(f"{k.prefix}… {k.name}".strip() for k in active if str(k.id) == i),
            index=None,
            placeholder="Pick a key",
            key="admin_revoke_choice",
        )
        if st.button("Revoke", icon=":material/block:", disabled=chosen_key is None, key="admin_revoke_key") and chosen_key:
            ask(
                "Revoke this key",
                "Agents using it are refused from their next request. This cannot be undone.",
                partial(_revoke, book, chosen_key),
                subject=chosen_key,
            )
