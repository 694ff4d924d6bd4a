"""A slow or locked database never hangs a request: every statement of the web's sessions
is bounded (statement, lock and idle-in-transaction timeouts), a request past them gets
the quick "Busy right now" 503 with Retry-After, /healthz says "slow" within its own
bound, and syncs, exports and the CLI take longer bounds per transaction."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import psycopg2
import pytest
import requests

import database
import spotify
import sync
from app import create_app
from gunicorn_server import start_app
from helpers import query, sign_in_and_sync
from jobs.engine import WorkerThread

POOL_TIMEOUT = 2.0


def bounded_app(db: str, emulator, **config):
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db,
            "SECRET_KEY": "test-secret",
            "DB_POOL_MIN": 0,
            "DB_POOL_TIMEOUT": POOL_TIMEOUT,
            "SPOTIFY_EMULATOR_URL": emulator.base_url,
            **config,
        }
    )

    @application.get("/test-sleep")
    def sleep():
        database.get_db().cursor().execute("SELECT pg_sleep(30)")
        return "slept"

    return application


@pytest.fixture
def bounded(db, emulator):
    application = bounded_app(db, emulator, DB_STATEMENT_TIMEOUT=0.5, DB_LOCK_TIMEOUT=0.3)
    yield application
    database.close_pool()


@pytest.fixture
def signed_in(bounded, db):
    [(user_id,)] = query(db, "INSERT INTO users (spotify_id, display_name) VALUES ('bounds', 'B') RETURNING id")
    client = bounded.test_client()
    with client.session_transaction() as session:
        session["user_id"] = user_id
    return client


class HeldLock:
    """``LOCK TABLE ... IN ACCESS EXCLUSIVE MODE`` from another connection, as a migration
    or a careless psql session would hold it."""

    def __init__(self, db: str, table: str):
        self.conn = psycopg2.connect(db)
        with self.conn.cursor() as cur:
            cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    def release(self):
        self.conn.rollback()
        self.conn.close()


@pytest.fixture
def users_locked(db):
    lock = HeldLock(db, "users")
    yield lock
    if not lock.conn.closed:
        lock.release()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_pages_answer_busy_503_quickly_while_users_is_locked(signed_in, users_locked):
    for path in ("/dashboard", "/api/charts/turnover", "/settings/export.csv"):
        response, took = timed(lambda p=path: signed_in.get(p))
        assert response.status_code == 503, path
        assert response.headers["Retry-After"] == "1"
        assert "Busy right now" in response.get_data(as_text=True)
        assert took < POOL_TIMEOUT, (path, took)
    users_locked.release()
    assert signed_in.get("/api/charts/turnover").status_code == 200  # the same pool serves again
    assert database.get_pool().stats()["in_use"] == 0


def test_healthz_reports_a_locked_database_as_slow_within_its_own_bound(bounded, users_locked):
    response, took = timed(lambda: bounded.test_client().get("/healthz"))
    assert response.status_code == 503 and response.headers["Retry-After"]
    body = response.get_json()
    assert body["database"] == "slow" and "did not answer within 1 s" in body["error"]
    assert took < 1.5
    users_locked.release()
    assert bounded.test_client().get("/healthz").status_code == 200


def test_healthz_reports_a_full_pool_as_slow_not_after_the_pool_timeout(db, emulator):
    application = bounded_app(db, emulator, DB_POOL_MAX=1, DB_HEALTH_TIMEOUT=0.5)
    try:
        held = database.get_pool().getconn()
        response, took = timed(lambda: application.test_client().get("/healthz"))
        database.get_pool().putconn(held)
        assert response.status_code == 503 and response.get_json()["database"] == "slow"
        assert took < 1.0  # its own bound, not DB_POOL_TIMEOUT's 2 s
    finally:
        database.close_pool()


def test_a_runaway_statement_is_cancelled_at_the_statement_timeout(bounded):
    response, took = timed(lambda: bounded.test_client().get("/test-sleep", headers={"Accept": "application/json"}))
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["title"] == "Busy right now"
    assert took < 2


def test_web_sessions_carry_the_bounds_and_long_running_lifts_them_for_one_transaction(db, emulator):
    application = bounded_app(db, emulator, DB_STATEMENT_TIMEOUT=4, DB_LOCK_TIMEOUT=0.25)
    try:
        with application.app_context(), database.connection() as conn:

            def show():
                with conn.cursor() as cur:
                    cur.execute("SHOW statement_timeout; ")
                    statement = cur.fetchone()[0]
                    cur.execute("SHOW lock_timeout")
                    lock = cur.fetchone()[0]
                    cur.execute("SHOW idle_in_transaction_session_timeout")
                    return statement, lock, cur.fetchone()[0]

            assert show() == ("4s", "250ms", "30s")
            with database.transaction(conn) as cur:
                database.long_running(cur)
                assert show() == ("10min", "1min", "10min")
            assert show() == ("4s", "250ms", "30s")  # back to the web's bounds after the commit
    finally:
        database.close_pool()


def test_the_urls_own_options_are_kept_beside_the_bounds(db, emulator):
    application = bounded_app(
        db, emulator, DATABASE_URL=db + ("&" if "?" in db else "?") + "options=-c%20application_name%3Dmine"
    )
    try:
        with application.app_context(), database.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT current_setting('application_name'), current_setting('lock_timeout')")
            assert cur.fetchone() == ("mine", "500ms")
    finally:
        database.close_pool()


def seconds_waiting_on_a_lock(db: str) -> float:
    rows = query(
        db,
        "SELECT extract(epoch FROM now() - query_start) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND state = 'active' AND datname = current_database()",
    )
    return max((float(r[0]) for r in rows), default=0.0)


def test_a_sync_waits_for_a_lock_longer_than_a_page_would(db, emulator):
    """The sync's write takes the job bounds: a table locked past 3x DB_LOCK_TIMEOUT
    delays it, it does not fail it."""
    application = bounded_app(
        db,
        emulator,
        DB_LOCK_TIMEOUT=0.3,
        DEMO_BACKFILL_WEEKS=0,
        SPOTIPY_REDIRECT_URI="http://127.0.0.1:5000/callback",
    )
    worker = WorkerThread(application).start()  # runs the first sync the login queues
    try:
        client = sign_in_and_sync(application.test_client(), emulator, "chen")
        worker.stop()  # the sync under test runs in this test's own thread
        [(user_id,)] = query(db, "SELECT id FROM users WHERE spotify_id = 'chen'")
        lock = HeldLock(db, "saved_tracks")
        outcome: dict = {}

        def run():
            with application.app_context():
                outcome.update(sync.sync_now(spotify.settings_for(application), user_id))

        syncing = threading.Thread(target=run)
        syncing.start()
        deadline = time.monotonic() + 60
        while seconds_waiting_on_a_lock(db) < 1.0 and time.monotonic() < deadline and syncing.is_alive():
            time.sleep(0.05)
        waited = seconds_waiting_on_a_lock(db)
        lock.release()
        syncing.join(60)
        assert waited >= 1.0, outcome  # it was still waiting, well past the web's 0.3 s
        assert "summary" in outcome, outcome
        assert client.get("/api/sync/status").get_json()["status"] == "succeeded"
    finally:
        worker.stop()
        database.close_pool()


# -- under gunicorn, as the Procfile runs it -------------------------------------------
def session_cookie(user_id: int) -> str:
    signer = create_app({"TESTING": True, "SECRET_KEY": "gunicorn-test-secret", "DATABASE_URL": "postgresql://x/y"})
    return signer.session_interface.get_signing_serializer(signer).dumps({"user_id": user_id})


def test_gunicorn_answers_every_request_within_the_pool_timeout_while_users_is_locked(db, emulator, tmp_path):
    [(user_id,)] = query(db, "INSERT INTO users (spotify_id, display_name) VALUES ('locked', 'L') RETURNING id")
    server = start_app(
        tmp_path, db, emulator, threads=2, FLASK_SECRET_KEY="gunicorn-test-secret", DB_POOL_TIMEOUT=str(POOL_TIMEOUT)
    )
    try:
        answers_while_users_is_locked(server, db, user_id)
    finally:
        server.stop()  # also when an assertion failed: no gunicorn outlives its test


def answers_while_users_is_locked(server, db: str, user_id: int) -> None:
    cookie = {"Cookie": f"session={session_cookie(user_id)}", "Accept": "application/json"}
    lock = HeldLock(db, "users")
    try:

        def get(path):
            started = time.monotonic()
            response = requests.get(server.url + path, headers=cookie, timeout=30)
            return path, response.status_code, response.headers.get("Retry-After"), time.monotonic() - started

        with ThreadPoolExecutor(8) as pool:  # 8 at once on 2 threads: most of them queue
            answers = list(pool.map(get, ["/dashboard"] * 6 + ["/healthz", "/api/sync/status"]))
    finally:
        lock.release()
    assert all(status == 503 and retry for _, status, retry, _ in answers), answers
    # unbounded, they would wait for the lock as long as it is held; the bench measures the
    # exact figure (bench/faults.py), this allows for a busy test machine
    assert max(took for *_, took in answers) < POOL_TIMEOUT + 2, answers
    recovered = requests.get(server.url + "/api/sync/status", headers=cookie, timeout=5)
    assert recovered.status_code == 200
