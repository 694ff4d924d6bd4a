"""The emulator's per-app rate limit and latency, over real HTTP with spotipy, and the
app's shared Spotify budget against it: real `flask --app app worker` processes on the
real test PostgreSQL, a crowd of simulated listeners seeded in bulk (bench/crowd.py).

A rate LIMIT answers 429 only when the app asks too much; the `rate_limit` fault switch
(test_faults, test_spotify_emulator) answers 429 whatever the traffic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest
import requests
import spotipy

from bench import crowd as crowd_seed
from emulator import crowd, rate_limit
from emulator import server as spotify_emulator
from emulator.listeners import served_top_track_ids
from helpers import query, wait_until

ROOT = Path(__file__).resolve().parents[1]
CLI_PORT = 5011  # this suite's helper range (PROTOCOL.md): 5010-5019


@pytest.fixture
def limited_emulator():
    """An emulator of this test's own, on the real clock, limit and latency off to start."""
    server = spotify_emulator.serve_in_thread()
    yield server
    server.stop()


def web_api(emulator_url: str, access_token: str) -> spotipy.Spotify:
    """spotipy as the app builds it: a plain session, so spotipy itself retries nothing."""
    client = spotipy.Spotify(
        auth=access_token, requests_session=requests.Session(), retries=0, status_retries=0, requests_timeout=5
    )
    client.prefix = emulator_url + "/v1/"
    return client


def answered(call) -> int:
    """The HTTP status of a spotipy call."""
    try:
        call()
    except spotipy.SpotifyException as error:
        return error.http_status
    return 200


def test_calls_past_the_apps_limit_answer_429_with_retry_after_and_are_counted(limited_emulator):
    first, second = limited_emulator.state.add_crowd(2)
    ava, bruno = (
        web_api(limited_emulator.base_url, first["access_token"]),
        web_api(limited_emulator.base_url, second["access_token"]),
    )
    calls = (
        lambda: ava.current_user_top_tracks(limit=5),
        lambda: ava.current_user_saved_tracks(limit=5),
        lambda: bruno.current_user_recently_played(limit=5),
    )
    for call in calls:  # once unlimited: the listeners' charts are computed, later calls are quick
        call()
    limited_emulator.rate_limit.configure(3, window=2.0)
    assert all(call()["items"] for call in calls)
    # the limit is the app's: another listener's token of the same app is refused too
    with pytest.raises(spotipy.SpotifyException) as refused:
        bruno.current_user_top_tracks(limit=5)
    assert refused.value.http_status == 429
    assert refused.value.headers["Retry-After"] in ("1", "2")
    assert "rate limit" in refused.value.msg
    counts = requests.get(limited_emulator.base_url + "/_emulator/rate-limit", timeout=5).json()
    assert counts | {"started_at": None} == {
        "requests": 3,
        "window": 2.0,
        "latency_ms": 0.0,
        "admitted": 3,
        "exceeded": 1,
        "peak_in_window": 3,
        "started_at": None,
    }
    # another app has a window of its own
    limited_emulator.state.register_client("other-app", "other-secret")
    [other] = limited_emulator.state.add_crowd(1, client_id="other-app")
    assert answered(web_api(limited_emulator.base_url, other["access_token"]).me) == 200
    # the window rolls on: the app is served again once its oldest calls have left it
    wait_until(lambda: answered(ava.me) == 200, "the window to roll on", timeout=10, interval=0.2)
    assert limited_emulator.rate_limit.describe()["exceeded"] >= 1


def test_every_call_takes_the_latency_a_network_would(limited_emulator):
    limited_emulator.rate_limit.configure(None, latency=0.3)
    [person] = limited_emulator.state.add_crowd(1)
    client = web_api(limited_emulator.base_url, person["access_token"])
    started = time.monotonic()
    client.current_user_recently_played(limit=1)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    requests.get(limited_emulator.base_url + "/_emulator/rate-limit", timeout=5)  # the emulator's own page: at once
    assert time.monotonic() - started < 0.3
    assert limited_emulator.rate_limit.describe()["latency_ms"] == 300


def test_the_limit_is_set_read_and_reset_over_http(limited_emulator):
    url = limited_emulator.base_url + "/_emulator/rate-limit"
    set_to = requests.post(url, json={"requests": 2, "window": 5, "latency_ms": 20}, timeout=5)
    assert set_to.status_code == 200
    assert {k: set_to.json()[k] for k in ("requests", "window", "latency_ms")} == {
        "requests": 2,
        "window": 5.0,
        "latency_ms": 20.0,
    }
    [person] = limited_emulator.state.add_crowd(1)
    client = web_api(limited_emulator.base_url, person["access_token"])
    assert [answered(client.me) for _ in range(3)] == [200, 200, 429]
    assert requests.delete(url, timeout=5).json()["exceeded"] == 0
    for body, said in (
        ({"requests": 0}, "at least 1"),
        ({"requests": 5, "window": -1}, "window"),
        ({"requests": "many"}, "whole number"),
        ({"limit": 5}, "expected"),
    ):
        refused = requests.post(url, json=body, timeout=5)
        assert refused.status_code == 400 and said in refused.json()["error"], body
    assert requests.get(url, timeout=5).json()["requests"] == 2  # a refused change changes nothing


