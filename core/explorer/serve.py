"""`python -m core.explorer.serve [streamlit options]`: the explorer's server (`make run`).

It is `streamlit run app.py`, plus a thread that, while the server starts, imports what the pages
import and opens the database. Streamlit runs app.py only when a browser connects, so without it
the first page after a server start paid a few seconds of imports (pandas, plotly, the service:
docs/BENCHMARKS.md). The local model is not loaded here (the first search loads it): loading it
held the interpreter while the first page waited.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from pathlib import Path

# What app.py and the pages import that takes time (streamlit itself is the server's).
PRELOAD = (
    "pandas",
    "plotly.express",
    "plotly.graph_objects",
    "networkx",
    "core.explorer.auth",
    "core.explorer.state",
    "core.explorer.startup",
    "core.explorer.widgets",
    "core.explorer.debugger",
    "core.explorer.retrievals",
)

log = logging.getLogger(__name__)


def preload() -> None:
    """Import the pages' modules and open the database."""
    try:
        for name in PRELOAD:
            importlib.import_module(name)
        from core.db import get_database

        get_database()
    except Exception:  # the pages do the same work again, and say what fails
        log.exception("preloading the explorer failed")


def main(argv: list[str]) -> None:
    """`streamlit run app.py` with these options (as `python -m streamlit` runs it), preloading.

    Streamlit is imported before the thread starts: its import configures plotly's theme, and
    plotly looks for pandas in sys.modules, where the thread's import of pandas, half done, made
    the server fail at start now and then ("partially initialized module 'pandas'")."""
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web import cli

    from core.db import exit_normally_on_sigterm

    # app.py names the pages (st.navigation): without this, the `pages/` directory made a fresh
    # server run a page's URL alone first, then again through app.py (state.enter_through_app)
    PagesManager.uses_pages_directory = False

    # Streamlit's own SIGTERM handler (a normal exit) comes later; before it, the preload thread
    # may already hold the embedded server, and only the main thread can set a handler
    exit_normally_on_sigterm()
    threading.Thread(target=preload, name="memex-preload", daemon=True).start()
    sys.argv = ["streamlit", "run", str(Path(__file__).resolve().parents[2] / "app.py"), *argv]
    cli.main(prog_name="streamlit")


if __name__ == "__main__":
    main(sys.argv[1:])
