"""Fault drills on real job workers (``flask --app app worker`` processes), the real
PostgreSQL and the emulator over HTTP, on the real clock (conftest's ``live_emulator``: a
new play every second):

- PostgreSQL restarted under running workers;
- a 429 storm: every worker of every process waits out Retry-After, nobody calls meanwhile;
- a worker SIGKILLed every few seconds while captures and syncs run;
- the watchdog (``retry_stalled``) giving up on a job whose worker dies on every attempt;
- a used-up quota (429 ``QUOTA_EXCEEDED``) stopping scheduled work, shown on /healthz.

Each drill ends with every job done, no play lost and nothing doubled: the plays kept are
exactly those the emulator's listeners played over the span captured, each snapshot list
is whole and once, and every sync run asked for succeeded once. The full-length drills
(Retry-After 30 s, longer storms, more kills) are in bench/faults.py.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest

import database
import db_config
from app import create_app
from bench.job_faults import bursts  # one way of grouping 429s into rounds, the bench's
from emulator.listeners import parse_played_item
from emulator.live import plays_between
from helpers import (
    csrf_token,
    jobs_config,
    log_in,
    query,
    start_worker_process,
    stop_processes,
    user_id,
    wait_for_sync,
    wait_until,
)
from jobs.engine import WorkerThread

LISTENERS = ("ava", "bruno", "chen")
# Worker processes count as dead 10 s after their last heartbeat (2 s elsewhere in the
# tests): on a loaded machine a live worker's heartbeat can be late by seconds, and a live
# job taken for stalled would run twice.
WORKER = {"JOBS_STALLED_AFTER": "10", "CAPTURE_INTERVAL": "2", "JOBS_RETRY_BASE": "0.5"}
TASKS = ["sync.user", "capture.recently_played"]


# -- what every drill checks at the end -------------------------------------------------
def plays_lost_and_extra(db: str, emulator, listener: str) -> tuple[list, list]:
    """(plays the listener played that were neither kept nor inside a gap shown on
    /settings, plays kept that were never played), from the oldest play kept to the newest."""
    uid = user_id(db, listener)
    kept = set(query(db, "SELECT track_id, played_at FROM plays WHERE user_id = %s", (uid,)))
    first, last = min(at for _, at in kept), max(at for _, at in kept)
    state = emulator.state
    played = {
        (item, at.replace(microsecond=0))
        for item, at in plays_between(
            listener, first, last + timedelta(milliseconds=999), state.started_at, state.play_interval
        )
        if parse_played_item(item)[0] == "track"  # episodes and local files are not catalogue plays
    }
    # more than 50 plays between two captures (all Spotify keeps) are lost, but shown as a gap
    gaps = query(db, "SELECT after_play, before_play FROM play_gaps WHERE user_id = %s", (uid,))
    unseen = [(item, at) for item, at in played - kept if not any(a < at < b for a, b in gaps)]
    return sorted(unseen), sorted(kept - played)


def snapshot_doubles(db: str) -> list:
    """Snapshot lists holding a track twice or a rank twice: none after any drill. (A list
    may skip a rank: Spotify's top lists now and then hold a track twice, kept once.)"""
    return query(
        db,
        """SELECT user_id, snapshot_date, time_range, count(*), count(DISTINCT track_id), count(DISTINCT rank)
           FROM snapshots GROUP BY 1, 2, 3
           HAVING count(*) <> count(DISTINCT track_id) OR count(*) <> count(DISTINCT rank)""",
    )


def assert_nothing_lost_or_doubled(db: str, emulator, listeners=LISTENERS) -> None:
    for listener in listeners:
        lost, extra = plays_lost_and_extra(db, emulator, listener)
        assert (lost, extra) == ([], []), f"{listener}: {len(lost)} plays lost unseen, {len(extra)} never played"
    assert snapshot_doubles(db) == []
    # one run per request, every one finished well
    assert query(db, "SELECT status, count(*) FROM sync_runs GROUP BY status") == [
        ("succeeded", query(db, "SELECT count(*) FROM sync_runs")[0][0])
    ]
    runs_a_day = query(
        db, "SELECT count(*) FROM sync_runs GROUP BY user_id, date_trunc('day', started_at) HAVING count(*) > 4"
    )
    assert runs_a_day == []


def unfinished_jobs(db: str, up_to: int) -> list:
    return query(
        db,
        "SELECT id, task_name, status::text, attempts FROM procrastinate_jobs "
        "WHERE id <= %s AND task_name = ANY(%s) AND status <> 'succeeded' ORDER BY id",
        (up_to, TASKS),
    )


def last_job_id(db: str) -> int:
    return query(db, "SELECT coalesce(max(id), 0) FROM procrastinate_jobs")[0][0]


def captured_since(db: str, when: datetime, listeners=LISTENERS) -> bool:
    """Every listener's capture ran (and committed) after ``when``."""
    rows = query(
        db,
        "SELECT count(*) FROM capture_state c JOIN users u ON u.id = c.user_id "
        "WHERE u.spotify_id = ANY(%s) AND c.last_captured_at > %s",
        (list(listeners), when),
    )
    return rows[0][0] == len(listeners)


def settle(db: str, clients: dict, fault_over: datetime, mark: int, timeout: float = 180) -> None:
    """After a fault: every sync finished, every job queued up to ``mark`` done, and a
    capture of everyone after the fault (so the span checked covers it)."""
    for listener, client in clients.items():
        status = wait_for_sync(client, timeout=timeout)
        assert status["status"] == "succeeded", (listener, status)
    wait_until(lambda: not unfinished_jobs(db, mark), f"every job up to {mark} done", timeout=timeout, interval=0.3)
    wait_until(lambda: captured_since(db, fault_over), "a capture of everyone after the fault", timeout=timeout)


def sign_in_everyone(app, emulator) -> dict:
    clients = {listener: app.test_client() for listener in LISTENERS}
    for listener, client in clients.items():
        log_in(client, emulator, listener)
    for listener, client in clients.items():
        assert wait_for_sync(client, timeout=180)["status"] == "succeeded", listener
    return clients


def click_sync(client) -> None:
    response = client.post("/sync", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert response.status_code == 302, response.get_data(as_text=True)[-600:]


def syncing(db: str) -> bool:
    return bool(query(db, "SELECT 1 FROM procrastinate_jobs WHERE task_name = 'sync.user' AND status = 'doing'"))


def now() -> datetime:
    return datetime.now(UTC)


# -- (a) PostgreSQL restarted under running workers ----------------------------------------
@pytest.fixture
def restartable_db(tmp_path_factory):
    """A server of the drill's own: restarting it cannot disturb the rest of the suite."""
    server = db_config.EmbeddedPostgres(tmp_path_factory.mktemp("drill-postgres"), cleanup_mode="delete")
    url = server.url("drills")
    with psycopg2.connect(url) as conn:
        database.apply_schema(conn)
    conn.close()
    yield server, url
    database.close_pool()
    server.server().cleanup()


@pytest.mark.timeout(400)
def test_postgres_restarted_under_running_workers_loses_and_doubles_nothing(restartable_db, live_emulator, tmp_path):
    server, db = restartable_db
    app = create_app(jobs_config(db, live_emulator))
    workers = [start_worker_process(db, live_emulator, tmp_path, f"worker-{n}", **WORKER) for n in range(2)]
    try:
        clients = sign_in_everyone(app, live_emulator)
        wait_until(lambda: captured_since(db, now() - timedelta(days=1)), "everyone captured once", timeout=180)
        live_emulator.faults.slow(0.3, path_prefix="/v1/me/tracks")  # the syncs take a while
        for client in clients.values():
            click_sync(client)
        wait_until(lambda: syncing(db), "a sync under way", timeout=60)
        server.restart()  # every worker's connections die mid-job
        restarted = now()
        mark = last_job_id(db)
        live_emulator.faults.reset()
        settle(db, clients, restarted, mark)
        assert all(worker.poll() is None for worker in workers)  # they outlived the outage
    finally:
        stop_processes(*workers)
    assert_nothing_lost_or_doubled(db, live_emulator)
    assert query(db, "SELECT count(*) FROM sync_runs") == [(6,)]


# -- (b) a 429 storm ------------------------------------------------------------------------
RETRY_AFTER = 3  # the bench's storm says 30


def storm_calls(emulator) -> list[float]:
    rules = [r for r in emulator.faults.describe()["rules"] if r["kind"] == "rate_limit"]
    return [at for rule in rules for at in rule["fired_at"]]


@pytest.mark.timeout(400)
def test_a_429_storm_is_waited_out_by_every_worker_and_nobody_calls_meanwhile(make_app, live_emulator, db, tmp_path):
    app = make_app()
    workers = [start_worker_process(db, live_emulator, tmp_path, f"worker-{n}", **WORKER) for n in range(2)]
    try:
        clients = sign_in_everyone(app, live_emulator)
        wait_until(lambda: captured_since(db, now() - timedelta(days=1)), "everyone captured once", timeout=180)
        live_emulator.faults.rate_limit(retry_after=RETRY_AFTER)  # every Web API call, until reset
        for client in clients.values():
            click_sync(client)
        # the storm lasts three Retry-Afters: each time it passes, someone asks again
        wait_until(lambda: len(bursts(storm_calls(live_emulator))) >= 3, "three rounds of 429s", timeout=90)
        calls = storm_calls(live_emulator)
        live_emulator.faults.reset()
        over, mark = now(), last_job_id(db)
        settle(db, clients, over, mark)
    finally:
        stop_processes(*workers)
    rounds = bursts(calls)
    quiet = [later[0] - earlier[-1] for earlier, later in zip(rounds, rounds[1:], strict=False)]
    # between rounds every worker of both processes waited: not one call for Retry-After
    assert min(quiet) >= RETRY_AFTER - 0.5, quiet
    # a round is the calls already in flight: at most one per running job (2 x 8 slots)
    assert max(len(r) for r in rounds) <= 16, [len(r) for r in rounds]
    assert_nothing_lost_or_doubled(db, live_emulator)
    assert query(db, "SELECT rate_limited_total >= %s FROM spotify_rate_budget", (len(rounds),)) == [(True,)]


# -- (c) a worker SIGKILLed every few seconds -------------------------------------------------
@pytest.mark.timeout(400)
def test_workers_sigkilled_every_few_seconds_lose_and_double_nothing(make_app, live_emulator, db, tmp_path):
    app = make_app()
    settings = {"JOBS_MAX_ATTEMPTS": "10", **WORKER}  # a job may be hit by several of the kills
    workers = [start_worker_process(db, live_emulator, tmp_path, f"worker-{n}", **settings) for n in range(2)]
    killed = []
    try:
        clients = sign_in_everyone(app, live_emulator)
        live_emulator.faults.slow(0.3, path_prefix="/v1/me/")  # syncs and captures take a while
        rounds = 0
        # kill until at least three jobs were caught mid-way (bounded: twelve kills at most)
        while rounds < 12 and (rounds < 4 or retried_jobs(db) < 3):
            for client in clients.values():
                click_sync(client)
            wait_until(lambda: syncing(db), "a sync under way", timeout=60)
            victim = workers[rounds % 2]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            killed.append(victim)
            workers[rounds % 2] = start_worker_process(db, live_emulator, tmp_path, f"worker-{rounds}-b", **settings)
            rounds += 1
        live_emulator.faults.reset()
        over, mark = now(), last_job_id(db)
        settle(db, clients, over, mark)
    finally:
        stop_processes(*workers)
    assert retried_jobs(db) >= 3, "the kills caught no job mid-way"
    assert_nothing_lost_or_doubled(db, live_emulator)


def retried_jobs(db: str) -> int:
    """Jobs that ran more than once: with Spotify and the database healthy, only a kill does that."""
    return query(db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = ANY(%s) AND attempts > 0", (TASKS,))[0][
        0
    ]


# -- the watchdog: a job whose worker dies on every attempt ---------------------------------
@pytest.mark.timeout(400)
def test_a_sync_whose_worker_dies_on_every_attempt_is_given_up_and_the_person_told(
    make_app, live_emulator, db, tmp_path
):
    app = make_app(JOBS_MAX_ATTEMPTS=2)
    client = app.test_client()
    settings = {"JOBS_MAX_ATTEMPTS": "2", **WORKER}
    live_emulator.faults.slow(1.0, path_prefix="/v1/me/tracks")  # each attempt is slow enough to be killed in
    log_in(client, live_emulator, "dana")  # the first sync is queued; no worker yet
    workers = []
    try:
        for attempt in range(2):
            workers.append(start_worker_process(db, live_emulator, tmp_path, f"worker-{attempt}", **settings))
            wait_until(
                lambda a=attempt: query(
                    db, "SELECT status::text, attempts FROM procrastinate_jobs WHERE task_name = 'sync.user'"
                )
                == [("doing", a)],
                f"attempt {attempt + 1} under way",
                timeout=90,
                interval=0.2,
            )
            workers[-1].send_signal(signal.SIGKILL)
            workers[-1].wait(10)
        # a worker that is left: its watchdog finds the job stalled once more, and gives up
        workers.append(start_worker_process(db, live_emulator, tmp_path, "watchdog", **settings))
        status = wait_for_sync(client, timeout=90)
    finally:
        stop_processes(*workers)
    assert status["status"] == "failed"
    assert status["error"] == "The sync was interrupted too many times; please run it again."
    assert query(db, "SELECT status::text, attempts FROM procrastinate_jobs WHERE task_name = 'sync.user'") == [
        ("failed", 2)
    ]
    assert "The sync was interrupted too many times" in client.get("/settings").get_data(as_text=True)
    # the periodic jobs the kills also caught mid-way (token refresh, enrichment) may be
    # given up beside it; the sync is counted once
    assert app.test_client().get("/healthz").get_json()["jobs"]["failed_last_24h"]["sync.user"] == 1
    assert snapshot_doubles(db) == []


# -- QUOTA_EXCEEDED: scheduled work stops, the operator sees it -------------------------------
def jobs_of(db: str, task: str) -> int:
    return query(db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s", (task,))[0][0]


def ticks_done(db: str) -> int:
    return query(db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'jobs.tick' AND status = 'succeeded'")[
        0
    ][0]


def test_a_used_up_quota_stops_scheduled_work_until_the_operator_resumes_it(make_app, live_emulator, db):
    app = make_app()
    client = app.test_client()
    worker = WorkerThread(app).start()
    try:
        log_in(client, live_emulator, "ava")
        assert wait_for_sync(client)["status"] == "succeeded"
        uid = user_id(db, "ava")
        wait_until(lambda: captured_since(db, now() - timedelta(days=1), ["ava"]), "a first capture", timeout=30)
        live_emulator.faults.rate_limit(retry_after=3600, reason="QUOTA_EXCEEDED")
        health = wait_until(
            lambda: (j := client.get("/healthz").get_json()["jobs"])["spotify"]["quota_exceeded"] and j,
            "the operator told on /healthz",
            timeout=30,
        )
        assert health["spotify"]["quota_message"] == "Spotify says this app's quota is used up."
        # the capture that met it is not retried, and the tick queues nothing more
        wait_until(
            lambda: query(
                db, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = %s AND status = 'todo'", (TASKS[1],)
            )
            == [(0,)],
            "no capture waiting",
            timeout=30,
        )
        captures, calls = jobs_of(db, TASKS[1]), len(storm_calls(live_emulator))
        query(db, "UPDATE users SET last_synced_at = now() - interval '2 days' WHERE id = %s", (uid,))  # a snapshot due
        query(db, "UPDATE capture_state SET next_capture_at = now() WHERE user_id = %s", (uid,))  # a capture due
        ticks = ticks_done(db)
        wait_until(lambda: ticks_done(db) >= ticks + 3, "three more ticks", timeout=30)
        assert jobs_of(db, TASKS[1]) == captures and jobs_of(db, TASKS[0]) == 1
        assert len(storm_calls(live_emulator)) == calls  # nobody asked Spotify again
        failed = query(db, "SELECT status::text, attempts FROM procrastinate_jobs WHERE task_name = %s", (TASKS[1],))
        assert ("failed", 1) in failed
        # the quota is back; the operator resumes, and capture goes on at the next tick
        live_emulator.faults.reset()
        result = app.test_cli_runner().invoke(args=["jobs-resume"])
        assert result.exit_code == 0 and "resumes" in result.output
        assert not client.get("/healthz").get_json()["jobs"]["spotify"]["quota_exceeded"]
        resumed = now()
        wait_until(lambda: captured_since(db, resumed, ["ava"]), "a capture after the resume", timeout=30)
    finally:
        worker.stop()
