"""Who may open which tenant, in a real browser: the explorer with local accounts, two analysts
with different memberships, signing in through Chromium (issue 12). Each sees only their tenant,
a deep link to the other's shows nothing of it, a viewer finds no write action and an editor
does, nobody but operators finds Admin, a wrong password is refused, and an explorer whose
secrets file cannot be read does not open at all."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode
from uuid import uuid4

import pytest

from core import MemoryService, admin
from tests.conftest import unique
from tests.test_browser import launch_chromium, settle, shoot, start_server, stop_server

pytestmark = pytest.mark.browser
PASSWORD = "a-long-enough-demo-passphrase"


@pytest.fixture(scope="module")
def people(db) -> Iterator[dict[str, dict[str, str]]]:
    """Two tenants with a memory each; ana views the first, ben edits the second."""
    found: dict[str, dict[str, str]] = {}
    for who, role in (("ana", "viewer"), ("ben", "editor")):
        tenant = admin.create_tenant(db, unique(f"{who}s-company"))
        svc = MemoryService(db, tenant.id)
        store = svc.get_or_create_store(svc.create_user("alice").id, "default", embedding_model="test-hashing")
        secret = f"{who}'s tenant only {uuid4().hex}"
        svc.add_memory(store.id, secret)
        email = f"{who}-{uuid4().hex[:6]}@example.com"
        admin.add_analyst(db, email, PASSWORD)
        admin.grant(db, email, tenant.id, role)
        found[who] = {"email": email, "tenant": tenant.name, "secret": secret}
    yield found
    for person in found.values():
        admin.remove_analyst(db, person["email"])


@pytest.fixture(scope="module")
def login_server(db, data_dir, people) -> Iterator[str]:
    proc, base, _ = start_server(data_dir, env={"MEMEX_EXPLORER_LOGIN": "accounts"})
    yield base
    stop_server(proc)


@pytest.fixture(scope="module")
def chromium(login_server) -> Iterator[object]:
    with launch_chromium() as instance:
        yield instance


@pytest.fixture
def tab(chromium) -> Iterator[object]:
    context = chromium.new_context(viewport={"width": 1440, "height": 1000})
    yield context.new_page()
    context.close()


def sign_in(tab, base: str, email: str, password: str = PASSWORD, page: str = "", **params: str) -> str:
    """Open the URL, sign in on the form, go to `page` (a navigation link: a local account's
    sign-in lasts as long as the browser tab's session) and return what the page then shows."""
    tab.goto(f"{base}/?{urlencode(params)}")
    settle(tab)
    tab.get_by_role("textbox", name="Email").fill(email)
    tab.get_by_role("textbox", name="Password").fill(password)
    tab.get_by_role("button", name="Sign in").click()
    signed = tab.locator("[data-testid='stSidebar']").get_by_text("Signed in as")
    signed.or_(tab.locator("[data-testid='stAlert']")).first.wait_for(timeout=60_000)
    settle(tab)
    if page:
        open_page(tab, page)
    return tab.inner_text("body")


def open_page(tab, title: str) -> None:
    tab.locator("[data-testid='stSidebarNav']").get_by_text(title, exact=True).click()
    settle(tab)


def tenant_options(tab) -> list[str]:
    tab.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first.click()
    tab.wait_for_timeout(500)
    options = tab.get_by_role("option").all_inner_texts()
    tab.keyboard.press("Escape")
    return options


def test_two_analysts_see_disjoint_tenants_and_a_deep_link_shows_nothing_of_the_other(login_server, tab, people) -> None:
    ana, ben = people["ana"], people["ben"]
    text = sign_in(tab, login_server, ana["email"])
    assert f"Signed in as {ana['email']}" in text and ana["tenant"] in text
    assert tenant_options(tab) == [ana["tenant"]]
    assert ben["tenant"] not in tab.content() and ben["secret"] not in tab.content()
    shoot(tab, "access-ana")
    tab.context.clear_cookies()
    text = sign_in(tab, login_server, ben["email"], tenant=ana["tenant"], user="alice", store="default")  # ben follows a link to ana's
    assert tenant_options(tab) == [ben["tenant"]]
    assert "That link's tenant is not one you may open" in text
    open_page(tab, "Memories")
    content = tab.content()
    assert ana["tenant"] not in content.replace(f"tenant={ana['tenant']}", "") and ana["secret"] not in content
    shoot(tab, "access-ben-deep-link")


def test_a_viewer_finds_no_write_action_an_editor_does_and_neither_finds_admin(login_server, tab, people) -> None:
    query = {"tenant": people["ana"]["tenant"], "user": "alice", "store": "default"}
    sign_in(tab, login_server, people["ana"]["email"], page="Memories", **query)
    main = tab.inner_text("[data-testid='stMain']")
    assert "memory match" in main and "Add a memory" not in main
    assert "Admin" not in tab.inner_text("[data-testid='stSidebarNav']")
    shoot(tab, "access-viewer-memories")
    open_page(tab, "Import / export")
    assert "you may export, not import" in tab.inner_text("[data-testid='stMain']")
    tab.context.clear_cookies()
    query["tenant"] = people["ben"]["tenant"]
    sign_in(tab, login_server, people["ben"]["email"], page="Memories", **query)
    assert "Add a memory" in tab.inner_text("[data-testid='stMain']")
    assert "Admin" not in tab.inner_text("[data-testid='stSidebarNav']")


def test_a_wrong_password_is_refused_and_shows_nothing(login_server, tab, people) -> None:
    text = sign_in(tab, login_server, people["ana"]["email"], password="not the password")
    assert "Wrong email or password." in text
    assert people["ana"]["tenant"] not in text and people["ana"]["secret"] not in tab.content()
    assert tab.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").count() == 0


def test_an_explorer_whose_secrets_file_cannot_be_read_does_not_open(db, data_dir, chromium, tmp_path, people) -> None:
    broken = tmp_path / "secrets.toml"
    broken.write_text('[auth]\nclient_id = "memex"\nclient_secret = "never-shown"\nserver_metadata_url = \n')
    proc, base, _ = start_server(data_dir, args=("--secrets.files", str(broken)))
    try:
        context = chromium.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.goto(f"{base}/?tenant={people['ana']['tenant']}")
        settle(page)
        text = page.inner_text("body")
        assert "The explorer does not open" in text and "cannot be read" in text
        assert "never-shown" not in page.content() and people["ana"]["secret"] not in page.content()
        assert page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").count() == 0
        shoot(page, "access-broken-secrets")
        context.close()
    finally:
        stop_server(proc)
