"""Access to the explorer and secrets: with a password (MEMEX_APP_PASSWORD or secrets'
app_password) or OIDC configured, nothing but the sign-in shows until the visitor is in; the
password never reaches the page; DATABASE_URL's password never reaches an error, a log line or
a traceback."""

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

from core.config import Settings, get_settings
from core.db import Database
from tests.apptest import APP

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


def submit(at: AppTest, password: str) -> AppTest:
    at.text_input[0].input(password)
    return at.button[0].click().run()


@pytest.mark.parametrize("where", ["MEMEX_APP_PASSWORD", "secrets app_password"])
def test_with_a_password_the_app_shows_only_the_password_form_until_the_right_one(
    monkeypatch, settings_from, svc, store, user, tenant, where
) -> None:
    secret_memory = f"only for the signed-in {uuid4().hex}"
    svc.add_memory(store.id, secret_memory)
    secrets = {}
    if where == "MEMEX_APP_PASSWORD":
        monkeypatch.setenv("MEMEX_APP_PASSWORD", PASSWORD)
    else:
        monkeypatch.delenv("MEMEX_APP_PASSWORD", raising=False)
        secrets["app_password"] = PASSWORD
    at = app(tenant, user, **secrets)
    assert [t.label for t in at.text_input] == ["Password"] and at.text_input[0].proto.type == at.text_input[0].proto.PASSWORD
    assert [b.label for b in at.button] == ["Enter"]
    assert_locked(at, secret_memory)
    for wrong in ("", "wrong", PASSWORD[:-1], PASSWORD + " ", PASSWORD.upper()):
        at = submit(at, wrong)
        assert [e.value for e in at.error] == ["Wrong password."]
        assert_locked(at, secret_memory)
        FIGURES["access: wrong passwords refused"] += 1
    assert PASSWORD not in page_output(at)
    at = submit(at, PASSWORD)
    assert not at.exception and not at.error
    assert [s.value for s in at.sidebar.selectbox] == [tenant.name, user.name, "default"]
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"
    assert secret_memory in page_output(at)
    assert PASSWORD not in page_output(at)
    assert all(PASSWORD not in repr(at.session_state[k]) for k in at.session_state)  # not even kept in the session
    at.run()  # signed in for the rest of the session
    assert not at.exception and [t.value for t in at.title] == ["Overview"]
    assert not [t for t in at.text_input if t.label == "Password"]
    FIGURES["access: sign-ins checked"] += 1


def test_without_a_password_or_oidc_the_app_is_open(monkeypatch, settings_from, svc, store, user, tenant) -> None:
    monkeypatch.delenv("MEMEX_APP_PASSWORD", raising=False)
    svc.add_memory(store.id, "open on localhost")
    at = app(tenant, user)
    assert not at.exception and not [t for t in at.text_input if t.label == "Password"]
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"


OIDC = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "cookie-s3cret-do-not-show",
    "client_id": "memex-explorer",
    "client_secret": "client-s3cret-do-not-show",
    "server_metadata_url": "https://accounts.example.com/.well-known/openid-configuration",
}


def test_with_oidc_configured_nothing_shows_until_signed_in_and_no_secret_reaches_the_page(
    monkeypatch, settings_from, svc, store, user, tenant
) -> None:
    monkeypatch.setenv("MEMEX_APP_PASSWORD", PASSWORD)  # OIDC wins over the password
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
    assert all(OIDC[k] not in output for k in ("cookie_secret", "client_secret")) and PASSWORD not in output
    at.user = {"is_logged_in": True, "email": "ana@example.com", "name": "Ana"}
    at.run()
    assert not at.exception and not at.error
    assert "Signed in as ana@example.com" in [c.value for c in at.sidebar.caption]
    assert {m.label: m.value for m in at.metric}["Memories"] == "1"
    assert all(OIDC[k] not in page_output(at) for k in ("cookie_secret", "client_secret"))
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
    monkeypatch.setattr(core.db, "get_database", core.db.get_database.__wrapped__)  # a fresh Database, not the cached one
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
    monkeypatch.setenv("MEMEX_APP_PASSWORD", PASSWORD)
    settings = Settings()
    assert settings.database_url == UNREACHABLE and settings.app_password == PASSWORD  # the values are intact
    for shown in (repr(settings), str(settings), repr(get_settings())):
        assert DB_PASSWORD not in shown and PASSWORD not in shown, shown
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
    suspicious = ("hide_password=False", "get_settings())", "print(settings", "log.info(settings", ".database_url)", "app_password)")
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
        b"app_password = 'unterminated\n",
        b"\xff\xfe not UTF-8 at all",
    ],
)
def test_a_secrets_file_that_cannot_be_read_stops_the_explorer_instead_of_opening_it(
    monkeypatch, settings_from, tmp_path, svc, store, user, tenant, content
) -> None:
    """A broken secrets file used to read as "no login configured": the explorer opened to anyone."""
    import streamlit as st
    from streamlit import config

    monkeypatch.delenv("MEMEX_APP_PASSWORD", raising=False)
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
