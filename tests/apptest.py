"""Helpers for the explorer's AppTests: open a page of app.py with a scope in the URL."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_page(page: str, timeout: float = 120, **params: str) -> AppTest:
    """Run app.py on `pages/<page>.py` with these URL query parameters (tenant, user, store, ...)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page != "overview":
        at.switch_page(f"pages/{page}.py")
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
    return at


def texts(at: AppTest) -> str:
    """Everything the page shows as text, for assertions."""
    parts = [e.value for e in at.text] + [e.value for e in at.markdown] + [e.value for e in at.caption]
    parts += [str(e.value) for e in at.metric] + [e.value for e in at.title] + [e.value for e in at.subheader]
    return "\n".join(str(p) for p in parts)
