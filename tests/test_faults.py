"""Fast fault tests (each well under 3 s); the slow ones under gunicorn are in bench/faults.py.

Spotify slow / 5xx / 429 are covered in test_spotify_sync.py.
"""

from __future__ import annotations

import os
import threading
import time

import psycopg2
import pytest

import database
import sync
from app import create_app
from helpers import csrf_token, log_in, query, sign_in_and_sync, wait_for_sync
from helpers import user_id as listener_id


def test_pool_exhausted_request_gets_503_with_retry_after_within_pool_timeout(db, clean_emulator):
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db,
            "SECRET_KEY": "test-secret",
            "DB_POOL_MIN": 0,
            "DB_POOL_MAX": 1,
            "DB_POOL_TIMEOUT": 0.3,
            "SPOTIFY_EMULATOR_URL": clean_emulator.base_url,
        }
    )
    client = app.test_client()
    [(user,)] = query(db, "INSERT INTO users (spotify_id) VALUES ('pool-test') RETURNING id")
    with client.session_transaction() as session:
        session["user_id"] = user
    held = database.get_pool().getconn()  # every slot busy
    try:
        started = time.monotonic()
        response = client.get("/api/sync/status")
        waited = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "1"
        assert response.get_json()["error"]["title"] == "Busy right now"
        assert 0.25 <= waited < 0.3 + 1
    finally:
        database.get_pool().putconn(held)
    assert client.get("/api/sync/status").status_code == 200  # the slot serves again
    assert database.get_pool().stats()["in_use"] == 0
    database.close_pool()


def _backend_waiting_on(db_url: str, table: str, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # the only statement that can wait on a lock here is the sync's (the text may be cut
        # before the table name: track_activity_query_size)
        rows = query(
            db_url,
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND state = 'active' "
            "AND datname = current_database()",
        )
        if rows:
            return rows[0][0]
        time.sleep(0.02)
    raise AssertionError(
        f"no sync waited on {table}: "
        + repr(
            query(
                db_url,
                "SELECT state, wait_event_type, left(query, 80) FROM pg_stat_activity "
                "WHERE datname = current_database()",
            )
        )
    )


def test_sync_whose_connection_dies_mid_write_is_rolled_back_and_retried_by_the_engine(spotify_app, emulator, db):
    blocker = psycopg2.connect(db)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE saved_tracks IN ACCESS EXCLUSIVE MODE")  # the write transaction stops here
    client = spotify_app.test_client()
    try:
        log_in(client, emulator, "ava")  # starts the first sync in the background
        backend = _backend_waiting_on(db, "saved_tracks", timeout=60)  # a worker picks it up, then fetches
        query(db, "SELECT pg_terminate_backend(%s)", (backend,))  # as if the server lost that session
    finally:
        blocker.rollback()
        blocker.close()
    # the first attempt's writes were rolled back; the job engine ran it again by itself
    assert wait_for_sync(client)["status"] == "succeeded"
    assert query(db, "SELECT attempts FROM procrastinate_jobs WHERE task_name = 'sync.user'") == [(2,)]  # two runs
    assert query(db, "SELECT count(*) FROM sync_runs") == [(1,)]  # one run, retried, not two
    ranked = query(db, "SELECT count(*), count(DISTINCT (track_id, snapshot_date, time_range)) FROM snapshots")
    assert ranked[0][0] > 0 and ranked[0][0] == ranked[0][1]
    assert client.post("/sync", data={"csrf_token": csrf_token(client, "/dashboard")}).status_code == 302
    assert wait_for_sync(client)["status"] == "succeeded"
    assert database.get_pool().stats()["in_use"] == 0


def test_a_run_left_by_a_killed_worker_does_not_block_the_next_sync(spotify_app, emulator, db):
    sign_in_and_sync(spotify_app.test_client(), emulator, "bruno")
    user_id = listener_id(db, "bruno")
    child = os.fork()
    if child == 0:  # a worker that starts a sync and is killed before it records an outcome
        try:
            conn = psycopg2.connect(db)
            with conn.cursor() as cur:
                import sync_runs_db

                sync_runs_db.start_run(cur, user_id, sync.this_worker(), sync.worker_alive)
            conn.commit()
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    with spotify_app.app_context():
        run_id = sync.start_run(user_id)  # the dead worker's run does not block it
    assert run_id
    assert query(db, "SELECT status, error FROM sync_runs WHERE user_id = %s AND id <> %s", (user_id, run_id))[-1] == (
        "failed",
        "The sync was interrupted (the server restarted or the worker died). Please run it again.",
    )


def test_concurrent_syncs_of_one_person_run_once(spotify_app, emulator, db):
    sign_in_and_sync(spotify_app.test_client(), emulator, "chen")
    user_id = listener_id(db, "chen")
    outcomes, barrier = [], threading.Barrier(8)

    def start():
        barrier.wait()
        with spotify_app.app_context():
            try:
                outcomes.append(sync.start_run(user_id))
            except sync.SyncAlreadyRunning:
                outcomes.append(None)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len([o for o in outcomes if o]) == 1 and outcomes.count(None) == 7
    assert query(db, "SELECT count(*) FROM sync_runs WHERE user_id = %s AND status = 'running'", (user_id,))[0][0] == 1


def test_a_live_workers_run_still_blocks_a_second_sync(spotify_app, emulator, db):
    sign_in_and_sync(spotify_app.test_client(), emulator, "ava")
    user_id = listener_id(db, "ava")
    with spotify_app.app_context():
        sync.start_run(user_id)  # this process is alive and its heartbeat fresh
        with pytest.raises(sync.SyncAlreadyRunning):
            sync.start_run(user_id)
    query(db, "UPDATE sync_runs SET heartbeat_at = now() - interval '3 minutes' WHERE status = 'running'")
    with spotify_app.app_context():
        assert sync.start_run(user_id)  # silent for longer than SILENT_AFTER: dead wherever it ran


def test_a_sync_that_fails_during_an_outage_still_records_its_outcome(spotify_app, emulator, db, monkeypatch):
    sign_in_and_sync(spotify_app.test_client(), emulator, "chen")
    user_id = listener_id(db, "chen")
    real_transaction, failures = database.transaction, {"left": 2}

    def flaky_transaction(*args, **kwargs):  # the database is down for the first two tries
        if failures["left"]:
            failures["left"] -= 1
            raise database.DatabaseUnavailable("cannot connect to the database")
        return real_transaction(*args, **kwargs)

    with spotify_app.app_context():
        run_id = sync.start_run(user_id)
        monkeypatch.setattr(database, "transaction", flaky_transaction)  # write_despite_outage's
        sync.record_outcome(run_id, {"error": "The database failed during the sync"}, pause=0.01)
    assert failures["left"] == 0  # it was down, and waited out
    assert query(db, "SELECT status FROM sync_runs WHERE id = %s", (run_id,)) == [("failed",)]
