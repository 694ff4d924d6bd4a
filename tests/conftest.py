"""Shared fixtures: a real PostgreSQL for every database test.

By default the suite starts its own embedded PostgreSQL in a temporary directory (deleted
at the end); ``TEST_DATABASE_URL`` points it at another server instead (a superuser URL:
the suite creates and drops its own databases there).

Fixtures, after Flask's tutorial: ``app``, ``client``, ``runner``. Database fixtures:
``postgres_admin_url``, ``db_url`` (a session database with the schema), ``make_database``
(a fresh database per call), ``conn`` (one transaction per test, rolled back at the end).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from psycopg2 import sql

import database
import db_config
import people_data
import spotify
from app import create_app
from emulator import server as spotify_emulator
from jobs.engine import WorkerThread

ROOT = Path(__file__).resolve().parents[1]

# The emulator's "now": frozen, so top tracks and libraries are the same in every run.
FROZEN_NOW = datetime(2026, 11, 2, 18, 30, tzinfo=UTC)


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    """The suite's own embedded PostgreSQL, started once, deleted at the end."""
    server = db_config.EmbeddedPostgres(tmp_path_factory.mktemp("embedded"), cleanup_mode="delete")
    server.server()
    yield server
    server.server().cleanup()


@pytest.fixture(scope="session")
def postgres_admin_url(request):
    external = os.environ.get("TEST_DATABASE_URL", "").strip()
    if external:
        return db_config.normalize_database_url(external, setting="TEST_DATABASE_URL")
    return request.getfixturevalue("embedded_server").admin_url()


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database name swapped for ``name``."""
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


def create_database(admin_url: str, schema: bool, template: str | None = None) -> str:
    """A new, uniquely named database; with ``template`` it is a copy of that one (the
    schema already applied), which is three times faster than applying the schema again."""
    name = f"mtm_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        if schema and template:
            cur.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY WAL_LOG").format(
                    sql.Identifier(name), sql.Identifier(template)
                )
            )
        else:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    url = database_url(admin_url, name)
    if schema and not template:
        with psycopg2.connect(url) as new_conn:
            database.apply_schema(new_conn)
        new_conn.close()
    return url


def drop_database(admin_url: str, url: str) -> None:
    name = psycopg2.extensions.parse_dsn(url)["dbname"]
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


@pytest.fixture(scope="session")
def schema_template(postgres_admin_url):
    """A database with the schema applied, never connected to again: the template that
    every test database is copied from."""
    url = create_database(postgres_admin_url, schema=True)
    yield psycopg2.extensions.parse_dsn(url)["dbname"]
    drop_database(postgres_admin_url, url)


@pytest.fixture(scope="session")
def db_url(postgres_admin_url, schema_template):
    url = create_database(postgres_admin_url, schema=True, template=schema_template)
    yield url
    drop_database(postgres_admin_url, url)


@pytest.fixture
def make_database(postgres_admin_url, schema_template):
    """Factory: ``make_database(schema=True)`` -> URL of a brand-new database, dropped after the test."""
    made = []

    def make(schema: bool = True) -> str:
        made.append(create_database(postgres_admin_url, schema, template=schema_template))
        return made[-1]

    yield make
    for url in made:
        drop_database(postgres_admin_url, url)


@pytest.fixture
def conn(db_url):
    """A connection inside one transaction that is rolled back when the test ends.

    ``transaction_depth = 1`` turns every ``database.transaction()`` on it into a
    savepoint, so code under test behaves as in production yet nothing is kept.
    """
    connection = psycopg2.connect(db_url, connection_factory=database.Connection)
    connection.transaction_depth = 1
    yield connection
    connection.rollback()
    connection.close()


@pytest.fixture
def app(db_url, conn, emulator):
    """The app on the session database; each request uses the test's rolled-back ``conn``."""
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db_url,
            "SECRET_KEY": "test",
            "DB_POOL_MIN": 0,
            "SPOTIFY_EMULATOR_URL": emulator.base_url,
        }
    )

    @application.before_request
    def use_test_connection():
        from flask import g

        g.db_conn = conn

    yield application
    database.close_pool()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def people(conn) -> dict:
    """ava and bob with tracks, snapshots, a library and a playlist (tests/people_data.py), on
    the rolled-back ``conn``: their ids, and bob's playlist's."""
    return people_data.seed(conn)


