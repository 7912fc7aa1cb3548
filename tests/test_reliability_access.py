"""Access to the explorer and secrets: with local accounts or OIDC configured, nothing but the
sign-in shows until an analyst is in, who then sees only the tenants PostgreSQL lets them open,
in their role; without a login the explorer opens only on localhost; a password never reaches
the page; DATABASE_URL's password never reaches an error, a log line or a traceback."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
from streamlit.testing.v1 import AppTest

from core import MemoryService, admin
from core.config import Settings, get_settings
from core.db import Database
from core.service import access
from tests.apptest import APP
from tests.conftest import unique

ROOT = Path(__file__).resolve().parent.parent
FIGURES: Counter[str] = Counter()  # written to test-output/reliability/ by conftest
PASSWORD = "correct-horse-battery-staple-7f3a"
DB_PASSWORD = "s3cret-Db-pa55"


@pytest.fixture
def settings_from(monkeypatch) -> Iterator[None]:
    """get_settings() is cached per process: clear it around a test that changes the environment
    (monkeypatch restores the variables after this fixture's teardown clears the cache again)."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def page_output(at: AppTest) -> str:
    """Every element the app sent, as the protobuf text the browser would receive."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        children = getattr(node, "children", None)
        for child in children.values() if isinstance(children, dict) else children or []:
            walk(child)

    walk(at._tree)
    return "\n".join(parts) + "\n" + json.dumps(dict(at.query_params.items()) if hasattr(at.query_params, "items") else {})


def app(tenant, user, **secrets) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for key, value in secrets.items():
        at.secrets[key] = value
    at.query_params["tenant"], at.query_params["user"], at.query_params["store"] = tenant.name, user.name, "default"
    return at.run()


def assert_locked(at: AppTest, secret_memory: str) -> None:
    """Only the sign-in: no sidebar scope, no data, no figures, no memory."""
    assert not at.exception, at.exception
    assert not at.sidebar.selectbox and not at.metric and not at.dataframe
    output = page_output(at)
    assert secret_memory not in output and "memex_app" not in output


def sign_in(at: AppTest, email: str, password: str) -> AppTest:
    at.text_input(key="login_email").input(email)
    at.text_input(key="login_password").input(password)
    return at.button[0].click().run()


@pytest.fixture
def analyst(db: Database, monkeypatch, settings_from) -> Iterator[str]:
    """A local account (sign-in by accounts configured), member of nothing yet."""
    monkeypatch.setenv("MEMEX_EXPLORER_LOGIN", "accounts")
    monkeypatch.setattr(access, "WRONG_PASSWORD_DELAY_S", 0)
    email = f"{uuid4().hex[:10]}@example.com"
    admin.add_analyst(db, email, PASSWORD)
    yield email
    admin.remove_analyst(db, email)


def signed_in(tenant, user, email: str, page: str | None = None, **params: str) -> AppTest:
    """The explorer as `email` after the sign-in form, on the Overview or `page`."""
    at = sign_in(app(tenant, user), email, PASSWORD)
    if page:
        at.switch_page(f"pages/{page}.py")
        for key, value in params.items():
            at.query_params[key] = value
        at.run()
    assert not at.exception, at.exception
    return at


def test_with_accounts_the_app_shows_only_the_sign_in_until_a_member_signs_in(db, analyst, svc, store, user, tenant) -> None:
    secret_memory = f"only for the signed-in {uuid4().hex}"
    svc.add_memory(store.id, secret_memory)
    admin.grant(db, analyst, tenant.id, "viewer")
    at = app(tenant, user)
    assert [t.label for t in at.text_input] == ["Email", "Password"] and at.text_input[1].proto.type == at.text_input[1].proto.PASSWORD
    assert_locked(at, secret_memory)
    for email, wrong in ((analyst, ""), (analyst, "wrong"), (analyst, PASSWORD[:-1]), ("nobody@example.com", PASSWORD)):
        at = sign_in(at, email, wrong)
        assert [e.value for e in at.error] == ["Wrong email or password."]  # the same whether the account exists or not
        assert_locked(at, secret_memory)
        FIGURES["access: wrong passwords refused"] += 1
    admin.set_analyst(db, analyst, password=PASSWORD)  # the failures above locked the account: a new password unlocks it
    at = sign_in(at, analyst, PASSWORD)
    assert not at.exception and not at.error
    assert [s.value for s in at.sidebar.selectbox] == [tenant.name, user.name, "default"]
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"
    assert secret_memory in page_output(at) and PASSWORD not in page_output(at)
    assert all(PASSWORD not in repr(at.session_state[k]) for k in at.session_state)  # not even kept in the session
    assert f"Signed in as {analyst}" in [c.value.replace("\\", "") for c in at.sidebar.caption]
    at.run()  # signed in for the rest of the session
    assert not at.exception and not at.text_input and {m.label: m.value for m in at.metric}["Memories"] == "1"
    at = sign_in(app(tenant, user), analyst, PASSWORD)
    at = next(b for b in at.button if b.label == "Sign out").click().run()
    assert_locked(at, secret_memory)
    FIGURES["access: sign-ins checked"] += 1


def test_an_analyst_sees_only_their_tenants_and_a_link_to_another_shows_nothing_of_it(db, analyst, svc, store, user, tenant) -> None:
    other = admin.create_tenant(db, unique("not-theirs"))
    other_svc = MemoryService(db, other.id)
    other_user = other_svc.create_user("alice")
    other_store = other_svc.get_or_create_store(other_user.id, "default", embedding_model="test-hashing")
    other_svc.add_memory(other_store.id, f"another tenant's secret {uuid4().hex}")
    admin.grant(db, analyst, tenant.id, "viewer")
    at = signed_in(tenant, user, analyst)
    assert at.sidebar.selectbox[0].options == [tenant.name]  # the only tenant PostgreSQL lets them open
    at = sign_in(app(other, other_user), analyst, PASSWORD)  # a deep link to the other tenant
    assert not at.exception and at.sidebar.selectbox[0].value == tenant.name
    output = page_output(at)
    assert other.name not in output and str(other.id) not in output and "another tenant's secret" not in output
    FIGURES["access: deep links to other tenants shown nothing"] += 1
    admin.revoke(db, analyst, tenant.id)  # revoked: no tenant at all
    at = sign_in(app(tenant, user), analyst, PASSWORD)
    assert not at.exception and not at.sidebar.selectbox and not at.metric
    assert "You may not open any tenant yet" in "\n".join(i.value for i in at.info)
    FIGURES["access: revoked memberships applied on the next page"] += 1


def _write_actions(at: AppTest) -> set[str]:
    labels = {b.label for b in at.button} | {e.label for e in at.expander}
    return labels & {"Add a memory", "Edit this memory", "Delete", "Archive", "Expire now"}


def test_a_viewer_gets_no_write_action_and_no_admin_page_an_editor_writes_attributed(db, analyst, svc, store, user, tenant) -> None:
    memory = svc.add_memory(store.id, "a memory to look at")
    admin.grant(db, analyst, tenant.id, "viewer")
    at = signed_in(tenant, user, analyst)
    assert "Your role here: viewer (you may look, not change)" in [c.value for c in at.sidebar.caption]
    at = signed_in(tenant, user, analyst, "memories", memory=str(memory.id))
    assert "Selected memory" in [s.value for s in at.subheader] and _write_actions(at) == set()
    at.switch_page("pages/import_export.py").run()
    assert "you may export, not import" in "\n".join(i.value for i in at.info)
    at.switch_page("pages/admin.py").run()  # not in their navigation; the page itself refuses too
    assert not at.dataframe and "Only operators and a tenant's admins" in "\n".join(i.value for i in at.info)
    admin.grant(db, analyst, tenant.id, "editor")
    at = signed_in(tenant, user, analyst, "memories", memory=str(memory.id))
    assert _write_actions(at) == {"Add a memory", "Edit this memory", "Delete", "Archive", "Expire now"}
    at.button(key=next(b.key for b in at.button if b.label == "Archive")).click().run()
    assert svc.get_memory(memory.id).archived
    assert svc.get_memory_history(memory.id)[-1].actor == f"analyst {analyst}"
    FIGURES["access: roles enforced on pages"] += 1


def test_a_tenant_admin_manages_their_tenant_only_and_an_operator_every_tenant(db, analyst, svc, store, user, tenant) -> None:
    admin.grant(db, analyst, tenant.id, "admin")
    at = signed_in(tenant, user, analyst, "admin")
    subheaders = [s.value for s in at.subheader]
    assert "Tenants" not in subheaders and "Users of the selected tenant" in subheaders and "API keys of the selected tenant" in subheaders
    assert all(t.name not in page_output(at) for t in admin.list_tenants(db) if t.id != tenant.id)
    admin.set_analyst(db, analyst, operator=True)
    at = signed_in(tenant, user, analyst)
    assert set(at.sidebar.selectbox[0].options) == {t.name for t in admin.list_tenants(db)}
    at = signed_in(tenant, user, analyst, "admin")
    assert "Tenants" in [s.value for s in at.subheader]


def test_bound_beyond_localhost_without_a_login_the_explorer_refuses_to_open(monkeypatch, settings_from, svc, store, user, tenant) -> None:
    from streamlit import config

    monkeypatch.delenv("MEMEX_EXPLORER_LOGIN", raising=False)
    secret_memory = f"not for the network {uuid4().hex}"
    svc.add_memory(store.id, secret_memory)
    saved = config.get_option("server.address")
    config.set_option("server.address", "0.0.0.0")
    try:
        at = app(tenant, user)
    finally:
        config.set_option("server.address", saved)
    assert_locked(at, secret_memory)
    (error,) = at.error
    assert "reachable beyond this machine and no sign-in is configured" in error.value
    FIGURES["access: open explorers beyond localhost refused"] += 1


def test_without_a_login_on_localhost_the_app_is_open(monkeypatch, settings_from, svc, store, user, tenant) -> None:
    monkeypatch.delenv("MEMEX_EXPLORER_LOGIN", raising=False)
    svc.add_memory(store.id, "open on localhost")
    at = app(tenant, user)
    assert not at.exception and not at.text_input
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"


OIDC = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "cookie-s3cret-do-not-show",
    "client_id": "memex-explorer",
    "client_secret": "client-s3cret-do-not-show",
    "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration",
}


def test_with_oidc_configured_nothing_shows_until_signed_in_and_no_secret_reaches_the_page(
    db, monkeypatch, settings_from, svc, store, user, tenant
) -> None:
    monkeypatch.setenv("MEMEX_EXPLORER_LOGIN", "accounts")  # OIDC wins over local accounts
    email = f"{uuid4().hex[:10]}@example.com"
    admin.add_analyst(db, email)
    admin.grant(db, email, tenant.id, "viewer")
    secret_memory = f"only for OIDC users {uuid4().hex}"
    svc.add_memory(store.id, secret_memory)
    at = AppTest.from_file(APP, default_timeout=120)
    at.secrets["auth"] = OIDC
    at.user = {"is_logged_in": False}
    at.query_params["tenant"], at.query_params["user"], at.query_params["store"] = tenant.name, user.name, "default"
    at.run()
    assert [b.label for b in at.button] == ["Sign in"] and not at.text_input
    assert_locked(at, secret_memory)
    output = page_output(at)
    assert all(OIDC[k] not in output for k in ("cookie_secret", "client_secret"))
    at.user = {"is_logged_in": True, "email": email.upper(), "name": "Ana"}  # providers' case is not ours
    at.run()
    assert not at.exception and not at.error
    assert f"Signed in as {email}" in [c.value.replace("\\", "") for c in at.sidebar.caption]
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"
    assert all(OIDC[k] not in page_output(at) for k in ("cookie_secret", "client_secret"))
    admin.remove_analyst(db, email)
    FIGURES["access: sign-ins checked"] += 1


# Secrets in errors, logs and tracebacks ---------------------------------------------------------------

UNREACHABLE = f"postgresql://memex_app:{DB_PASSWORD}@127.0.0.1:1/memex"
BAD_URLS = {
    "unreachable server": UNREACHABLE,
    "port not a number": f"postgresql://memex_app:{DB_PASSWORD}@127.0.0.1:notaport/memex",
    "unknown option": f"postgresql://memex_app:{DB_PASSWORD}@127.0.0.1:1/memex?frobnicate=1",
    "bad sslmode": f"postgresql://memex_app:{DB_PASSWORD}@127.0.0.1:1/memex?sslmode=bogus",
    "no scheme separator": f"postgresql//memex_app:{DB_PASSWORD}@127.0.0.1:1/memex",
    "unknown driver": f"mysql://memex_app:{DB_PASSWORD}@127.0.0.1:1/memex",
}


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "--debug"])
def test_the_cli_never_prints_the_database_password(data_dir, debug: bool) -> None:
    """`DATABASE_URL=postgresql://memex_app:PASSWORD@127.0.0.1:1/memex memex search ...`: one line
    saying the database cannot be reached, without the password; not even --debug's traceback."""
    env = {
        **os.environ,
        "MEMEX_DATA_DIR": data_dir,
        "DATABASE_URL": UNREACHABLE,
        "MEMEX_ADMIN_DATABASE_URL": UNREACHABLE.replace("memex_app", "memex_owner"),
    }
    argv = [sys.executable, "-m", "core", "search", "q", "--tenant", str(uuid4()), "--user", "x"] + (["--debug"] if debug else [])
    run = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode != 0 and run.stdout == ""
    assert DB_PASSWORD not in run.stderr, run.stderr
    if not debug:
        assert run.stderr.startswith("memex: error: cannot reach the database") and len(run.stderr.strip().splitlines()) == 1
    FIGURES["secrets: error paths checked"] += 1


@pytest.mark.parametrize("case", sorted(BAD_URLS))
def test_no_error_or_log_line_shows_the_database_password(monkeypatch, settings_from, caplog, capsys, case: str) -> None:
    """In-process, every logger at DEBUG: building the engines, the failing call, the CLI's line."""
    import core.db
    from core.cli import main

    monkeypatch.setenv("DATABASE_URL", BAD_URLS[case])
    monkeypatch.delenv("MEMEX_ADMIN_DATABASE_URL", raising=False)
    monkeypatch.setattr(core.db, "get_database", core.db._process_database.__wrapped__)  # a fresh Database, not the cached one
    caplog.set_level(logging.DEBUG)
    for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg", "core", "memex"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        code = main(["search", "q", "--tenant", str(uuid4()), "--user", "x"])
    finally:
        for name in ("sqlalchemy", "sqlalchemy.engine", "sqlalchemy.pool", "psycopg", "core", "memex"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    for text_ in (err, caplog.text, "\n".join(str(r.exc_info) for r in caplog.records if r.exc_info)):
        assert DB_PASSWORD not in text_, text_
    FIGURES["secrets: error paths checked"] += 1


def test_settings_and_engines_mask_the_passwords(monkeypatch, settings_from) -> None:
    monkeypatch.setenv("DATABASE_URL", UNREACHABLE)
    monkeypatch.setenv("MEMEX_ADMIN_DATABASE_URL", UNREACHABLE.replace("memex_app", "memex_owner"))
    settings = Settings()
    assert settings.database_url == UNREACHABLE  # the value is intact
    for shown in (repr(settings), str(settings), repr(get_settings())):
        assert DB_PASSWORD not in shown, shown
    db = Database(settings.database_url, settings.admin_database_url)
    try:
        for shown in (repr(db.app), str(db.app.url), repr(db.admin), str(db.admin.url), repr(db.app.pool)):
            assert DB_PASSWORD not in shown, shown
    finally:
        db.dispose()
    FIGURES["secrets: error paths checked"] += 1


def test_a_database_url_of_the_owner_is_refused_without_showing_its_password(db: Database, monkeypatch, settings_from) -> None:
    """DATABASE_URL naming the owner role (RLS would not hold it back in spirit: it owns the
    tables): memex refuses to start, naming the role, never the password."""
    socket_url = db.embedded.url("memex_owner").set(password=DB_PASSWORD)
    owner_as_app = Database(socket_url, None)
    try:
        with pytest.raises(Exception) as caught:
            owner_as_app.check_app_role()
    finally:
        owner_as_app.dispose()
    assert "memex_owner" in str(caught.value) and "bypasses row-level security" in str(caught.value)
    assert DB_PASSWORD not in str(caught.value) and DB_PASSWORD not in repr(caught.value)
    FIGURES["secrets: error paths checked"] += 1


def test_nothing_in_core_logs_or_prints_a_url_or_the_settings() -> None:
    """A static check over core/, app.py and pages/: no logging or printing of settings, URLs or
    passwords (str(url) masks the password, url.render_as_string(hide_password=False) would not)."""
    suspicious = ("hide_password=False", "get_settings())", "print(settings", "log.info(settings", ".database_url)")
    offenders = []
    for path in sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if ("log" in line or "print" in line or "st." in line) and any(s in line for s in suspicious):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


@pytest.mark.parametrize(
    "content",
    [
        b'[auth]\nclient_id = "memex"\nclient_secret = "s3cret-in-a-broken-file"\nserver_metadata_url = \n',  # no value
        b"explorer_login = 'unterminated\n",
        b"\xff\xfe not UTF-8 at all",
    ],
)
def test_a_secrets_file_that_cannot_be_read_stops_the_explorer_instead_of_opening_it(
    monkeypatch, settings_from, tmp_path, svc, store, user, tenant, content
) -> None:
    """A broken secrets file used to read as "no login configured": the explorer opened to anyone."""
    import streamlit as st
    from streamlit import config

    monkeypatch.delenv("MEMEX_EXPLORER_LOGIN", raising=False)
    secret_memory = f"behind a broken login {uuid4().hex}"
    svc.add_memory(store.id, secret_memory)
    broken = tmp_path / "secrets.toml"
    broken.write_bytes(content)
    saved = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(broken)])
    st.secrets._reset()
    try:
        at = AppTest.from_file(APP, default_timeout=120)
        at.query_params["tenant"], at.query_params["user"], at.query_params["store"] = tenant.name, user.name, "default"
        at.run()
    finally:
        config.set_option("secrets.files", saved)
        st.secrets._reset()
    assert not at.exception
    assert_locked(at, secret_memory)
    (error,) = at.error
    shown = error.value.replace("\\", "")  # the path as the reader sees it, without Markdown escapes
    assert shown.startswith("The explorer does not open: its secrets file") and str(broken) in shown and "cannot be read" in shown
    assert "s3cret-in-a-broken-file" not in page_output(at)
    FIGURES["access: unreadable secrets files refused"] += 1
