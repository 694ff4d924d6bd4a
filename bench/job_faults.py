"""Fault drills of the job engine, full length (bench/faults.py runs them: --only
jobs-restart,jobs-429,jobs-kill). The fast versions are tests/test_job_drills.py.

Two ``flask --app app worker`` processes, the app under gunicorn for the log-ins and
clicks (JOBS_EMBEDDED_WORKER=0: the workers are only those two), a standalone emulator
whose listeners play a track every 2 s, captures every 10 s. Each drill ends when every
sync asked for has finished and every job queued before the fault's end is done; then:

- plays: the ones kept for each listener are those the emulator says they played between
  the oldest and the newest kept: none invented, and none lost unless more than 50 came
  between two captures (all Spotify keeps), which must lie in a gap shown on /settings
  (plays are unique per person and second by the schema, so none doubled);
- snapshots: no list holds a track or a rank twice; sync runs: every one succeeded;
- jobs: none failed.

1. jobs-restart: PostgreSQL restarted while both workers sync and capture.
2. jobs-429: every Web API call answers 429 with Retry-After: 30 for three rounds: between
   rounds not one call reaches the emulator (every worker of both processes waits it out
   through the shared budget in PostgreSQL); a round is only the calls already in flight.
3. jobs-kill: a worker SIGKILLed every few seconds (alternately, a fresh one started each
   time), 12 kills while syncs and captures run.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import http_load_lib as lib  # noqa: E402
from emulator.listeners import parse_played_item  # noqa: E402
from emulator.live import plays_between  # noqa: E402

LISTENERS = ("ava", "bruno", "chen")
TASKS = ["sync.user", "capture.recently_played"]
RETRY_AFTER = 30
PLAY_INTERVAL = 2.0


class JobStack:
    """An emulator on the real clock, gunicorn without a worker, two worker processes."""

    def __init__(self, stack: lib.Stack):
        self.stack = stack
        port = lib.free_port()
        env = dict(os.environ, EMULATOR_PLAY_INTERVAL=str(PLAY_INTERVAL))
        stack.start("live-emulator", [str(lib.VENV_BIN / "python"), "-m", "emulator", "--port", str(port)], env=env)
        self.emulator_url = f"http://127.0.0.1:{port}"
        lib.wait_until(lambda: requests.get(self.emulator_url + "/_emulator/users", timeout=2).ok, 60, "the emulator")
        self.settings = {
            "CAPTURE_INTERVAL": "10",
            "JOBS_STALLED_AFTER": "10",
            "JOBS_POLL_INTERVAL": "0.5",
            "JOBS_RETRY_BASE": "2",
            "DEMO_BACKFILL_WEEKS": "1",
            "SPOTIFY_REQUEST_TIMEOUT": "5",
        }
        self.app = stack.gunicorn(
            "jobs-web",
            emulator_url=self.emulator_url,
            extra_env={"JOBS_EMBEDDED_WORKER": "0", **self.settings},
        )
        self.workers = [self.worker(f"jobs-worker-{n}") for n in range(2)]
        self.browsers = {listener: lib.Browser(self.app.url, listener).log_in() for listener in LISTENERS}
        for browser in self.browsers.values():
            status = browser.wait_for_sync(timeout=600)
            if status["status"] != "succeeded":
                raise RuntimeError(f"{browser.listener}'s first sync: {status}")
        self.wait_for_captures(datetime.now(UTC) - timedelta(days=1))

    def worker(self, name: str) -> lib.Process:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIPY_", "SPOTIFY_", "DB_", "DATABASE_URL"))}
        env |= {
            "DATABASE_URL": self.stack.db_url,
            "FLASK_SECRET_KEY": self.stack.secret_key,
            "SPOTIFY_EMULATOR_URL": self.emulator_url,
            "LOG_LEVEL": "WARNING",
            **self.settings,
        }
        return self.stack.start(name, [str(lib.VENV_BIN / "flask"), "--app", "app", "worker"], env=env)

    def emulator_state(self) -> dict:
        return requests.get(self.emulator_url + "/_emulator/faults", timeout=10).json()

    def faults(self, body: dict | None = None, reset: bool = False) -> None:
        if reset:
            requests.delete(self.emulator_url + "/_emulator/faults", timeout=10)
        else:
            requests.post(self.emulator_url + "/_emulator/faults", json=body or {}, timeout=10)

    def q(self, sql: str, params=()):
        return lib.query(self.stack.db_url, sql, params)

    def wait_for_captures(self, since: datetime, timeout: float = 300) -> None:
        def captured():
            rows = self.q("SELECT count(*) FROM capture_state WHERE last_captured_at > %s", (since,))
            return rows[0][0] >= len(LISTENERS)

        lib.wait_until(captured, timeout, "a capture of everyone", interval=0.5)

    def last_job(self) -> int:
        return self.q("SELECT coalesce(max(id), 0) FROM procrastinate_jobs")[0][0]

    def syncing(self) -> bool:
        return bool(self.q("SELECT 1 FROM procrastinate_jobs WHERE task_name = 'sync.user' AND status = 'doing'"))

    def click_syncs(self) -> None:
        for browser in self.browsers.values():
            browser.start_sync()

    def settle(self, fault_over: datetime, mark: int, timeout: float = 600) -> float:
        """Seconds until every sync finished and every job up to ``mark`` is done."""
        started = time.monotonic()
        for browser in self.browsers.values():
            browser.wait_for_sync(timeout=timeout)

        def done():
            return not self.q(
                "SELECT 1 FROM procrastinate_jobs WHERE id <= %s AND task_name = ANY(%s) "
                "AND status IN ('todo', 'doing') LIMIT 1",
                (mark, TASKS),
            )

        lib.wait_until(done, timeout, "every job done", interval=0.5)
        self.wait_for_captures(fault_over, timeout)
        return time.monotonic() - started

    def integrity(self) -> tuple[bool, str]:
        live = self.emulator_state()
        started_at = datetime.fromisoformat(live["started_at"])
        lost = extra = kept_total = shown = 0
        for listener in LISTENERS:
            [(uid,)] = self.q("SELECT id FROM users WHERE spotify_id = %s", (listener,))
            kept = set(self.q("SELECT track_id, played_at FROM plays WHERE user_id = %s", (uid,)))
            first, last = min(at for _, at in kept), max(at for _, at in kept)
            played = {
                (item, at.replace(microsecond=0))
                for item, at in plays_between(
                    listener, first, last + timedelta(milliseconds=999), started_at, live["play_interval"]
                )
                if parse_played_item(item)[0] == "track"
            }
            gaps = self.q("SELECT after_play, before_play FROM play_gaps WHERE user_id = %s", (uid,))
            missing = played - kept
            shown += sum(1 for _, at in missing if any(a < at < b for a, b in gaps))
            lost, extra, kept_total = lost + len(missing), extra + len(kept - played), kept_total + len(kept)
        doubled = self.q(
            """SELECT count(*) FROM (SELECT 1 FROM snapshots GROUP BY user_id, snapshot_date, time_range
               HAVING count(*) <> count(DISTINCT track_id) OR count(*) <> count(DISTINCT rank)) d"""
        )[0][0]
        runs = dict(self.q("SELECT status, count(*) FROM sync_runs GROUP BY status"))
        failed = dict(
            self.q(
                "SELECT task_name, count(*) FROM procrastinate_jobs WHERE status = 'failed' AND task_name = ANY(%s) "
                "GROUP BY 1",
                (TASKS,),
            )
        )
        gaps = self.q("SELECT count(*) FROM play_gaps")[0][0]
        # Spotify keeps 50 plays: more since the last capture are lost, and must be shown
        ok = lost == shown and extra == 0 and doubled == 0 and set(runs) == {"succeeded"} and not failed
        return ok, (
            f"plays kept {kept_total}: lost {lost} (inside a gap shown on /settings: {shown}; gaps {gaps}), "
            f"never played {extra}; snapshot lists doubled "
            f"{doubled}; sync runs {runs}; failed jobs {failed or 0}"
        )

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.app.process.stop()


def drill_restart(jobs: JobStack, verdict) -> None:
    jobs.faults({"slow": {"delay": 0.5, "path_prefix": "/v1/me/tracks"}})
    jobs.click_syncs()
    lib.wait_until(jobs.syncing, 120, "a sync under way")
    down = time.monotonic()
    jobs.stack.postgres.restart()
    outage = time.monotonic() - down
    over, mark = datetime.now(UTC), jobs.last_job()
    jobs.faults(reset=True)
    took = jobs.settle(over, mark)
    alive = all(w.alive() for w in jobs.workers)
    ok, numbers = jobs.integrity()
    verdict(
        "jobs-restart: PostgreSQL restarted under 2 worker processes: every job completes, nothing lost or doubled",
        ok and alive,
        f"outage {outage:.1f} s; every sync and job done {took:.0f} s after it; both workers alive: {alive}; {numbers}",
    )


def bursts(times: list[float], apart: float = 2.0) -> list[list[float]]:
    groups: list[list[float]] = []
    for at in sorted(times):
        if groups and at - groups[-1][-1] < apart:
            groups[-1].append(at)
        else:
            groups.append([at])
    return groups


def storm_calls(jobs: JobStack) -> list[float]:
    return [at for rule in jobs.emulator_state()["rules"] if rule["kind"] == "rate_limit" for at in rule["fired_at"]]


def drill_429(jobs: JobStack, verdict) -> None:
    jobs.faults({"rate_limit": {"retry_after": RETRY_AFTER}})
    started = time.monotonic()
    jobs.click_syncs()
    lib.wait_until(lambda: len(bursts(storm_calls(jobs))) >= 3, 10 * RETRY_AFTER, "three rounds of 429s", interval=1)
    calls = storm_calls(jobs)
    jobs.faults(reset=True)
    storm = time.monotonic() - started
    over, mark = datetime.now(UTC), jobs.last_job()
    took = jobs.settle(over, mark)
    rounds = bursts(calls)
    quiet = [later[0] - earlier[-1] for earlier, later in zip(rounds, rounds[1:], strict=False)]
    ok, numbers = jobs.integrity()
    waited = bool(quiet) and min(quiet) >= RETRY_AFTER - 0.5
    verdict(
        f"jobs-429: a storm of 429 Retry-After: {RETRY_AFTER}: every worker waits it out, nobody calls meanwhile",
        waited and max(len(r) for r in rounds) <= 16,
        f"storm {storm:.0f} s, {len(calls)} calls answered 429 in {len(rounds)} rounds of "
        f"{[len(r) for r in rounds]} calls; quiet between rounds {', '.join(f'{q:.1f}' for q in quiet)} s "
        f"(no call at all for Retry-After {RETRY_AFTER} s)",
    )
    verdict(
        "jobs-429: after the storm every job completes, nothing lost or doubled",
        ok,
        f"every sync and job done {took:.0f} s after the storm; {numbers}",
    )


def drill_kill(jobs: JobStack, verdict, kills: int = 12) -> None:
    jobs.faults({"slow": {"delay": 0.3, "path_prefix": "/v1/me/"}})
    before = jobs.q("SELECT count(*) FROM procrastinate_jobs WHERE attempts > 0 AND task_name = ANY(%s)", (TASKS,))
    started = time.monotonic()
    for n in range(kills):
        jobs.click_syncs()
        lib.wait_until(jobs.syncing, 120, "a sync under way", interval=0.2)
        victim = jobs.workers[n % 2]
        os.kill(victim.pid, signal.SIGKILL)
        victim.popen.wait(10)
        jobs.workers[n % 2] = jobs.worker(f"jobs-worker-kill-{n}")
    killing = time.monotonic() - started
    jobs.faults(reset=True)
    over, mark = datetime.now(UTC), jobs.last_job()
    took = jobs.settle(over, mark)
    retried = (
        jobs.q("SELECT count(*) FROM procrastinate_jobs WHERE attempts > 0 AND task_name = ANY(%s)", (TASKS,))[0][0]
        - before[0][0]
    )
    ok, numbers = jobs.integrity()
    verdict(
        f"jobs-kill: a worker SIGKILLed every few s ({kills} kills): every job completes, nothing lost or doubled",
        ok and retried > 0,
        f"{kills} kills in {killing:.0f} s (one every {killing / kills:.1f} s); {retried} jobs ran again after a kill; "
        f"every sync and job done {took:.0f} s after the last kill; {numbers}",
    )


def run(stack: lib.Stack, chosen: set, verdict) -> None:
    wanted = [name for name in ("jobs-restart", "jobs-429", "jobs-kill") if name in chosen]
    if not wanted:
        return
    jobs = JobStack(stack)
    try:
        for name, drill in (("jobs-restart", drill_restart), ("jobs-429", drill_429), ("jobs-kill", drill_kill)):
            if name in wanted:
                try:
                    drill(jobs, verdict)
                except Exception as exc:
                    verdict(f"{name}: bench error", False, f"{type(exc).__name__}: {exc}")
    finally:
        jobs.close()