@pytest.fixture
def played_history(conn):
    """A year and a half of one listener's plays and a few of another's
    (tests/plays_factory.seed_history) on the rolled-back ``conn``."""
    from plays_factory import seed_history

    with conn.cursor() as cur:
        return seed_history(cur)


@pytest.fixture
def signed_in_with_plays(client, played_history):
    """A client signed in as the listener of ``played_history``."""
    from helpers import log_in_as

    log_in_as(client, played_history.me)
    return client


class FrozenDate(date):
    @classmethod
    def today(cls):
        return date(2026, 2, 10)


@pytest.fixture
def fixed_signed_in(app, client, conn, monkeypatch):
    """A client signed in as ``me`` of the hand-made data set (tests/insights_data.py) on
    the rolled-back ``conn``; the dashboard's "today" is 2026-02-10. Returns (client, ids)."""
    import dashboard
    from insights_data import load_fixed_data

    monkeypatch.setattr(dashboard, "date", FrozenDate)
    users = load_fixed_data(conn.cursor())
    with client.session_transaction() as session:
        session["user_id"] = users["me"]
    return client, users


@pytest.fixture(scope="session")
def emulator():
    """One Spotify emulator for the session (real HTTP on a free port), clock frozen."""
    server = spotify_emulator.serve_in_thread()
    server.state.set_now(FROZEN_NOW)
    yield server
    server.stop()


@pytest.fixture
def live_emulator():
    """An emulator of its own on the real clock, whose listeners play a track every second
    (the session's emulator is frozen: nothing new is ever played there)."""
    server = spotify_emulator.serve_in_thread()
    server.state.play_interval = 1.0
    yield server
    server.stop()


@pytest.fixture
def make_app(db, live_emulator):
    """Factory: ``make_app(**config)`` -> the app on ``db`` and the live emulator, with the
    job engine's intervals in seconds (``helpers.jobs_config``); no worker of its own."""
    from helpers import jobs_config

    def make(**overrides):
        return create_app(jobs_config(db, live_emulator, **overrides))

    yield make
    database.close_pool()


@pytest.fixture
def clean_emulator(emulator):
    emulator.faults.reset()
    yield emulator
    emulator.faults.reset()


@pytest.fixture
def allowlist(emulator):
    """Set the emulator's development-mode allowlist for one test; everyone is let in
    again after it (``allowlist(["ava"])``)."""
    yield emulator.state.set_allowed_users
    emulator.state.set_allowed_users(None)


@pytest.fixture
def db(make_database):
    """A fresh database with the schema, for tests where the app commits (and syncs run on threads)."""
    return make_database(schema=True)


@pytest.fixture
def spotify_app(db, clean_emulator, request):
    """The app in demo mode on the session emulator and a fresh database.

    Two weeks of demo history keep tests fast; parametrize indirectly with a number of
    weeks for more (``@pytest.mark.parametrize("spotify_app", [26], indirect=True)``).
    """
    weeks = getattr(request, "param", 2)
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db,
            "SECRET_KEY": "test-secret",
            "DB_POOL_MIN": 0,
            "SPOTIFY_EMULATOR_URL": clean_emulator.base_url,
            "SPOTIPY_REDIRECT_URI": "http://127.0.0.1:5000/callback",
            "SPOTIFY_REQUEST_TIMEOUT": 1,
            "DEMO_BACKFILL_WEEKS": weeks,
            "JOBS_POLL_INTERVAL": 0.2,
            "JOBS_STALLED_AFTER": 3,
            "JOBS_RETRY_BASE": 0.5,
        }
    )
    # a real job worker, in this process, runs the syncs the app queues
    worker = WorkerThread(application).start()
    yield application
    worker.stop()
    deadline = time.monotonic() + 10
    while database.get_pool().stats()["in_use"] and time.monotonic() < deadline:
        time.sleep(0.05)  # let a background sync finish before its database goes
    database.close_pool()


