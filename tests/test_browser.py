"""The explorer in a real browser: `streamlit run app.py` driven through Debian's Chromium by
Playwright. Opens every page on the demo data, checks its key content and that no Streamlit
exception box appears, proves that script and HTML in memories render as text and run nothing,
confirms real destructive actions (a merge, a delete, a bulk archive) and checks their result,
and saves a full-height screenshot per page and per action under test-output/screenshots/."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from core import NewMemory
from core.admin import find_tenant, list_tenants
from core.demo import load_demo
from core.evaluation import EvalCase
from core.service import MemoryService

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "test-output" / "screenshots"
LOGS = ROOT / "test-output" / "browser" / "servers"  # each explorer server's output
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
    ("", {}, "memex is long-term memory for AI agents"),
    ("memories", {}, "memories match"),
    ("search", {"q": "Where does Alice live now?", "mode": "hybrid", "threshold": "0.3"}, "Near misses"),
    ("retrievals", {}, "searches match"),
    ("graph", {}, "Components"),
    ("map", {"q": "flights to Lisbon"}, "UMAP"),
    ("quality", {}, "Near-duplicates"),
    ("evaluate", {}, "Configurations"),
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
    northwind = MemoryService(db, find_tenant(db, "Northwind Health").id)  # a user of the same name in another tenant
    northwind.get_or_create_store(northwind.find_user(SCOPE["user"], create=True).id, SCOPE["store"], embedding_model="test-hashing")
    svc.save_eval_set(
        store.id,
        "demo questions",
        [
            EvalCase("Where does Alice live now?", (lisbon[0].id,), "temporal"),
            EvalCase("Which city did Alice move to?", tuple(m.id for m in lisbon[:2]), "paraphrase"),
        ],
    )
    return {"memory": str(hostile[0].id), "doomed": str(hostile[2].id), "store": str(store.id), "tenant": str(tenant.id)}


def start_server(data_dir: str, env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> tuple[subprocess.Popen[str], str, float]:
    """The explorer's server as `make run` starts it (core.explorer.serve) on the test database (with these extra environment variables and
    options): (process, base URL, seconds until healthy)."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: apt-get install -y chromium (the browser tests must run in CI)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    port = _free_port()
    env = {**os.environ, "MEMEX_DATA_DIR": data_dir, **(env or {})}
    # the server's output goes to a file: a pipe nobody reads until the end stalls a server that
    # has written 64 KB; the file is there to read when a test fails
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"server-{port}.log"
    started = time.monotonic()
    with log.open("w") as out:  # the server holds its own copy of the file
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "core.explorer.serve",  # streamlit run app.py, as make run starts it
                "--server.port",
                str(port),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
                *args,
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:  # a server that exited will not answer: say why now
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start: {log.read_text()[-3000:]}")
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


@contextmanager
def launch_chromium() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def browser(server) -> Iterator[object]:
    with launch_chromium() as instance:
        yield instance


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    tab = context.new_page()
    tab.dialogs = []  # any alert() that ran
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    yield tab
    context.close()


QUIET = """([quiet, most]) => new Promise(resolve => {
    let timer;
    const observer = new MutationObserver(() => { clearTimeout(timer); timer = setTimeout(done, quiet); });
    const cap = setTimeout(done, most);
    function done() { observer.disconnect(); clearTimeout(timer); clearTimeout(cap); resolve(); }
    observer.observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
    timer = setTimeout(done, quiet);
})"""


def quiet(page, most: float) -> None:
    """Wait until nothing in the page has changed for 300 ms (what a render, plotly's paint or a
    relayout does is done), but `most` ms at most (a page that keeps changing)."""
    page.evaluate(QUIET, [300, most])


# a chart drawn (on the map page, the map): plotly has its traces and its first SVG
CHART_DRAWN = (
    "[...document.querySelectorAll('[data-testid=stPlotlyChart] .js-plotly-plot')].some(c => c.data && c.querySelector('.main-svg'))"
)


