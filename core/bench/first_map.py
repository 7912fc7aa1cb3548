"""`python -m core.bench.first_map TENANT USER STORE`: the Embedding map page opened as the first
page of a new explorer process (AppTest of app.py, in process, no browser), as after a server
start. Prints one JSON object: seconds from the process's start to the first render, what it drew
(a kept map, a UMAP fit, or a preview while UMAP loads), and when the UMAP map was on the page.
`memex bench --explorer` runs it in fresh processes on the benchmark database."""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import json  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402


def main(tenant: str, user: str, store: str) -> dict[str, object]:
    from streamlit.testing.v1 import AppTest

    app = str(Path(__file__).resolve().parents[2] / "app.py")
    params = {"tenant": tenant, "user": user, "store": store}
    at = AppTest.from_file(app, default_timeout=900)
    for key, value in params.items():
        at.query_params[key] = value
    at.switch_page("pages/map.py")  # the map is the first page this process runs
    for key, value in params.items():
        at.query_params[key] = value
    before = time.perf_counter()
    at.run()
    first = time.perf_counter() - STARTED
    page = time.perf_counter() - before
    shown = " ".join(str(e.value) for e in list(at.caption) + list(at.info))
    drew = "kept map" if "Showing the map computed" in shown else "preview" if "linear preview" in shown else "fitted now"
    out: dict[str, object] = {
        "first_render_s": round(first, 2),  # from the process's start: Python, streamlit, memex imported
        "page_run_s": round(page, 2),  # app.py and the page, as after a server start (streamlit already up)
        "drew": drew,
        "errors": [str(e.value)[:200] for e in at.exception],
    }
    if drew == "preview":  # what the page's progress fragment waits for, then draws
        for thread in threading.enumerate():
            if thread.name.startswith("memex-map-"):
                thread.join(900)
        at.run()
    out["umap_map_s"] = round(time.perf_counter() - STARTED, 2)
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