@pytest.fixture
def logged_in(spotify_app, emulator):
    """Factory: ``logged_in("ava")`` -> a test client logged in as that demo listener,
    its first sync finished."""
    from helpers import sign_in_and_sync

    def make(listener: str = "ava"):
        return sign_in_and_sync(spotify_app.test_client(), emulator, listener)

    return make


@pytest.fixture
def live_server(spotify_app):
    """The app served over real HTTP on a free port (for the browser); yields its base URL."""
    from werkzeug.serving import make_server

    # the callback must come back to this server, so let demo mode derive it from the request
    spotify_app.extensions["spotify"] = dataclasses.replace(spotify.settings_for(spotify_app), redirect_uri="")
    server = make_server("127.0.0.1", 0, spotify_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    thread.join(5)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (no browser download)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser page; ``page.console_errors`` collects console errors and page errors."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    new_page = context.new_page()
    new_page.console_errors = []
    new_page.on("console", lambda message: message.type == "error" and new_page.console_errors.append(message.text))
    new_page.on("pageerror", lambda error: new_page.console_errors.append(str(error)))
    yield new_page
    context.close()


def browser_log_in(page, base_url: str, listener: str = "ava") -> None:
    """Log in through the emulator's consent page, as a person would, and wait for the first sync."""
    page.goto(base_url + "/login")
    page.get_by_role("button", name="Log in with Spotify").last.click()
    page.check(f"input[name=user_id][value={listener}]")
    page.get_by_role("button", name="Agree").click()
    page.wait_for_url(base_url + "/dashboard")
    page.wait_for_function("() => !document.body.innerText.includes('Running:')", timeout=60_000)


DOCS = Path(__file__).resolve().parents[1] / "docs"
# The ids of the shown chart canvases drawn outside their own figure: none, on any page (a
# missing box once let every chart of /listening cover the whole page).
CHARTS_OUTSIDE_THEIR_FIGURE = """() => [...document.querySelectorAll('figure canvas')].filter(canvas => {
    const c = canvas.getBoundingClientRect(), f = canvas.closest('figure').getBoundingClientRect();
    return canvas.checkVisibility()
        && (c.top < f.top || c.bottom > f.bottom || c.left < f.left || c.right > f.right); }).map(c => c.id)"""
CHARTS_AT_REST = """() => typeof Chart === 'undefined' || [...document.querySelectorAll('canvas')]
    .map(canvas => Chart.getChart(canvas)).every(chart => !chart || !Chart.animator.running(chart))"""


def screenshot(page, name: str, fallback_dir: Path, whole_page: bool = True) -> Path:
    """Write ``name`` to docs/ with ``MTM_SCREENSHOTS=1`` (else to ``fallback_dir``): the README's pictures.

    Playwright's ``full_page`` capture resizes the page while it draws, which makes Chart.js
    redraw mid-capture (chromium 156 drew the charts over the top of the page). So the
    viewport itself is grown to the page's height, the charts are left to settle, and the
    screenshot is of that viewport; the viewport is put back afterwards.
    """
    directory = DOCS if os.environ.get("MTM_SCREENSHOTS") else fallback_dir
    directory.mkdir(exist_ok=True)
    viewport = page.viewport_size
    if whole_page:
        height = page.evaluate("document.documentElement.scrollHeight")
        page.set_viewport_size({"width": viewport["width"], "height": max(height, viewport["height"])})
    page.wait_for_function(CHARTS_AT_REST)
    page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
    path = directory / name
    page.screenshot(path=str(path))
    page.set_viewport_size(viewport)
    return path