def settle(page, timeout: float = 120_000) -> None:
    """Wait until the page's script has drawn its title and Streamlit has stopped running it."""
    # a click's rerun starts (the state goes to "rerunRequested", then "running"); until then the page says "notRunning"
    try:
        page.wait_for_selector("[data-testid='stApp']:not([data-test-script-state='notRunning'])", timeout=500)
    except PlaywrightTimeout:
        pass  # it has run and ended already, or the click reruns nothing
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    # Streamlit loads each kind of element's code on demand and shows a skeleton in its place
    # until then: the run can be over while every button and table of the page is still one.
    # Under load they mounted seconds later, in no set order, so `.first` of the page's tables
    # could be one in a hidden tab (never visible) and a tick could land before its grid existed.
    page.wait_for_function("!document.querySelector('[data-testid=stSkeleton]')", timeout=timeout)
    try:  # every chart drawn (plotly keeps its traces on the element once it has)
        page.wait_for_function(
            "[...document.querySelectorAll('[data-testid=stPlotlyChart]')].every(c => (c.querySelector('.js-plotly-plot') || {}).data)",
            timeout=30_000,
        )
    except PlaywrightTimeout:
        pass  # a chart in a hidden tab is drawn when the tab opens
    # the last elements drawn, tables laid out, plotly's first paint done: the page changes for 0.7-2.7 s after the run,
    # with pauses (waiting for 300 ms without a change instead failed two tests of a full run: a click landed too early)
    page.wait_for_timeout(2000)


def shoot(page, name: str) -> None:
    """A screenshot of the whole page: the main area scrolls inside the window, so the window is
    made as tall as the page for the shot, then put back."""
    size = page.viewport_size
    height = page.evaluate(
        "Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stMainBlockContainer]')].map(e => e.scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 100, size["height"]), 12_000)})
    quiet(page, 1500)  # the page laid out and painted again at that height
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    page.set_viewport_size(size)


def no_error_box(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0, page.inner_text("[data-testid='stException']")
    assert page.locator("[data-testid='stAlertContentError']").count() == 0, page.inner_text("[data-testid='stAlertContentError']")


def select_rows(page, table, rows: list[int], row_height: int = 70) -> None:
    """Tick rows of a st.dataframe (a canvas): its selection column, left of the first cell (the
    table scrolled into the window first: a click outside it reaches nothing). Each tick must show
    in the grid's accessibility table (the row aria-selected), so a tick that missed fails here,
    not later as a button that stayed disabled."""
    table.wait_for(state="visible", timeout=30_000)  # re-finds the table until one matching is visible
    table.scroll_into_view_if_needed()
    box = table.bounding_box()
    for row in rows:
        y = box["y"] + 36 + row_height * row + row_height / 2
        page.mouse.move(box["x"] + 15, y)
        page.wait_for_timeout(200)
        page.mouse.click(box["x"] + 15, y)
        # the header is aria-rowindex 1, the first row 2
        table.locator(f"table[role=grid] tr[aria-rowindex='{row + 2}'][aria-selected='true']").wait_for(state="attached", timeout=10_000)
        settle(page)


def confirm(page, label: str) -> None:
    """Press the confirmation dialog's button and wait for the page to draw what changed."""
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=30_000)
    dialog.get_by_role("button", name=label).click()
    dialog.wait_for(state="hidden", timeout=60_000)  # the dialog closes by itself
    settle(page)


def no_sideways_scroll(page) -> None:
    """Every table fits its column: nothing hides to the right."""
    page.wait_for_selector("[data-testid='stDataFrame'] .dvn-scroller", timeout=30_000)
    widths = page.evaluate(
        "[...document.querySelectorAll('[data-testid=stDataFrame] .dvn-scroller')].map(e => [e.scrollWidth, e.clientWidth])"
    )
    assert widths and all(scroll <= client + 2 for scroll, client in widths), widths


def open_view(page, server: str, path: str, **params: str) -> str:
    page.goto(f"{server}/{path}?{urlencode({**SCOPE, **params})}")
    settle(page)
    return page.inner_text("[data-testid='stMain']")


@pytest.mark.parametrize("path, params, expected", PAGES)
def test_every_page_opens_on_the_demo_data(demo, server, page, path, params, expected) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    text = open_view(page, server, path, **params)
    shoot(page, path or "overview")
    assert expected in text
    if page.locator("[data-testid='stDataFrame'] .dvn-scroller").count():  # at 1400 px no table drawn hides a column to the right
        no_sideways_scroll(page)
    sidebar = page.inner_text("[data-testid='stSidebar']")
    assert "Scope" in sidebar and "Embedding map" in sidebar  # app.py's navigation and scope, whatever the entry URL
    assert page.locator("[data-testid='stException']").count() == 0
    assert page.locator("[data-testid='stAlertContentError']").count() == 0, text[:500]
    assert page.dialogs == []


def test_a_logged_search_of_the_demo_opens_and_replays(db, demo, server, page) -> None:
    svc = MemoryService(db, demo["tenant"])
    entry = next(e for e in svc.retrievals(demo["store"], limit=500).entries if e.near_misses and e.result_count)
    text = open_view(page, server, "retrievals", entry=str(entry.id))
    assert f"Query: {entry.query}" in text and "near miss" in text
    page.get_by_text("Replay", exact=True).click()
    settle(page)
    page.get_by_text("Then", exact=True).wait_for(timeout=60_000)
    shoot(page, "retrievals-entry-replayed")
    no_error_box(page)


def test_the_history_timeline_of_an_edited_demo_memory_shows_the_diff_and_restore(db, demo, server, page) -> None:
    svc = MemoryService(db, demo["tenant"])
    edited = next(e for e in svc.store_history(demo["store"], limit=500) if e.event == "updated" and "content" in e.changes)
    open_view(page, server, "memories", memory=str(edited.memory_id))
    page.get_by_text("History:").first.click()
    page.get_by_text("edited").first.wait_for(timeout=30_000)
    text = page.inner_text("[data-testid='stMain']")
    assert "{+Confirmed again with the user last week.+}" in text and "Restore version 1" in text
    assert "Retrieved" in text  # the log's count, linked to the last search that returned it
    shoot(page, "memory-history-timeline")
    no_error_box(page)


def test_script_and_html_in_memories_render_as_text_and_run_nothing(demo, server, page) -> None:
    text = open_view(page, server, "memories", memory=demo["memory"])
    shoot(page, "xss-memory-detail")
    assert XSS[0] in text  # shown literally, angle brackets and all
    assert '"<b>key</b>"' in text or "<b>key</b>" in text  # metadata keys too
    assert page.locator("[data-testid='stMain'] img[src='x']").count() == 0
    assert page.locator("[data-testid='stMain'] script").count() == 0
    page.wait_for_timeout(1000)
    assert page.dialogs == []
    for search in ("search", "graph", "map"):
        open_view(page, server, search, q="onerror alert script", memory=demo["memory"])
        assert page.dialogs == []


# What an analyst meets first, and what issue 15 fixed; each test leaves a screenshot to look at. -----


def memory_service(db, demo) -> tuple[MemoryService, str]:
    return MemoryService(db, demo["tenant"]), demo["store"]


def test_the_first_screen_says_what_memex_is_and_keeps_isolation_details_behind_an_expander(demo, server, page) -> None:
    text = open_view(page, server, "")
    assert "memex is long-term memory for AI agents" in text and "Tenants" in text and "Memories in all" in text
    sidebar = page.inner_text("[data-testid='stSidebar']")
    assert "memex_app" not in sidebar and demo["tenant"] not in sidebar  # no role or UUID up front
    page.get_by_text("Isolation details").click()
    page.wait_for_timeout(500)
    details = page.inner_text("[data-testid='stSidebar']")
    assert "memex_app" in details and demo["tenant"] in details and f"tenant     {SCOPE['tenant']}" in details
    shoot(page, "first-screen")
    no_error_box(page)


def test_switching_tenant_keeps_the_user_when_the_new_tenant_has_one_of_that_name(demo, server, page) -> None:
    open_view(page, server, "")
    side = page.locator("[data-testid='stSidebar']")
    side.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="Northwind Health").click()
    settle(page)
    assert "tenant=Northwind+Health" in page.url and "user=alice" in page.url
    shoot(page, "tenant-switch-keeps-user")
    side.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name="Globex Engineering").click()  # no alice there: the first user, said so
    settle(page)
    assert "No user named alice here" in page.inner_text("[data-testid='stSidebar']")
    side.locator("[data-testid='stSelectbox']").first.click()
    page.get_by_role("option", name=SCOPE["tenant"]).click()  # back: alice again, remembered
    settle(page)
    assert "user=alice" in page.url
    no_error_box(page)


