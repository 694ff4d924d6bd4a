"""Background work on the real job engine: real workers (threads of this process, or
`flask --app app worker` processes), the real test PostgreSQL, the emulator over HTTP.

These tests run an emulator on the real clock whose listeners play a track every second
(the suite's shared emulator is frozen in time, so nothing new is ever played there).
"""

from __future__ import annotations

import signal
import time
from contextlib import contextmanager

import pytest

import database
from app import create_app
from emulator import server as spotify_emulator
from helpers import csrf_token, log_in, query, start_worker_process, user_id, wait_for_sync
from jobs.engine import WorkerThread


def wait_until(predicate, timeout: float, what: str, pause: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def live_emulator():
    server = spotify_emulator.serve_in_thread()
    server.state.play_interval = 1.0  # a new play every second, on the real clock
    yield server
    server.stop()


def jobs_config(db: str, emulator, **overrides) -> dict:
    return {
        "TESTING": True,
        "DATABASE_URL": db,
        "SECRET_KEY": "test-secret",
        "DB_POOL_MIN": 0,
        "SPOTIFY_EMULATOR_URL": emulator.base_url,
        "SPOTIPY_REDIRECT_URI": "http://127.0.0.1:5000/callback",
        "SPOTIFY_REQUEST_TIMEOUT": 2,
        "DEMO_BACKFILL_WEEKS": 1,
        "CAPTURE_INTERVAL": 2,
        "JOBS_POLL_INTERVAL": 0.2,
        "JOBS_STALLED_AFTER": 2,
        "JOBS_RETRY_BASE": 0.5,
        **overrides,
    }


@pytest.fixture
def make_app(db, live_emulator):
    made = []

    def make(**overrides):
        made.append(create_app(jobs_config(db, live_emulator, **overrides)))
        return made[-1]

    yield make
    database.close_pool()


@contextmanager
def running_worker(app):
    """A real worker of the job engine on a thread of this process, for the block."""
    worker = WorkerThread(app).start()
    try:
        yield worker
    finally:
        worker.stop()


def signed_in_and_synced(client, emulator, db: str, listener: str = "ava") -> int:
    log_in(client, emulator, listener)
    assert wait_for_sync(client)["status"] == "succeeded"
    return user_id(db, listener)


def plays(db: str, uid: int) -> list:
    return query(db, "SELECT played_at FROM plays WHERE user_id = %s ORDER BY played_at", (uid,))


def test_capture_keeps_every_new_play_without_a_click(make_app, live_emulator, db):
    app = make_app()
    client = app.test_client()
    with running_worker(app):
        uid = signed_in_and_synced(client, live_emulator, db)
        after_sync = len(plays(db, uid))
        # the listener goes on playing a track a second; captures every 2 s pick them up
        wait_until(lambda: len(plays(db, uid)) >= after_sync + 5, 30, "five new plays captured")
    stored = plays(db, uid)
    assert len(stored) == len(set(stored))
    [(cursor, failures)] = query(db, "SELECT after_ms, failures FROM capture_state WHERE user_id = %s", (uid,))
    assert cursor is not None and failures == 0
    assert cursor // 1000 == int(stored[-1][0].timestamp())  # the cursor is the newest play kept
    assert query(db, "SELECT count(*) FROM play_gaps") == [(0,)]


def test_more_than_fifty_plays_since_the_last_capture_is_a_gap_shown_on_settings(make_app, live_emulator, db):
    app = make_app(CAPTURE_INTERVAL=3600)
    client = app.test_client()
    with running_worker(app):
        uid = signed_in_and_synced(client, live_emulator, db)
        # as if the last capture was four days ago: Spotify has only the last 50 since
        with app.app_context():
            from jobs import capture

            query(
                db,
                "INSERT INTO capture_state (user_id, after_ms) "
                "VALUES (%s, (extract(epoch FROM now()) - 4 * 86400) * 1000) "
                "ON CONFLICT (user_id) DO UPDATE SET after_ms = EXCLUDED.after_ms",
                (uid,),
            )
            capture.queue_capture(uid)
        wait_until(lambda: query(db, "SELECT count(*) FROM play_gaps")[0][0] == 1, 30, "a gap recorded")
    page = client.get("/settings").get_data(as_text=True)
    assert "plays may be missing between" in page
    assert "Spotify keeps only your last 50 plays" in page


def test_a_click_during_a_running_sync_shows_that_run(make_app, live_emulator, db):
    app = make_app()
    client = app.test_client()
    live_emulator.faults.slow(1.0, path_prefix="/v1/me/tracks")  # the library pages take a while
    worker = WorkerThread(app).start()
    try:
        log_in(client, live_emulator, "ava")  # the first sync is queued and starts
        wait_until(
            lambda: client.get("/api/sync/status").get_json()["stage"].startswith("Reading your library"),
            30,
            "the sync reading the library",
        )
        response = client.post("/sync", data={"csrf_token": csrf_token(client, "/dashboard")}, follow_redirects=True)
        assert "A sync is already under way: here is its progress." in response.get_data(as_text=True)
        assert wait_for_sync(client)["status"] == "succeeded"
    finally:
        worker.stop()
    assert query(db, "SELECT count(*) FROM sync_runs") == [(1,)]
    assert query(db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'sync.user'") == [(1,)]


def test_a_failing_sync_backs_off_stops_after_its_bound_and_says_why(make_app, live_emulator, db):
    app = make_app(JOBS_MAX_ATTEMPTS=3)
    client = app.test_client()
    live_emulator.faults.server_error(503, path_prefix="/v1/me/top")
    worker = WorkerThread(app).start()
    try:
        log_in(client, live_emulator, "ava")
        status = wait_for_sync(client)
    finally:
        worker.stop()
    assert status["status"] == "failed"
    assert "Spotify answered with an error (503)" in status["error"]
    [(job_status, attempts)] = query(
        db, "SELECT status::text, attempts FROM procrastinate_jobs WHERE task_name = 'sync.user'"
    )
    assert (job_status, attempts) == ("failed", 3)
    retried = query(
        db,
        "SELECT count(*) FROM procrastinate_events e JOIN procrastinate_jobs j ON j.id = e.job_id "
        "WHERE j.task_name = 'sync.user' AND e.type = 'deferred_for_retry'",
    )
    assert retried == [(2,)]
    assert "Spotify answered with an error (503)" in client.get("/settings").get_data(as_text=True)


def test_a_worker_killed_mid_sync_loses_and_duplicates_nothing(make_app, live_emulator, db, tmp_path):
    app = make_app(SECRET_KEY="test-secret")
    client = app.test_client()
    live_emulator.faults.slow(1.0, path_prefix="/v1/me/tracks")
    log_in(client, live_emulator, "chen")  # queued; no worker yet
    first = start_worker_process(db, live_emulator, tmp_path, "first")
    second = None
    try:
        wait_until(
            lambda: client.get("/api/sync/status").get_json()["stage"].startswith("Reading your library"),
            60,
            "the sync under way in the worker process",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        live_emulator.faults.reset()
        second = start_worker_process(db, live_emulator, tmp_path, "second")
        status = wait_for_sync(client, timeout=90)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(20)
    assert status["status"] == "succeeded", status
    assert query(db, "SELECT count(*) FROM sync_runs") == [(1,)]  # the same run, carried on
    [(attempts,)] = query(db, "SELECT attempts FROM procrastinate_jobs WHERE task_name = 'sync.user'")
    assert attempts == 2
    counts = query(
        db,
        "SELECT count(*), count(DISTINCT (track_id, snapshot_date, time_range)), count(DISTINCT (snapshot_date, "
        "time_range, rank)) FROM snapshots",
    )
    assert counts[0][0] > 0 and counts[0][0] == counts[0][1] == counts[0][2]


def test_healthz_shows_the_queue_and_a_live_worker(make_app, live_emulator):
    app = make_app()
    client = app.test_client()
    worker = WorkerThread(app).start()
    try:
        jobs = wait_until(
            lambda: (j := client.get("/healthz").get_json()["jobs"])["live_workers"] >= 1 and j, 20, "a live worker"
        )
    finally:
        worker.stop()
    for key in ("waiting", "oldest_waiting_seconds", "running", "retrying", "failed_last_24h", "spotify"):
        assert key in jobs


def test_old_job_rows_are_cleaned_up_and_recent_ones_kept(make_app, db):
    app = make_app(JOBS_KEEP_HOURS=1)
    with app.app_context():
        from jobs.engine import defer

        old, recent = defer("jobs.refresh_tokens", timestamp=0), defer("jobs.refresh_tokens", timestamp=1)
    with running_worker(app):
        wait_until(
            lambda: query(
                db,
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' AND id IN (%s, %s)",
                (old, recent),
            )
            == [(2,)],
            30,
            "both jobs done",
        )
        query(db, "UPDATE procrastinate_events SET at = now() - interval '2 hours' WHERE job_id = %s", (old,))
        with app.app_context():
            cleanup = defer("jobs.remove_old_jobs", timestamp=0)
        wait_until(
            lambda: query(db, "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (cleanup,))
            == [("succeeded",)],
            30,
            "the clean-up done",
        )
    assert query(db, "SELECT id FROM procrastinate_jobs WHERE id IN (%s, %s)", (old, recent)) == [(recent,)]
