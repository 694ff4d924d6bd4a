"""Background work on the real job engine: real workers (threads of this process, or
`flask --app app worker` processes), the real test PostgreSQL, the emulator over HTTP.

These tests run an emulator on the real clock whose listeners play a track every second
(the suite's shared emulator is frozen in time, so nothing new is ever played there):
conftest's ``live_emulator`` and ``make_app``. The fault drills are in test_job_drills.py.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from datetime import date

import psycopg2

import database
from helpers import csrf_token, log_in, query, start_worker_process, stop_processes, user_id, wait_for_sync, wait_until
from jobs.engine import WorkerThread


@contextmanager
def running_worker(app):
    """A real worker of the job engine on a thread of this process, for the block."""
    worker = WorkerThread(app).start()
    try:
        yield worker
    finally:
        worker.stop()


def click_while_reading_the_library(client, what: str) -> None:
    """Once the running sync reads the library, "Sync now" shows that run, starting none."""
    wait_until(
        lambda: client.get("/api/sync/status").get_json()["stage"].startswith("Reading your library"),
        what,
        timeout=60,
    )
    response = client.post("/sync", data={"csrf_token": csrf_token(client, "/dashboard")}, follow_redirects=True)
    assert "A sync is already under way: here is its progress." in response.get_data(as_text=True)


def signed_in_and_synced(client, emulator, db: str, listener: str = "ava") -> int:
    log_in(client, emulator, listener)
    assert wait_for_sync(client)["status"] == "succeeded"
    return user_id(db, listener)


def plays(db: str, uid: int) -> list:
    return query(db, "SELECT played_at FROM plays WHERE user_id = %s ORDER BY played_at", (uid,))


def capture_from_two_weeks_ago(app, db: str, uid: int) -> None:
    """Queue a capture as if the last one was two weeks ago: Spotify has only the last 50
    since. (Four days was too few: a demo listener's plays vary by day, and some four-day
    stretches hold fewer than 50, so no gap was due and the tests failed by the date.)"""
    query(
        db,
        "INSERT INTO capture_state (user_id, after_ms) "
        "VALUES (%s, (extract(epoch FROM now()) - 14 * 86400) * 1000) "
        "ON CONFLICT (user_id) DO UPDATE SET after_ms = EXCLUDED.after_ms",
        (uid,),
    )
    with app.app_context():
        from jobs import capture

        capture.queue_capture(uid)


def test_capture_keeps_every_new_play_without_a_click(make_app, live_emulator, db):
    app = make_app()
    client = app.test_client()
    with running_worker(app):
        uid = signed_in_and_synced(client, live_emulator, db)
        after_sync = len(plays(db, uid))
        # the listener goes on playing a track a second; captures every 2 s pick them up
        wait_until(lambda: len(plays(db, uid)) >= after_sync + 5, "five new plays captured", timeout=30)
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
        # as if the last capture was two weeks ago: Spotify has only the last 50 since
        query(db, "DELETE FROM plays WHERE user_id = %s", (uid,))  # what the first sync kept
        capture_from_two_weeks_ago(app, db, uid)
        wait_until(lambda: query(db, "SELECT count(*) FROM play_gaps")[0][0] == 1, "a gap recorded", timeout=30)
    page = client.get("/settings").get_data(as_text=True)
    assert "plays may be missing between" in page
    assert "Spotify keeps only your last 50 plays" in page


def test_a_full_page_is_a_gap_even_when_a_sync_kept_the_same_last_fifty(make_app, live_emulator, db):
    # The 429 drill's case: the captures were held back for longer than 50 plays, a sync
    # ran meanwhile and kept the last 50 Spotify had; the plays before those are gone, and
    # the capture that follows must say so rather than trust the sync's plays as its cursor
    app = make_app(CAPTURE_INTERVAL=3600)
    client = app.test_client()
    with running_worker(app):
        uid = signed_in_and_synced(client, live_emulator, db)
        [(oldest_kept,)] = query(db, "SELECT min(played_at) FROM plays WHERE user_id = %s", (uid,))
        capture_from_two_weeks_ago(app, db, uid)
        wait_until(lambda: query(db, "SELECT count(*) FROM play_gaps")[0][0] == 1, "a gap recorded", timeout=30)
    [(after_play, before_play)] = query(db, "SELECT after_play, before_play FROM play_gaps WHERE user_id = %s", (uid,))
    assert after_play < oldest_kept  # the plays before the sync's page are inside the gap shown
    assert "plays may be missing between" in client.get("/settings").get_data(as_text=True)


def test_a_click_during_a_running_sync_shows_that_run(make_app, live_emulator, db):
    app = make_app()
    client = app.test_client()
    live_emulator.faults.slow(1.0, path_prefix="/v1/me/tracks")  # the library pages take a while
    worker = WorkerThread(app).start()
    try:
        log_in(client, live_emulator, "ava")  # the first sync is queued and starts
        click_while_reading_the_library(client, "the sync reading the library")
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
    first = start_worker_process(db, live_emulator, tmp_path, "first", CAPTURE_INTERVAL="3600")
    second = None
    try:
        wait_until(
            lambda: client.get("/api/sync/status").get_json()["stage"].startswith("Reading your library"),
            "the sync under way in the worker process",
            timeout=60,
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        live_emulator.faults.reset()
        second = start_worker_process(db, live_emulator, tmp_path, "second", CAPTURE_INTERVAL="3600")
        status = wait_for_sync(client, timeout=90)
    finally:
        stop_processes(first, second)
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
            lambda: (j := client.get("/healthz").get_json()["jobs"])["live_workers"] >= 1 and j,
            "a live worker",
            timeout=20,
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
            "both jobs done",
            timeout=30,
        )
        query(db, "UPDATE procrastinate_events SET at = now() - interval '2 hours' WHERE job_id = %s", (old,))
        with app.app_context():
            cleanup = defer("jobs.remove_old_jobs", timestamp=0)
        wait_until(
            lambda: query(db, "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (cleanup,))
            == [("succeeded",)],
            "the clean-up done",
            timeout=30,
        )
    assert query(db, "SELECT id FROM procrastinate_jobs WHERE id IN (%s, %s)", (old, recent)) == [(recent,)]


def test_a_person_who_logs_in_once_gets_new_plays_and_a_new_snapshot_each_day_without_a_click(
    make_app, live_emulator, db
):
    app = make_app()
    client = app.test_client()
    today = date.today()
    with running_worker(app):
        uid = signed_in_and_synced(client, live_emulator, db)
        plays_at_login = len(plays(db, uid))
        # a day later, as the schedule sees it: the last sync yesterday, today's snapshot not taken
        query(db, "DELETE FROM snapshots WHERE user_id = %s AND snapshot_date = %s", (uid, today))
        query(db, "UPDATE users SET last_synced_at = last_synced_at - interval '1 day' WHERE id = %s", (uid,))
        query(
            db,
            "UPDATE sync_runs SET started_at = started_at - interval '1 day', "
            "finished_at = finished_at - interval '1 day' WHERE user_id = %s",
            (uid,),
        )
        live_emulator.faults.slow(0.5, path_prefix="/v1/me/tracks")  # the daily sync takes a while
        # a click meanwhile shows that scheduled run's progress; it starts no second sync
        click_while_reading_the_library(client, "the daily sync, queued by the schedule, under way")
        live_emulator.faults.reset()
        assert wait_for_sync(client)["status"] == "succeeded"
        wait_until(lambda: len(plays(db, uid)) >= plays_at_login + 3, "new plays captured", timeout=30)
    assert query(db, "SELECT count(*) > 0 FROM snapshots WHERE user_id = %s AND snapshot_date = %s", (uid, today)) == [
        (True,)
    ]
    assert query(db, "SELECT count(*) FROM sync_runs WHERE user_id = %s", (uid,)) == [(2,)]  # login, then the day's


def test_housekeeping_renews_an_access_token_before_it_runs_out(make_app, live_emulator, db):
    app = make_app(CAPTURE_INTERVAL=3600)
    client = app.test_client()
    with running_worker(app):
        uid = signed_in_and_synced(client, live_emulator, db)
        query(db, "UPDATE spotify_tokens SET expires_at = now() + interval '2 minutes' WHERE user_id = %s", (uid,))
        [(before,)] = query(db, "SELECT access_token_encrypted FROM spotify_tokens WHERE user_id = %s", (uid,))
        with app.app_context():
            from jobs.engine import defer

            job = defer("jobs.refresh_tokens", timestamp=0)
        wait_until(
            lambda: query(db, "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job,)) == [("succeeded",)],
            "the token refresh done",
            timeout=30,
        )
    [(after, lasts)] = query(
        db,
        "SELECT access_token_encrypted, expires_at > now() + interval '50 minutes' FROM spotify_tokens "
        "WHERE user_id = %s",
        (uid,),
    )
    assert bytes(after) != bytes(before) and lasts  # a new token, good for the next hour


def test_daily_snapshots_are_spread_over_the_day_each_person_once_a_day(conn):
    """The tick's question (jobs_db.users_due_for_snapshot) for 2,000 people: whoever last
    synced yesterday is due once their second of today has come, so the number due grows
    evenly with the time of day (all at one moment, e.g. midnight, would give all or
    nothing); whoever synced today already, by hand or by schedule, is not due again
    before tomorrow."""
    from jobs import jobs_db

    people = 2000
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO users (spotify_id) SELECT 'spread-' || n FROM generate_series(1, %s) n RETURNING id",
            (people,),
        )
        ids = {row[0] for row in cur.fetchall()}
        cur.execute(
            "INSERT INTO spotify_tokens (user_id, refresh_token_encrypted, expires_at) "
            "SELECT id, '\\x00'::bytea, now() FROM users WHERE id = ANY(%s)",
            (list(ids),),
        )

        def due_after_syncing_at(moment: str) -> set:
            cur.execute(f"UPDATE users SET last_synced_at = {moment} WHERE id = ANY(%s)", (list(ids),))
            due = set(jobs_db.users_due_for_snapshot(cur, 10 * people)) & ids
            assert due == set(jobs_db.users_due_for_snapshot(cur, 10 * people)) & ids  # stable
            return due

        assert due_after_syncing_at("NULL") == ids  # never synced: due at once
        cur.execute("SELECT extract(epoch FROM now() - date_trunc('day', now())) / 86400")
        part_of_today_gone = float(cur.fetchone()[0])
        yesterday = due_after_syncing_at("date_trunc('day', now()) - interval '2 hours'")
        assert abs(len(yesterday) - people * part_of_today_gone) <= 0.05 * people, (len(yesterday), part_of_today_gone)
        # synced by hand at the start of today: today's snapshot is there, nobody's slot repeats it
        assert due_after_syncing_at("date_trunc('day', now()) + (now() - date_trunc('day', now())) / 100") == set()
        assert due_after_syncing_at("now()") == set()


def test_a_worker_started_before_init_db_says_to_run_it_and_starts_once_it_has(make_database, emulator, tmp_path):
    """A newcomer who starts a worker first reads what to do, not a guess about a lost
    connection; the worker needs no restart after ``init-db``."""
    db = make_database(schema=False)
    worker = start_worker_process(db, emulator, tmp_path, "early")
    log = tmp_path / "early.log"
    try:
        advice = "the database has no tables yet: run `flask --app app init-db`"
        wait_until(lambda: advice in log.read_text(), "the worker's advice", timeout=60, interval=0.2)
        assert "connection was lost" not in log.read_text() and "Traceback" not in log.read_text()
        with psycopg2.connect(db) as conn:
            database.apply_schema(conn)
        conn.close()
        wait_until(
            lambda: query(db, "SELECT count(*) FROM procrastinate_workers")[0][0] > 0,
            "the worker to start working",
            timeout=60,
            interval=0.2,
        )
    finally:
        stop_processes(worker)