def test_search_marks_superseded_results_and_reads_at_1400_px(demo, server, page) -> None:
    page.set_viewport_size({"width": 1400, "height": 1000})
    text = open_view(page, server, "search", q="what should Alice not eat?", mode="hybrid", threshold="0.3")
    assert "are superseded: a newer memory updates or contradicts them" in text
    assert "Fused score: What hybrid search ranks by" in text  # the mode's score, explained where it appears
    no_sideways_scroll(page)
    shoot(page, "search-superseded-1400")
    text = open_view(page, server, "search", q="what should Alice not eat?", mode="weighted", threshold="0.3", superseded="demote")
    assert "Weighted score: What weighted search ranks by" in text
    no_sideways_scroll(page)
    shoot(page, "search-weighted-demoted-1400")
    no_error_box(page)


def test_the_why_not_picker_matches_words_not_scattered_letters(demo, server, page) -> None:
    open_view(page, server, "search", q="what should Alice not eat?", mode="vector", threshold="0.3")
    picker = page.locator("[data-testid='stSelectbox']").filter(has_text="best candidates")
    picker.click()
    page.keyboard.type("aller")
    page.wait_for_timeout(800)
    options = [o for o in page.get_by_role("option").all_inner_texts() if o != "No results"]
    assert all("aller" in o.lower() for o in options), options  # no memory of scattered a, l, l, e, r
    page.keyboard.press("Escape")
    picker.click()
    page.keyboard.type("vegan")
    page.wait_for_timeout(800)
    options = page.get_by_role("option").all_inner_texts()
    assert options and all("vegan" in o.lower() for o in options), options
    shoot(page, "why-not-picker-words")
    page.keyboard.press("Escape")


