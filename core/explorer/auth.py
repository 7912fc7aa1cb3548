"""Who may open the explorer when it is reachable beyond localhost.

Two ways, chosen by configuration (docs/RELIABILITY.md shows both):
- OpenID Connect through Streamlit's built-in login: an `[auth]` section in .streamlit/secrets.toml.
- A shared password for demos: MEMEX_APP_PASSWORD in the environment or `app_password` in secrets.
With neither, the explorer is open, as suits `make run` on localhost. A secrets file that exists
but cannot be read stops the explorer: it never opens because its login configuration is broken.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Mapping
from typing import Any

import streamlit as st
from streamlit import config

from core.config import get_settings
from core.explorer.labels import markdown_literal

log = logging.getLogger("memex.explorer")


class UnreadableSecrets(Exception):
    """A secrets file is there but cannot be read: the login it may configure is unknown."""


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


def require_login() -> None:
    """Stop the page until the visitor has signed in, when a sign-in is configured; stop it for
    good when the configuration cannot be read."""
    try:
        secrets = read_secrets()
    except UnreadableSecrets as exc:
        st.title("Memex explorer")
        st.error(
            f"The explorer does not open: {markdown_literal(exc)}. Fix the file (TOML syntax) or remove it, then "
            "restart. The server log has the parser's message.",
            icon=":material/lock:",
        )
        st.stop()
    if secrets.get("auth"):
        if not st.user.is_logged_in:
            st.title("Memex explorer")
            st.write("Sign in to see the memories.")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        st.sidebar.caption("Signed in as " + markdown_literal(st.user.get("email") or st.user.get("name") or "user"))
        st.sidebar.button("Sign out", on_click=st.logout)
        return
    password = get_settings().app_password or secrets.get("app_password")
    if not password or st.session_state.get("authenticated"):
        return
    st.title("Memex explorer")
    with st.form("login"):
        attempt = st.text_input("Password", type="password")
        if st.form_submit_button("Enter", type="primary"):
            if hmac.compare_digest(attempt.encode(), str(password).encode()):
                st.session_state["authenticated"] = True
                st.rerun()
            st.error("Wrong password.")
    st.stop()
