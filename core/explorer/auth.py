"""Who may open the explorer when it is reachable beyond localhost.

Two ways, chosen by configuration (docs/RELIABILITY.md shows both):
- OpenID Connect through Streamlit's built-in login: an `[auth]` section in .streamlit/secrets.toml.
- A shared password for demos: MEMEX_APP_PASSWORD in the environment or `app_password` in secrets.
With neither, the explorer is open, as suits `make run` on localhost.
"""

from __future__ import annotations

import hmac

import streamlit as st

from core.config import get_settings
from core.labels import markdown_literal


def _secret(name: str) -> object | None:
    try:
        return st.secrets.get(name)
    except FileNotFoundError:  # no secrets.toml at all
        return None
    except Exception:  # noqa: BLE001 - a malformed secrets file must not reveal its content
        return None


def require_login() -> None:
    """Stop the page until the visitor has signed in, when a sign-in is configured."""
    if _secret("auth"):
        if not st.user.is_logged_in:
            st.title("Memex explorer")
            st.write("Sign in to see the memories.")
            st.button("Sign in", on_click=st.login, type="primary")
            st.stop()
        st.sidebar.caption("Signed in as " + markdown_literal(st.user.get("email") or st.user.get("name") or "user"))
        st.sidebar.button("Sign out", on_click=st.logout)
        return
    password = get_settings().app_password or _secret("app_password")
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
