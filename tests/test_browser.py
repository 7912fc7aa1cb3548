"""The explorer in a real browser: `streamlit run app.py` driven through Debian's Chromium by
Playwright. Opens every page on the demo data, checks its key content and that no Streamlit
exception box appears, proves that script and HTML in memories render as text and run nothing,
and saves a screenshot per page under test-output/screenshots/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from core import NewMemory
from core.admin import find_tenant
from core.demo import load_demo
from core.evaluation import EvalCase
from core.service import MemoryService

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
XSS = ["<img src=x onerror=alert(1)>", "<script>alert('memex')</script>", "**bold** [link](javascript:alert(2)) # heading"]
SCOPE = {"tenant": "Acme Travel", "user": "alice", "store": "default"}

PAGES = [  # (url path, page state in the URL, text that must be on the page)
    ("admin", {}, "Tenants"),  # first: a deep link as the fresh server's very first request
    ("", {}, "Mean importance"),
    ("memories", {}, "memories match"),
    ("search", {"q": "Where does Alice live now?", "mode": "hybrid", "threshold": "0.3"}, "Near misses"),
    ("graph", {}, "Components"),
    ("map", {"q": "flights to Lisbon"}, "UMAP"),
    ("quality", {}, "Near-duplicates"),
    ("evaluate", {}, "Evaluation set"),
    ("import_export", {}, "Export"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo(db) -> dict[str, str]:
    """The demo data, plus memories whose content and metadata carry script and HTML."""
    load_demo(db)
    tenant = find_tenant(db, SCOPE["tenant"])
    svc = MemoryService(db, tenant.id)
    store = svc.find_store(svc.find_user(SCOPE["user"]).id, SCOPE["store"])
    hostile = svc.add_memories(
        store.id,
        [
            NewMemory(
                payload,
                memory_type="note",
                source="browser-test",
                metadata={"html": payload, "<b>key</b>": "<i>x</i>"},
                id=f"00000000-0000-4000-8000-00000000000{n}",
            )
            for n, payload in enumerate(XSS, start=1)
        ],
    )
    lisbon = svc.list_memories(store.id, text_contains="Lisbon", limit=3).items
    svc.save_eval_set(
        store.id,
        "demo questions",
        [
            EvalCase("Where does Alice live now?", (lisbon[0].id,), "temporal"),
            EvalCase("Which city did Alice move to?", tuple(m.id for m in lisbon[:2]), "paraphrase"),
        ],
    )
    return {"memory": str(hostile[0].id)}


def start_server(data_dir: str) -> tuple[subprocess.Popen[str], str, float]:
    """`streamlit run app.py` on the test database: (process, base URL, seconds until healthy)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: apt-get install -y chromium (the browser tests must run in CI)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    port = _free_port()
    env = {**os.environ, "MEMEX_DATA_DIR": data_dir}
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {proc.stdout.read() if proc.stdout else ''}")
    return proc, base, time.monotonic() - started


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def server(db, data_dir) -> Iterator[str]:
    proc, base, _ = start_server(data_dir)
    yield base
    stop_server(proc)


@pytest.fixture(scope="module")
def browser(server) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    tab.dialogs = []  # any alert() that ran
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()


def settle(page, timeout: float = 120_000) -> None:
    """Wait until the page's script has drawn its title and Streamlit has stopped running it."""
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_timeout(2000)  # let plotly finish its first paint before the screenshot


def open_view(page, server: str, path: str, **params: str) -> str:
    page.goto(f"{server}/{path}?{urlencode({**SCOPE, **params})}")
    settle(page)
    return page.inner_text("[data-testid='stMain']")


@pytest.mark.parametrize("path, params, expected", PAGES)
def test_every_page_opens_on_the_demo_data(demo, server, page, path, params, expected) -> None:
    text = open_view(page, server, path, **params)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{path or 'overview'}.png"), full_page=True)
    assert expected in text
    sidebar = page.inner_text("[data-testid='stSidebar']")
    assert "Scope" in sidebar and "Embedding map" in sidebar  # app.py's navigation and scope, whatever the entry URL
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0, text[:500]
    assert page.dialogs == []


def test_script_and_html_in_memories_render_as_text_and_run_nothing(demo, server, page) -> None:
    text = open_view(page, server, "memories", memory=demo["memory"])
    page.get_by_text("Selected memory").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "xss-memory-detail.png"), full_page=True)
    assert XSS[0] in text  # shown literally, angle brackets and all
    assert '"<b>key</b>"' in text or "<b>key</b>" in text  # metadata keys too
    assert page.locator("[data-testid='stMain'] img[src='x']").count() == 0
    assert page.locator("[data-testid='stMain'] script").count() == 0
    page.wait_for_timeout(1000)
    assert page.dialogs == []
    for search in ("search", "graph", "map"):
        open_view(page, server, search, q="onerror alert script", memory=demo["memory"])
        assert page.dialogs == []


def test_the_first_map_of_a_fresh_server_is_timed(demo, browser, db, data_dir) -> None:
    """The Embedding map as the very first page of a newly started explorer, on the demo store:
    once never mapped before (UMAP fits, or a preview shows while it loads), once with the map
    kept in the database by that first run. Times go to test-output/browser/first_map.json for
    docs/BENCHMARKS.md; the test asserts only that the map renders."""
    import json

    svc = MemoryService(db, find_tenant(db, SCOPE["tenant"]).id)
    store = svc.find_store(svc.find_user(SCOPE["user"]).id, SCOPE["store"])
    cache = Path(os.environ.get("NUMBA_CACHE_DIR") or Path(data_dir) / "numba-cache")
    figures: dict[str, object] = {
        "store_memories": svc.get_store(store.id).total_memories,
        "numba_cache_files_at_start": sum(1 for _ in cache.rglob("*.nbi")) if cache.exists() else 0,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    svc.forget_maps(store.id)
    for run in ("never_mapped", "map_kept"):
        proc, base, healthy = start_server(data_dir)
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            tab = context.new_page()
            started = time.monotonic()
            tab.goto(f"{base}/map?{urlencode(SCOPE)}")
            settle(tab, timeout=900_000)
            first = time.monotonic() - started
            text = tab.inner_text("[data-testid='stMain']")
            preview = "linear preview" in text
            if preview:  # the page redraws itself with the UMAP map when the background fit is done
                tab.wait_for_function("!document.body.innerText.includes('linear preview')", timeout=900_000)
                settle(tab, timeout=900_000)
            umap = time.monotonic() - started
            SHOTS.mkdir(parents=True, exist_ok=True)
            tab.screenshot(path=str(SHOTS / f"map-first-{run}.png"), full_page=True)
            assert "UMAP" in tab.inner_text("[data-testid='stMain']")
            assert tab.locator("[data-testid='stException']").count() == 0
            figures[run] = {
                "server_healthy_s": round(healthy, 2),
                "first_render_s": round(first, 2),
                "showed_a_preview_first": preview,
                "umap_map_s": round(umap, 2),
            }
            context.close()
        finally:
            stop_server(proc)
    out = ROOT / "test-output" / "browser"
    out.mkdir(parents=True, exist_ok=True)
    (out / "first_map.json").write_text(json.dumps(figures, indent=2))