def test_the_environment_configures_the_limit_and_latency():
    limit = rate_limit.from_env({"EMULATOR_RATE_LIMIT": "100/30", "EMULATOR_LATENCY_MS": "100"})
    assert (limit.requests, limit.window, limit.latency) == (100, 30.0, 0.1)
    assert rate_limit.from_env({"EMULATOR_RATE_LIMIT": "20"}).window == 30.0  # Spotify's window by default
    assert rate_limit.from_env({}).requests is None
    for value in ("lots", "0/30", "10/0"):
        with pytest.raises(ValueError, match="EMULATOR_RATE_LIMIT|rate limit"):
            rate_limit.from_env({"EMULATOR_RATE_LIMIT": value})


def emulator_process(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", "--quiet", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_command_line_runs_an_emulator_with_a_limit_and_latency():
    process = emulator_process(
        "--port", str(CLI_PORT), "--rate-limit", "2", "--rate-window", "10", "--latency-ms", "50"
    )
    url = f"http://127.0.0.1:{CLI_PORT}"
    try:

        def described():
            try:
                return requests.get(url + "/_emulator/rate-limit", timeout=1).json()
            except requests.ConnectionError:
                return None

        shown = wait_until(described, "the emulator process to answer", timeout=30, interval=0.1)
        assert (shown["requests"], shown["window"], shown["latency_ms"]) == (2, 10.0, 50.0)
        [person] = requests.post(url + "/_emulator/crowd", json={"count": 1}, timeout=10).json()["listeners"]
        client = web_api(url, person["access_token"])
        assert [answered(client.me) for _ in range(3)] == [200, 200, 429]
    finally:
        process.terminate()
        process.communicate(timeout=10)
    misspelt = emulator_process("--port", str(CLI_PORT), EMULATOR_RATE_LIMIT="lots")
    _, errors = misspelt.communicate(timeout=30)
    assert misspelt.returncode == 2
    assert "expected N or N/SECONDS" in errors and "Traceback" not in errors


def test_a_crowd_listens_like_the_demo_listeners_with_a_small_library(limited_emulator):
    listeners = requests.post(limited_emulator.base_url + "/_emulator/crowd", json={"count": 5}, timeout=10).json()
    fifth = listeners["listeners"][4]
    assert fifth["id"] == "crowd-5" and crowd.taste_of("crowd-5") == "ava"
    client = web_api(limited_emulator.base_url, fifth["access_token"])
    today = limited_emulator.state.now().date()
    top = client.current_user_top_tracks(limit=50, time_range="short_term")["items"]
    assert [t["id"] for t in top] == list(served_top_track_ids("ava", "short_term", today)[:50])
    assert client.current_user_saved_tracks(limit=1)["total"] == crowd.LIBRARY_SIZE
    assert client.me()["display_name"] == "Crowd listener 5"
    for body in ({"count": 0}, {"count": "ten"}, {}):
        assert requests.post(limited_emulator.base_url + "/_emulator/crowd", json=body, timeout=5).status_code == 400


# -- the app's shared budget against the limit ---------------------------------------------
PEOPLE = 24


def seeded_crowd(db: str, emulator) -> list[int]:
    listeners = crowd_seed.make_listeners(emulator.base_url, PEOPLE)
    with psycopg2.connect(db) as conn, conn.cursor() as cur:
        ids = crowd_seed.seed(cur, "test-secret", listeners, emulator.base_url)
    conn.close()
    return sorted(ids.values())


def worker(db: str, emulator, log: Path, **env: str) -> subprocess.Popen:
    """A real `flask --app app worker` process of this deployment."""
    settings = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "SPOTIFY", "JOBS_", "CAPTURE"))}
    settings |= {
        "DATABASE_URL": db,
        "FLASK_SECRET_KEY": "test-secret",
        "SPOTIFY_EMULATOR_URL": emulator.base_url,
        "SPOTIFY_REQUEST_TIMEOUT": "5",
        "CAPTURE_INTERVAL": "100000",  # the schedule queues nothing of its own here
        "JOBS_POLL_INTERVAL": "0.2",
        "JOBS_CONCURRENCY": "4",
        **env,
    }
    output = log.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=settings, stdout=output, stderr=output
    )


