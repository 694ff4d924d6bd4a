"""Faults under gunicorn, with a PASS/FAIL verdict and the numbers behind it.

    .venv/bin/python bench/faults.py [--only restart,pool,locked,spotify,kill,jobs-restart,jobs-429,jobs-kill]

The app runs exactly as the Procfile runs it (gunicorn -c gunicorn.conf.py), in demo mode,
on an embedded PostgreSQL of the benchmark's own (so it can be restarted):

1. restart: PostgreSQL restarted (``EmbeddedPostgres.restart()``) while 8 threads read
   pages and two listeners sync: failed requests only during the outage (+2 s), full
   recovery without restarting the app, every pool slot free afterwards (/healthz pool
   counts), no duplicate or lost snapshot rows (each synced range holds its 99 ranks once).
2. pool: every pool slot held by requests blocked on a table lock taken from outside
   (DB_POOL_MAX 4, DB_POOL_TIMEOUT 2 s, 40 requests at once): each request gets its data
   or a 503 + Retry-After; the app's own request time for a 503 stays within
   DB_POOL_TIMEOUT (+0.5 s), read from gunicorn's access log.
2b. locked: ``LOCK TABLE users IN ACCESS EXCLUSIVE MODE`` held for 45 s from outside
   while 64 clients read pages and /healthz on the Procfile's defaults (2 workers x 8
   threads, DB_POOL_TIMEOUT 5 s): every answer within DB_POOL_TIMEOUT + 1 s, each one a
   200 or a 503 with Retry-After (the web's lock_timeout, database.WEB_BOUNDS), and every
   request started 2 s after the release answered 200.
3. spotify: the emulator (started by gunicorn's master) made slow (beyond
   SPOTIFY_REQUEST_TIMEOUT 2 s), answering 503, or 429 with Retry-After: 3600, over its
   admin endpoint: the sync ends within a bound with a clear message in
   /api/sync/status, no gunicorn WORKER TIMEOUT, pages stay fast, and after the fault is
   cleared the retried sync succeeds.
4. kill: one worker SIGKILLed while its sync's write transaction is open (the transaction
   is held on a lock taken from outside): no rows of that sync remain, and the next sync
   completes.

5. jobs-restart, jobs-429, jobs-kill: the job engine's drills (bench/job_faults.py): two
   ``flask --app app worker`` processes under PostgreSQL restarted, a 429 storm with
   Retry-After: 30, and a worker SIGKILLed every few seconds; every job completes, the plays
   kept are exactly those the emulator's listeners played, nothing doubled.

Fast, deterministic counterparts live in tests/test_faults.py, tests/test_spotify_sync.py
and tests/test_job_drills.py.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import http_load_lib as lib  # noqa: E402
from bench import job_faults  # noqa: E402

VERDICTS: list = []


def verdict(name: str, ok: bool, numbers: str):
    VERDICTS.append((name, ok, numbers))
    print(f"[{'PASS' if ok else 'FAIL'}] {name}: {numbers}", file=sys.stderr, flush=True)


def snapshot_integrity(db_url: str) -> tuple[bool, str]:
    dupes = lib.query(
        db_url,
        """SELECT count(*) FROM (SELECT 1 FROM snapshots GROUP BY user_id, track_id,
                                 snapshot_date, time_range HAVING count(*) > 1) d""",
    )[0][0]
    ranks = lib.query(
        db_url,
        """SELECT count(*) FROM (SELECT 1 FROM snapshots GROUP BY user_id, time_range,
                                 snapshot_date, rank HAVING count(*) > 1) d""",
    )[0][0]
    # every (user, day, range) list is whole: ranks 1..n without a gap
    gaps = lib.query(
        db_url,
        """SELECT count(*) FROM (SELECT user_id, snapshot_date, time_range FROM snapshots
                                GROUP BY 1, 2, 3 HAVING max(rank) <> count(*)) g""",
    )[0][0]
    stuck = lib.query(db_url, "SELECT count(*) FROM sync_runs WHERE status = 'running'")[0][0]
    ok = dupes == 0 and ranks == 0 and gaps == 0 and stuck == 0
    return ok, f"duplicate keys {dupes}, duplicate ranks {ranks}, lists with a gap {gaps}, runs left running {stuck}"


def pool_counts(app, samples: int = 12) -> list:
    """/healthz answers from whichever worker is free; sample it a few times."""
    seen = []
    for _ in range(samples):
        try:
            seen.append(app.health()["pool"])
        except (requests.RequestException, KeyError):
            pass
    return seen


# -- 1. PostgreSQL restarted under load ------------------------------------------------
def fault_restart(stack, browsers):
    app = stack.gunicorn("restart", workers=2, threads=8)
    cookies = [b.cookie for b in browsers.values()]
    for b in browsers.values():
        b.app_url = app.url
    stop = threading.Event()
    events = []  # (time, ok, what)
    lock = threading.Lock()

    def reader(i):
        s = requests.Session()
        paths = ["/api/charts/rank-movement", "/dashboard", "/healthz", "/api/sync/status"]
        n = 0
        while not stop.is_set():
            path = paths[n % len(paths)]
            n += 1
            started = time.monotonic()
            try:
                r = s.get(
                    app.url + path,
                    headers={"Cookie": f"session={cookies[i % len(cookies)]}"},
                    allow_redirects=False,
                    timeout=15,
                )
                ok, what = (
                    r.status_code == 200,
                    str(r.status_code)
                    + ("+Retry-After" if r.status_code == 503 and "Retry-After" in r.headers else ""),
                )
            except requests.RequestException as exc:
                ok, what = False, type(exc).__name__
            with lock:
                events.append((started, time.monotonic(), ok, what))

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for t in readers:
        t.start()
    time.sleep(2)
    syncers = [browsers["bruno"], browsers["chen"]]
    for b in syncers:
        b.start_sync()
    time.sleep(1.5)
    down = time.monotonic()
    stack.postgres.restart()
    back = time.monotonic()
    time.sleep(6)
    stop.set()
    for t in readers:
        t.join(30)
    outage = back - down
    failures = [e for e in events if not e[2]]
    outside = [e for e in failures if e[1] < down or e[0] > back + 2]
    kinds = Counter(e[3] for e in failures)
    after = [e for e in events if e[0] > back + 2]
    recovered = bool(after) and all(e[2] for e in after)
    verdict(
        "restart: failed requests only during the outage (+2 s)",
        not outside and recovered,
        f"outage {outage:.1f} s, {len(events)} requests, {len(failures)} failed ({dict(kinds)}), "
        f"{len(outside)} outside the outage, {len(after)} requests after it all 200: {recovered}",
    )

    # syncs caught by the restart may have failed (with a message); the retry must complete
    first = {}
    for b in syncers:
        try:
            first[b.listener] = b.wait_for_sync(timeout=60)
        except TimeoutError:
            first[b.listener] = {"status": "still 'running' 60 s later"}
    retried = {}
    for b in syncers:
        b.start_sync()
        try:
            retried[b.listener] = b.wait_for_sync(timeout=120)["status"]
        except TimeoutError:
            retried[b.listener] = "refused: a run is still 'running'"
    ok_sync = all(v == "succeeded" for v in retried.values())
    if not ok_sync:  # show why in the bench output
        lines = app.process.log.read_text(errors="replace").splitlines()
        print("\n".join(line for line in lines if not line.startswith("127.0.0.1 "))[-4000:], file=sys.stderr)
    verdict(
        "restart: syncs caught by it end cleanly and the retry completes",
        ok_sync,
        "during: "
        + ", ".join(f"{k} {v['status']}" + (f" ({v['error']})" if v.get("error") else "") for k, v in first.items())
        + "; retry: "
        + ", ".join(f"{k} {v}" for k, v in retried.items()),
    )
    time.sleep(1)
    pools = pool_counts(app)
    free = bool(pools) and all(p["in_use"] == 0 and p["waiting"] == 0 for p in pools)
    verdict(
        "restart: every pool slot free afterwards, no app restart",
        free and app.process.alive(),
        f"/healthz pool samples: in_use {sorted({p['in_use'] for p in pools})}, "
        f"replaced connections {sorted({p['replaced'] for p in pools})}, gunicorn master pid unchanged",
    )
    ok, numbers = snapshot_integrity(stack.db_url)
    verdict("restart: no duplicate or lost snapshot rows", ok, numbers)
    app.process.stop()


# -- 2. pool exhausted -----------------------------------------------------------------
def fault_pool(stack, browsers):
    timeout = 2.0
    # statement and lock bounds beyond the test, so the blocked requests hold their slots
    app = stack.gunicorn(
        "pool",
        workers=2,
        threads=8,
        pool_max=4,
        pool_timeout=timeout,
        extra_env={"DB_LOCK_TIMEOUT": "30", "DB_STATEMENT_TIMEOUT": "30"},
    )
    cookie = browsers["ava"].cookie
    blocker = psycopg2.connect(stack.db_url)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE sync_runs IN ACCESS EXCLUSIVE MODE")  # /api/sync/status now blocks

    def get(_):
        started = time.monotonic()
        try:
            r = requests.get(app.url + "/api/sync/status", headers={"Cookie": f"session={cookie}"}, timeout=30)
            return r.status_code, "Retry-After" in r.headers, time.monotonic() - started
        except requests.RequestException as exc:
            return type(exc).__name__, False, time.monotonic() - started

    with ThreadPoolExecutor(40) as ex:
        futures = [ex.submit(get, i) for i in range(40)]
        time.sleep(6)
        blocker.rollback()  # release: the requests holding the slots finish
        blocker.close()
        results = [f.result() for f in futures]
    statuses = Counter(r[0] for r in results)
    retry_after = all(r[1] for r in results if r[0] == 503)
    client_max = max(r[2] for r in results)
    time.sleep(1)
    served = [
        (int(m.group(1)), int(m.group(2)))
        for m in re.finditer(r'"GET /api/sync/status" (\d{3}) \S+ (\d+)ms', app.process.log.read_text())
    ]
    server_503 = [ms for status, ms in served if status == 503]
    ok = (
        set(statuses) <= {200, 503}
        and statuses[503] > 0
        and retry_after
        and server_503
        and max(server_503) <= timeout * 1000 + 500
    )
    verdict(
        "pool exhausted: a connection or a 503 + Retry-After within DB_POOL_TIMEOUT",
        bool(ok),
        f"DB_POOL_MAX 4 x 2 workers, DB_POOL_TIMEOUT {timeout:g} s, 40 requests while 8 slots are blocked "
        f"6 s: statuses {dict(statuses)}, every 503 has Retry-After: {retry_after}; app time per 503 "
        f"max {max(server_503, default=0)} ms "
        f"(median {sorted(server_503)[len(server_503) // 2] if server_503 else 0} ms); "
        f"client time incl. gunicorn queue max {client_max:.1f} s",
    )
    pools = pool_counts(app)
    verdict(
        "pool exhausted: every slot free afterwards",
        bool(pools) and all(p["in_use"] == 0 for p in pools),
        f"/healthz pool samples in_use {sorted({p['in_use'] for p in pools})}, "
        f"timeouts counted {sorted({p['timeouts'] for p in pools})}",
    )
    app.process.stop()


# -- 2b. a table every page reads, locked for 45 s under load ---------------------------
def fault_locked(stack, browsers, hold: float = 45.0, clients: int = 64):
    pool_timeout = 5.0  # the Procfile's default
    app = stack.gunicorn("locked", workers=2, threads=8, pool_timeout=pool_timeout)
    cookies = [b.cookie for b in browsers.values()]
    paths = ["/dashboard", "/api/charts/rank-movement", "/api/sync/status", "/search?q=love", "/healthz"]
    stop = threading.Event()
    events = []  # (started, finished, status, has Retry-After)
    lock = threading.Lock()

    def reader(i):
        s = requests.Session()
        n = i
        while not stop.is_set():
            path = paths[n % len(paths)]
            n += 1
            started = time.monotonic()
            status: int | str
            try:
                r = s.get(
                    app.url + path,
                    headers={"Cookie": f"session={cookies[i % len(cookies)]}", "Accept": "application/json"},
                    allow_redirects=False,
                    timeout=30,
                )
                status, retry = r.status_code, "Retry-After" in r.headers
                error = r.json().get("error") if status >= 400 else None  # /healthz: a string
                why = error.get("title", "") if isinstance(error, dict) else (error or "")[:60]
            except Exception as exc:  # counted as a failure, never a silently dead client
                status, retry, why = type(exc).__name__, False, str(exc)[:80]
            with lock:
                events.append((started, time.monotonic(), status, retry, f"{path} {status} {why}".strip()))

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(clients)]
    for t in readers:
        t.start()
    time.sleep(3)
    blocker = psycopg2.connect(stack.db_url)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
    locked_at = time.monotonic()
    time.sleep(hold)
    blocker.rollback()
    blocker.close()
    released_at = time.monotonic()
    time.sleep(6)
    stop.set()
    for t in readers:
        t.join(60)

    print(f"locked drill: {len(events)} answers, kinds {Counter(e[4] for e in events).most_common(8)}", file=sys.stderr)
    during = [e for e in events if e[1] > locked_at and e[0] < released_at]
    slowest = max((e[1] - e[0] for e in during), default=0.0)
    statuses = Counter(e[2] for e in during)
    shed = [e for e in during if e[2] != 200]
    clean = all(e[2] == 503 and e[3] for e in shed)
    latencies = sorted(e[1] - e[0] for e in during)
    median = latencies[len(latencies) // 2] if latencies else 0.0
    verdict(
        f"locked {hold:g} s: every answer within DB_POOL_TIMEOUT + 1 s, a 503 + Retry-After when not served",
        bool(during) and slowest <= pool_timeout + 1 and clean and statuses[503] > 0,
        f"users locked {hold:g} s, {clients} clients, 2 workers x 8 threads: {len(during)} answers during the lock "
        f"({dict(statuses)}), all non-200 are 503 with Retry-After: {clean}; answer time median {median:.2f} s, "
        f"max {slowest:.2f} s (bound {pool_timeout + 1:g} s)",
    )
    after = [e for e in events if e[0] > released_at]
    failed_after = [e for e in after if e[2] != 200]
    last_failure = max((e[0] - released_at for e in failed_after), default=None)
    first_ok = min((e[1] - released_at for e in after if e[2] == 200), default=None)
    recovered = bool(after) and all(e[2] == 200 for e in after if e[0] > released_at + 2)
    before = [e for e in events if e[1] < locked_at]
    late = Counter(e[4] for e in after if e[0] > released_at + 2 and e[2] != 200)
    verdict(
        f"locked {hold:g} s: recovery within 2 s after the release",
        recovered,
        f"{len(after)} requests after the release, first 200 {first_ok if first_ok is None else round(first_ok, 2)} s "
        f"after it, last failure started "
        + ("never" if last_failure is None else f"{last_failure:.2f} s after it")
        + f"; failures later than 2 s: {dict(late) or 'none'}; before the lock "
        f"{sum(1 for e in before if e[2] != 200)} of {len(before)} failed",
    )
    time.sleep(1)
    pools = pool_counts(app)
    verdict(
        f"locked {hold:g} s: every pool slot free afterwards",
        bool(pools) and all(p["in_use"] == 0 and p["waiting"] == 0 for p in pools),
        f"/healthz pool samples in_use {sorted({p['in_use'] for p in pools})}",
    )
    app.process.stop()


# -- 3. Spotify slow, 5xx, 429 ----------------------------------------------------------
def fault_spotify(stack, browsers):
    request_timeout = 2
    app = stack.gunicorn("spotify", workers=2, threads=8, extra_env={"SPOTIFY_REQUEST_TIMEOUT": str(request_timeout)})
    browser = browsers["emeka"]
    browser.app_url = app.url
    faults = [
        ("slow (6 s per call, timeout 2 s)", {"slow": {"delay": 6, "path_prefix": "/v1/"}}, 30),
        ("5xx (503 on every call)", {"server_error": {"status": 503}}, 15),
        ("429 with Retry-After: 3600", {"rate_limit": {"retry_after": 3600}}, 5),
    ]
    for name, body, bound in faults:
        app.faults(reset=True)
        app.faults(body)
        started = time.monotonic()
        code = browser.start_sync()
        posted = time.monotonic() - started
        page_started = time.monotonic()
        page = browser.session.get(app.url + "/dashboard", timeout=30).status_code
        page_time = time.monotonic() - page_started
        status = browser.wait_for_sync(timeout=120)
        took = time.monotonic() - started
        app.faults(reset=True)
        retry_code = browser.start_sync()
        retry = browser.wait_for_sync(timeout=120)
        worker_timeouts = app.process.log.read_text().count("WORKER TIMEOUT")
        message = status.get("error") or ""
        ok = (
            code == 302
            and status["status"] == "failed"
            and "Spotify" in message
            and took <= bound
            and retry_code == 302
            and retry["status"] == "succeeded"
            and worker_timeouts == 0
            and page == 200
        )
        verdict(
            f"spotify {name}: clear message, no hang, the retry completes",
            ok,
            f"POST /sync answered in {posted:.2f} s; sync failed after {took:.1f} s (bound {bound} s) with "
            f'"{message}"; /dashboard meanwhile {page} in {page_time:.2f} s; gunicorn WORKER TIMEOUTs '
            f"{worker_timeouts}; after clearing: {retry['status']}",
        )
    app.process.stop()


# -- 4. a worker killed mid-sync --------------------------------------------------------
def fault_kill(stack):
    app = stack.gunicorn("kill", workers=1, threads=8)  # one worker: the one running the sync
    listener = "dana"
    before = {
        t: lib.query(stack.db_url, f"SELECT count(*) FROM {t}")[0][0] for t in ("tracks", "snapshots", "saved_tracks")
    }
    blocker = psycopg2.connect(stack.db_url)
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE saved_tracks IN ACCESS EXCLUSIVE MODE")  # the sync's write will wait here
    browser = lib.Browser(app.url, listener).log_in()  # the first sync starts in the background

    def sync_waiting_on_lock():
        return lib.query(
            stack.db_url,
            """SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                                          AND state = 'active' AND datname = current_database()""",
        )[0][0]

    lib.wait_until(sync_waiting_on_lock, 120, "the sync to reach its write transaction")
    open_writes = lib.query(
        stack.db_url,
        """SELECT count(*) FROM pg_stat_activity WHERE xact_start IS NOT NULL
                                             AND wait_event_type = 'Lock'""",
    )[0][0]
    [worker] = app.worker_pids()
    os.kill(worker, signal.SIGKILL)
    killed_at = time.monotonic()
    blocker.rollback()
    blocker.close()
    lib.wait_until(lambda: app.worker_pids() and app.worker_pids() != [worker], 30, "a new worker")
    lib.wait_until(lambda: requests.get(app.url + "/healthz", timeout=5).ok, 30, "the new worker")
    time.sleep(1)  # the server notices the dead client and rolls back
    user_id = lib.query(stack.db_url, "SELECT id FROM users WHERE spotify_id = %s", (listener,))[0][0]
    left = {
        t: lib.query(
            stack.db_url,
            f"SELECT count(*) FROM {t}" + ("" if t == "tracks" else " WHERE user_id = %s"),
            () if t == "tracks" else (user_id,),
        )[0][0]
        for t in ("tracks", "snapshots", "saved_tracks")
    }
    rolled_back = left["snapshots"] == 0 and left["saved_tracks"] == 0 and left["tracks"] == before["tracks"]
    verdict(
        "worker SIGKILLed mid-sync: the transaction rolls back",
        rolled_back,
        f"{open_writes} write transaction(s) open at the kill; afterwards {listener}'s snapshots "
        f"{left['snapshots']}, saved tracks {left['saved_tracks']}, catalogue tracks {before['tracks']} -> "
        f"{left['tracks']}; new worker up {time.monotonic() - killed_at:.1f} s after the kill",
    )

    status = browser.status()
    code = browser.start_sync()
    page = browser.session.get(app.url + "/dashboard", timeout=30).text
    refused = "already running" in page
    after = browser.wait_for_sync(timeout=10) if not refused else browser.status()
    verdict(
        "worker SIGKILLed mid-sync: the next sync starts at once and completes",
        not refused and after["status"] == "succeeded",
        f"status right after the kill: {status['status']} (stage {status.get('stage')!r}); POST /sync -> {code}, "
        + (
            "refused: \"A sync is already running for you.\" — the dead worker's run row stays 'running' until "
            "sync_runs_db.SILENT_AFTER"
            if refused
            else f"then {after['status']}"
        ),
    )
    if refused:
        # what the person gets once the run counts as stale
        lib.query(
            stack.db_url,
            "UPDATE sync_runs SET started_at = now() - interval '16 minutes' WHERE user_id = %s AND status = 'running'",
            (user_id,),
        )
        browser.start_sync()
        later = browser.wait_for_sync(timeout=180)
        verdict(
            "worker SIGKILLed mid-sync: once the run is stale (aged 16 min by hand) the sync completes",
            later["status"] == "succeeded",
            f"then {later['status']}",
        )
    ok, numbers = snapshot_integrity(stack.db_url)
    verdict("kill: no duplicate or partial snapshot lists", ok, numbers)
    app.process.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="restart,pool,locked,spotify,kill,jobs-restart,jobs-429,jobs-kill")
    parser.add_argument("--lock-seconds", type=float, default=45.0, help="how long the locked drill holds the lock")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        stack = lib.Stack(Path(tmp))
        try:
            # the job engine's drills first, on a database of their own making
            job_faults.run(stack, chosen, verdict)
            if chosen & {"restart", "pool", "locked", "spotify", "kill"}:
                lib.query(stack.db_url, "TRUNCATE users CASCADE")
                web_drills(stack, chosen, args)
        finally:
            stack.close()
    report()


def web_drills(stack, chosen: set, args) -> None:
    """The drills of the web app under gunicorn (1 to 4 of the docstring)."""
    # one standalone emulator for every app instance: the tokens it issued at login
    # stay valid for the instances started later (its admin endpoint sets the faults)
    emulator = stack.emulator()
    stack.default_emulator = emulator
    setup = stack.gunicorn("setup", workers=2, threads=8)
    browsers = {}
    for listener in ("ava", "bruno", "chen", "emeka"):
        browsers[listener] = lib.Browser(setup.url, listener).log_in()
    for b in browsers.values():
        assert b.wait_for_sync(timeout=300)["status"] == "succeeded"
    stack.analyze()
    setup.process.stop()
    for name, run in (
        ("restart", lambda: fault_restart(stack, browsers)),
        ("pool", lambda: fault_pool(stack, browsers)),
        ("locked", lambda: fault_locked(stack, browsers, hold=args.lock_seconds)),
        ("spotify", lambda: fault_spotify(stack, browsers)),
        ("kill", lambda: fault_kill(stack)),
    ):
        if name in chosen:
            try:
                run()
            except Exception as exc:
                verdict(f"{name}: bench error", False, f"{type(exc).__name__}: {exc}")


def report() -> None:
    print("\n| fault | verdict | numbers |\n|---|---|---|")
    for name, ok, numbers in VERDICTS:
        print(f"| {name} | {'PASS' if ok else 'FAIL'} | {numbers.replace('|', '/')} |")
    sys.exit(0 if all(ok for _, ok, _ in VERDICTS) else 1)


if __name__ == "__main__":
    main()