def test_a_confirmed_merge_runs_closes_the_dialog_and_shows_the_result(db, demo, server, page) -> None:
    svc, store = memory_service(db, demo)
    before = svc.list_memories(store, limit=500).total
    text = open_view(page, server, "quality")
    assert "2 groups holding 4 memories" in text
    select_rows(page, page.locator("[data-testid='stDataFrame']").first, [0])
    merge = page.get_by_role("button", name="Merge into the selected").first
    assert merge.is_enabled()
    merge.click()
    settle(page)
    shoot(page, "merge-dialog")
    confirm(page, "Merge 2 memories into one")
    text = page.inner_text("[data-testid='stMain']")
    assert "1 group holding 2 memories" in text  # the page behind drew the merge
    assert svc.list_memories(store, limit=500).total == before - 1
    no_error_box(page)
    shoot(page, "merge-done")


def test_a_confirmed_delete_runs_and_the_memory_is_gone_from_the_page(db, demo, server, page) -> None:
    svc, _ = memory_service(db, demo)
    text = open_view(page, server, "memories", memory=demo["doomed"])
    assert "Selected memory" in text
    page.get_by_role("button", name="Delete").click()
    settle(page)
    confirm(page, "Delete this memory")
    text = page.inner_text("[data-testid='stMain']")
    assert "Selected memory" not in text and "memory=" not in page.url
    assert svc.get_memories([demo["doomed"]]) == []
    no_error_box(page)
    shoot(page, "delete-done")


def test_a_confirmed_bulk_archive_runs_and_the_table_shows_it(db, demo, server, page) -> None:
    svc, store = memory_service(db, demo)
    open_view(page, server, "memories", q="Pixel")
    pixel = svc.list_memories(store, text_contains="Pixel", order_by="created_at", descending=True, limit=10).items
    select_rows(page, page.locator("[data-testid='stDataFrame']").first, [0, 1])
    page.get_by_role("button", name="Archive 2 memories", exact=True).click()
    settle(page)
    shoot(page, "bulk-archive-dialog")
    confirm(page, "Archive 2 memories")
    assert [m.archived for m in svc.get_memories([m.id for m in pixel[:2]])] == [True, True]
    assert "Archive 2 memories" not in page.inner_text("[data-testid='stMain']")  # the selection was cleared
    no_error_box(page)
    shoot(page, "bulk-archive-done")


def test_quality_lists_superseded_pairs_and_archives_the_older_in_one_click(db, demo, server, page) -> None:
    svc, store = memory_service(db, demo)
    text = open_view(page, server, "quality", similarity="0.99")
    assert "0 groups holding 0 memories" in text and "Lower the minimum similarity" in text
    page.get_by_role("tab", name="Superseded").click()
    settle(page)
    shoot(page, "quality-superseded")
    stale = svc.superseded_among([m.id for m in svc.all_memories(store)])
    select_rows(page, page.locator("[data-testid='stDataFrame']").filter(visible=True).first, [0])
    page.get_by_role("button", name="Archive the older of the 1 selected pair").click()
    settle(page)
    assert len(svc.superseded_among([m.id for m in svc.all_memories(store)])) == len(stale)  # still related...
    assert sum(m.archived for m in svc.get_memories(list(stale))) == 1  # ...and the older one is archived
    no_error_box(page)


def test_evaluate_says_what_a_set_is_and_what_each_configuration_achieves(db, demo, server, page) -> None:
    svc, _ = memory_service(db, demo)
    newcomer = svc.create_user(f"newcomer-{os.getpid()}")  # every demo store has a set: a store of its own has none
    svc.get_or_create_store(newcomer.id, "default")
    text = open_view(page, server, "evaluate", user=newcomer.name)
    assert "An evaluation set is a list of questions" in text
    shoot(page, "evaluate-empty")
    open_view(page, server, "evaluate")
    page.get_by_role("button", name="Run the evaluation").click()
    page.get_by_text("finds an expected memory in the top 5").first.wait_for(timeout=120_000)
    settle(page)
    for axis in ("finds an expected memory in the top 5 for", "first right answer (MRR)"):  # the chart's, drawn by plotly after the run
        page.get_by_text(axis).first.wait_for(timeout=60_000)
    select_rows(page, page.locator("[data-testid='stDataFrame']").last, [0], row_height=35)  # a question that missed
    page.get_by_text("Expected memories: where each came, or why it was not retrieved").wait_for(timeout=60_000)
    shoot(page, "evaluate-run")
    no_error_box(page)


