"""Who is looking at the explorer, and whether they may at all.

Three ways, chosen by configuration (docs/RELIABILITY.md, section 4):
- OpenID Connect through Streamlit's login: an `[auth]` section in .streamlit/secrets.toml; the
  identity is the email the provider vouches for.
- Local accounts: `MEMEX_EXPLORER_LOGIN=accounts` (or `explorer_login = "accounts"` in the
  secrets); `memex analysts add EMAIL` makes them, with an argon2 password hash.
- Neither: the explorer is one local operator with every tenant, as suits `make run`, and only
  while it is bound to localhost; bound beyond it, it refuses to start and says how to configure a
  login. A secrets file that is there but cannot be read stops it: it never opens because its
  login configuration is broken.
Signed in, an analyst sees only the tenants PostgreSQL says they may open (core.service.access).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import streamlit as st
from streamlit import config

from core.config import get_settings
from core.db import Database
from core.errors import MemexError
from core.explorer.labels import markdown_literal
from core.service.access import Access

log = logging.getLogger("memex.explorer")
LOCAL_ADDRESSES = ("localhost", "127.0.0.1", "::1")
_SIGNED_IN = "analyst"


class UnreadableSecrets(Exception):
    """A secrets file is there but cannot be read: the login it may configure is unknown."""


@dataclass(frozen=True)
class Viewer:
    """Who is looking: an analyst's email, or None for the local operator of `make run`."""

    email: str | None
    operator: bool

    @property
    def local(self) -> bool:
        return self.email is None

    @property
    def name(self) -> str:
        return self.email or "local operator"


def read_secrets() -> Mapping[str, Any]:
    """The explorer's secrets; empty when there is no secrets file. UnreadableSecrets when a file
    is there and cannot be parsed or read (the message names the file, never its content):
    Streamlit reports both cases as "not found", and only the first may open the explorer."""
    try:
        return st.secrets.to_dict()
    except Exception as exc:  # noqa: BLE001 - whatever stops a present file from being read must stop the explorer
        present = [p for p in config.get_option("secrets.files") if os.path.exists(p)]
        if isinstance(exc, FileNotFoundError) and not present:
            return {}
        log.error("cannot read the secrets file %s: %s", ", ".join(present), exc)
        raise UnreadableSecrets(f"its secrets file {', '.join(present) or ''} cannot be read ({type(exc).__name__})") from None


def login_mode(secrets: Mapping[str, Any]) -> str | None:
    """oidc, accounts, or None (no login configured)."""
    if secrets.get("auth"):
        return "oidc"
    chosen = get_settings().explorer_login or str(secrets.get("explorer_login") or "")
    if chosen in ("", "none"):
        return None
    if chosen != "accounts":
        raise UnreadableSecrets(f"explorer_login must be accounts (or set an [auth] section for OpenID Connect), not {chosen!r}")
    return "accounts"


def bound_to_localhost() -> bool:
    return str(config.get_option("server.address") or "") in LOCAL_ADDRESSES


def _stop(message: str) -> NoReturn:
    st.title("Memex explorer")
    st.error(message, icon=":material/lock:")
    st.stop()


def sign_in(db: Database) -> Viewer:
    """The viewer of this session; stops the page until they have signed in, and for good when
    the configuration cannot be read or no login guards an explorer reachable beyond localhost."""
    try:
        mode = login_mode(read_secrets())
    except UnreadableSecrets as exc:
        _stop(
            f"The explorer does not open: {markdown_literal(exc)}. Fix the file (TOML syntax) or remove it, then restart. "
            "The server log has the parser's message."
        )
    if mode is None:
        if not bound_to_localhost():
            _stop(
                "The explorer does not open: it is reachable beyond this machine and no sign-in is configured. Set "
                "MEMEX_EXPLORER_LOGIN=accounts (and add analysts with `memex analysts add EMAIL`), or an [auth] section for "
                "OpenID Connect in .streamlit/secrets.toml, or bind it to localhost (--server.address localhost)."
            )
        return Viewer(None, operator=True)
    email = _oidc_email() if mode == "oidc" else _account_email(db)
    access = Access(db)
    st.sidebar.caption("Signed in as " + markdown_literal(email))
    st.sidebar.button("Sign out", on_click=st.logout if mode == "oidc" else _sign_out, icon=":material/logout:")
    return Viewer(email, access.is_operator(email))


def _oidc_email() -> str:
    if not st.user.is_logged_in:
        st.title("Memex explorer")
        st.write("Sign in to see the memories.")
        st.button("Sign in", on_click=st.login, type="primary")
        st.stop()
    email = st.user.get("email")
    if not email:
        _stop("Your sign-in gave no email address, which memex needs to know your tenants. Ask an operator.")
    return str(email).lower()


def _account_email(db: Database) -> str:
    if email := st.session_state.get(_SIGNED_IN):
        return str(email)
    st.title("Memex explorer")
    with st.form("login"):
        address = st.text_input("Email", key="login_email")
        password = st.text_input("Password", type="password", key="login_password")
        if st.form_submit_button("Sign in", type="primary"):
            try:
                st.session_state[_SIGNED_IN] = Access(db).sign_in(address, password)
            except MemexError as exc:
                st.error(markdown_literal(str(exc)[:1].upper() + str(exc)[1:]) + ".")
            else:
                st.rerun()
    st.stop()


def _sign_out() -> None:
    for key in list(st.session_state):
        del st.session_state[key]