def capture_everyone(db: str, emulator, tmp_path: Path, user_ids: list[int], **env: str) -> None:
    """Queue a capture of every person, run two worker processes until all are done."""
    from app import create_app
    from jobs import capture

    app = create_app({"TESTING": True, "DATABASE_URL": db, "SECRET_KEY": "test-secret", "DB_POOL_MIN": 0})
    with app.app_context():
        for user_id in user_ids:
            capture.queue_capture(user_id)
    workers = [worker(db, emulator, tmp_path / f"worker{n}.log", **env) for n in range(2)]
    try:
        wait_until(
            lambda: query(db, "SELECT count(*) FROM capture_state WHERE last_captured_at IS NOT NULL")
            == [(len(user_ids),)],
            "every person captured",
            timeout=90,
            interval=0.2,
        )
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            try:
                process.wait(60)  # a graceful stop lets the jobs in hand finish first
            except subprocess.TimeoutExpired:
                process.kill()  # only cleanup: what the test asserts is already in the database
                process.wait(10)
        import database

        database.close_pool()


def test_a_call_that_waited_for_the_budget_row_takes_its_slot_from_when_it_got_the_row(db):
    """Two workers' calls must not go out together because one of them queued for the row:
    a slot is reckoned from the clock once the row is the caller's, not from before its wait."""
    from jobs import jobs_db

    spacing = 0.2
    holder, waiter = psycopg2.connect(db), psycopg2.connect(db)
    try:
        jobs_db.take_call_slot(holder.cursor(), spacing)  # a call takes its slot; the row stays locked
        taken: dict = {}
        waiter_pid = waiter.get_backend_pid()
        queued = threading.Thread(target=lambda: taken.update(jobs_db.take_call_slot(waiter.cursor(), spacing)))
        queued.start()
        wait_until(
            lambda: query(db, "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (waiter_pid,))
            == [("Lock",)],
            "the second call waiting for the budget row",
        )
        time.sleep(0.5)  # the first worker's transaction is slow to commit (a loaded machine)
        holder.commit()
        queued.join(10)
        waiter.commit()
        assert taken["wait"] == 0  # its slot came while it waited: it calls at once ...
        # ... and the next call is spaced from that moment, not from a slot already past
        [(ahead,)] = query(db, "SELECT extract(epoch FROM next_slot_at - clock_timestamp()) FROM spotify_rate_budget")
        assert ahead > spacing / 4, ahead
    finally:
        holder.close()
        waiter.close()


@pytest.mark.timeout(300)
def test_spotify_max_rps_below_the_limit_keeps_two_workers_from_ever_exceeding_it(db, limited_emulator, tmp_path):
    # The emulator allows 32 calls in any 2 s; two processes of 4 jobs each could make up
    # to ~160 a second (8 at once, 50 ms a call), the deployment allows 8. The limit leaves
    # room for 1.9 s of lateness: a call goes out after its slot (a commit, a wake-up, a
    # loaded machine), and late calls meet the next ones in one window. (CI once counted 9
    # calls in 1 s against a limit of 8 with 5 a second allowed: pacing is exact, lateness
    # is not.)
    limited_emulator.rate_limit.configure(32, window=2.0, latency=0.05)
    user_ids = seeded_crowd(db, limited_emulator)
    limited_emulator.rate_limit.reset_counts()
    capture_everyone(db, limited_emulator, tmp_path, user_ids, SPOTIFY_MAX_RPS="8")
    counts = limited_emulator.rate_limit.describe()
    assert counts["exceeded"] == 0, counts
    assert counts["admitted"] >= PEOPLE and counts["peak_in_window"] <= 32
    assert query(db, "SELECT count(DISTINCT user_id) FROM plays") == [(PEOPLE,)]


@pytest.mark.timeout(300)
def test_without_a_cap_the_workers_wait_out_the_limits_429s_and_every_capture_completes(db, limited_emulator, tmp_path):
    limited_emulator.rate_limit.configure(3, window=1.0, latency=0.05)
    user_ids = seeded_crowd(db, limited_emulator)
    limited_emulator.rate_limit.reset_counts()
    capture_everyone(db, limited_emulator, tmp_path, user_ids)
    assert limited_emulator.rate_limit.describe()["exceeded"] > 0  # the limit was hit ...
    # ... every 429 was shared through the budget and waited out: each capture succeeded
    assert query(db, "SELECT count(*) FROM capture_state WHERE failures = 0 AND last_error IS NULL") == [(PEOPLE,)]
    assert query(db, "SELECT count(DISTINCT user_id) FROM plays") == [(PEOPLE,)]
    [(limited,)] = query(db, "SELECT rate_limited_total FROM spotify_rate_budget")
    assert limited > 0