def test_the_map_highlights_results_in_place_and_lists_the_true_nearest(demo, server, page) -> None:
    text = open_view(page, server, "map", q="what should Alice not eat?")
    assert "Nearest by meaning" in text and "approximate" in text
    page.wait_for_function("(document.querySelector('.js-plotly-plot') || {}).data", timeout=120_000)
    traces = page.evaluate("document.querySelector('.js-plotly-plot').data.map(t => t.name)")
    assert "its top 5 results" in traces and "the query (placed approximately)" in traces
    shoot(page, "map-query")


def test_a_memory_type_has_one_colour_on_graph_map_and_timeline(demo, server, page) -> None:
    def colours(selector: str = ".js-plotly-plot") -> dict[str, str]:
        page.wait_for_function(f"[...document.querySelectorAll('{selector}')].some(p => p.data && p.data.length)", timeout=60_000)
        found = page.evaluate(
            f"[...document.querySelectorAll('{selector}')].flatMap(p => p.data)"
            ".filter(t => t.marker && typeof t.marker.color === 'string').map(t => [t.name, t.marker.color])"
        )
        return dict(found)

    open_view(page, server, "graph")
    graph = colours()
    shoot(page, "graph")
    open_view(page, server, "map")
    mapped = colours()
    open_view(page, server, "quality")
    page.get_by_role("tab", name="Timeline").click()
    settle(page)
    timeline = colours()
    shoot(page, "quality-timeline")
    for memory_type in ("fact", "preference", "episode"):
        assert graph[memory_type] == mapped[memory_type] == timeline[memory_type], memory_type


def test_creating_a_tenant_with_enter_then_the_button_reports_no_error(db, demo, server, page) -> None:
    open_view(page, server, "admin")
    field = page.get_by_label("New tenant name")
    field.fill("Initech")
    field.press("Enter")
    settle(page)
    page.get_by_role("button", name="Create tenant").click()
    settle(page)
    no_error_box(page)
    assert "tenant name is empty" not in page.inner_text("[data-testid='stMain']")
    assert "Initech" in [t.name for t in list_tenants(db)]
    shoot(page, "admin-create-enter")


def test_the_first_map_of_a_fresh_server_is_timed(demo, browser, db, data_dir) -> None:
    """The Embedding map of the demo store on a newly started explorer, timed until its chart is
    drawn: opened by its URL as the first page, once never mapped before (UMAP fits, or a preview
    shows while it loads) and once with the map kept in the database by that first run; then as a
    person reaches it, from the explorer's home (whose charts load plotly) with a click. Times go
    to test-output/browser/first_map.json for docs/BENCHMARKS.md; the test asserts only that the
    map renders."""
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
    for run in ("never_mapped", "map_kept", "map_kept_from_home"):
        proc, base, healthy = start_server(data_dir, env={"MEMEX_EXPLORER_START_WORK": "1"})  # as an operator starts it
        try:
            context = browser.new_context(viewport={"width": 1440, "height": 1000})
            tab = context.new_page()
            home = None
            if run.endswith("from_home"):
                started = time.monotonic()
                tab.goto(f"{base}/?{urlencode(SCOPE)}")
                tab.wait_for_function(CHART_DRAWN, timeout=900_000)  # its first chart: plotly is loaded
                home = time.monotonic() - started
                settle(tab)
                started = time.monotonic()
                tab.get_by_role("link", name="Embedding map").click()
            else:
                started = time.monotonic()
                tab.goto(f"{base}/map?{urlencode(SCOPE)}")
            tab.wait_for_selector("[data-testid='stMain'] h1:has-text('Embedding map')", timeout=900_000)
            tab.wait_for_function(CHART_DRAWN, timeout=900_000)
            first = time.monotonic() - started
            settle(tab, timeout=900_000)
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
                **({"home_drawn_s": round(home, 2)} if home is not None else {}),
                "map_drawn_s": round(first, 2),
                "showed_a_preview_first": preview,
                "umap_map_s": round(umap, 2),
            }
            context.close()
        finally:
            stop_server(proc)
    out = ROOT / "test-output" / "browser"
    out.mkdir(parents=True, exist_ok=True)
    (out / "first_map.json").write_text(json.dumps(figures, indent=2))
