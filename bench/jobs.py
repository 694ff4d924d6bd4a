"""Background work at scale: a round of daily snapshots and a round of captures for a crowd
of simulated listeners, the old sequential way and on 1, 2 and 4 job worker processes.

    .venv/bin/python bench/jobs.py [--users 10000] [--workers 1,2,4] [--concurrency 4]
        [--latency-ms 100] [--rate-limit 3600 --rate-window 30] [--max-rps 100]

- The emulator runs as a process of its own (``python -m emulator``) with ``--latency-ms``
  on every call and its per-app rate limit (``--rate-limit`` calls in any
  ``--rate-window`` seconds); its listeners keep listening (``--play-interval``).
- ``--users`` crowd listeners (emulator/crowd.py) are made in one call and seeded with COPY
  (bench/crowd.py) into a template database on the machine's PostgreSQL, each with a
  snapshot of yesterday (so today's sync is a daily one, not a first one); every run
  starts from a copy of it (``CREATE DATABASE ... TEMPLATE``).
- Snapshots: sequentially, ``flask --app app snapshot`` (one user after another, as cron
  ran it before the job engine); with workers, a sync job queued for every user (what the
  schedule's tick does, in one go) and N ``flask --app app worker`` processes started; the
  time is from their start until every run has finished.
- Captures: sequentially, one process capturing every user in turn (jobs.capture.capture);
  with workers, a capture job per user and N worker processes.
- Workers run with ``SPOTIFY_MAX_RPS`` (the deployment's shared budget, below the
  emulator's limit); the emulator counts every call it refused (``exceeded``).
- Checked: every sync succeeded with today's three top lists; the plays each capture
  stored are exactly the track plays the emulator's listener played between the newest
  play known before and the capture's cursor (lost: played but not stored; extra: stored
  but never played; duplicates: a play stored twice).

Queueing the jobs (before the workers start) is not in the times; starting the worker
processes is, as starting the ``flask snapshot`` process is.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # not bench/: this file's name would hide the jobs package
from bench import crowd as crowd_seed  # noqa: E402
from emulator.listeners import parse_played_item  # noqa: E402
from emulator.live import recently_played_now  # noqa: E402

SECRET = "bench-jobs-secret"  # nosec B105: the benchmark's own throwaway databases
DB_PREFIX = "bench_jobsbench"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--workers", default="1,2,4", help="worker process counts, comma separated")
    parser.add_argument("--concurrency", type=int, default=4, help="jobs at once per worker (JOBS_CONCURRENCY)")
    parser.add_argument("--latency-ms", type=float, default=100)
    parser.add_argument("--rate-limit", type=int, default=3600, help="the emulator's limit: calls per window")
    parser.add_argument("--rate-window", type=float, default=30)
    parser.add_argument("--max-rps", type=float, default=100, help="SPOTIFY_MAX_RPS of the workers")
    parser.add_argument("--play-interval", type=float, default=120, help="seconds between a listener's live plays")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument(
        "--sequential-sample",
        type=int,
        default=0,
        help="run the sequential way on only this many users and scale its times to --users (it is linear: "
        "one user after another); 0: every user",
    )
    parser.add_argument("--port", type=int, default=5012, help="the emulator's port")
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--capture-sequentially", action="store_true", help=argparse.SUPPRESS)  # the child
    args = parser.parse_args(argv)
    if args.users < 1 or args.concurrency < 1:
        parser.error("--users and --concurrency must be at least 1")
    if not 0 <= args.sequential_sample <= args.users:
        parser.error("--sequential-sample: between 0 (every user) and --users")
    try:
        args.worker_counts = [int(n) for n in args.workers.split(",") if n.strip()]
    except ValueError:
        parser.error("--workers: whole numbers separated by commas, e.g. 1,2,4")
    if args.max_rps * args.rate_window >= args.rate_limit:
        print(
            f"note: --max-rps {args.max_rps:g} allows {args.max_rps * args.rate_window:g} calls per "
            f"{args.rate_window:g} s, at or above the limit of {args.rate_limit}: expect 429s",
            file=sys.stderr,
        )
    return args


# -- databases ------------------------------------------------------------------------
def db_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + name


def admin(admin_url: str, statement: str) -> None:
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


def recreate(admin_url: str, name: str, template: str | None = None) -> str:
    admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin(admin_url, f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    return db_url(admin_url, name)


def rows(url: str, sql: str, params=()) -> list:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        found = cur.fetchall()
    conn.close()
    return found


def app_env(url: str, emulator_url: str, args, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "SPOTIFY", "JOBS_", "CAPTURE"))}
    return env | {
        "DATABASE_URL": url,
        "FLASK_SECRET_KEY": SECRET,
        "SPOTIFY_EMULATOR_URL": emulator_url,
        "SPOTIFY_REQUEST_TIMEOUT": "60",
        "DEMO_BACKFILL_WEEKS": "1",
        "CAPTURE_INTERVAL": "1000000",  # the schedule queues no capture of its own during the runs
        "JOBS_CONCURRENCY": str(args.concurrency),
        "JOBS_POLL_INTERVAL": "0.5",
        "JOBS_EMBEDDED_WORKER": "0",
        "DB_POOL_MAX": str(2 * args.concurrency + 4),
        "LOG_LEVEL": "WARNING",
        **extra,
    }


# -- the emulator ---------------------------------------------------------------------
def start_emulator(args) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "--quiet",
            "--port",
            str(args.port),
            "--rate-limit",
            str(args.rate_limit),
            "--rate-window",
            str(args.rate_window),
            "--latency-ms",
            str(args.latency_ms),
            "--play-interval",
            str(args.play_interval),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{args.port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/_emulator/rate-limit", timeout=2)
            return process, url
        except requests.ConnectionError:
            if process.poll() is not None:
                raise SystemExit(f"the emulator did not start (is port {args.port} free?)") from None
            time.sleep(0.2)
    raise SystemExit("the emulator did not answer within 60 s")


def limit_counts(emulator_url: str) -> dict:
    return requests.get(emulator_url + "/_emulator/rate-limit", timeout=10).json()


# -- one round ------------------------------------------------------------------------
def wait_for(url: str, sql: str, target: int, what: str, processes: list, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while rows(url, sql)[0][0] < target:
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not done after {timeout:.0f} s")
        if any(p.poll() is not None for p in processes):
            raise SystemExit(f"{what}: a worker process ended early")
        time.sleep(0.5)


def run_workers(url: str, emulator_url: str, args, count: int, sql: str, target: int, what: str) -> float:
    env = app_env(url, emulator_url, args, SPOTIFY_MAX_RPS=str(args.max_rps))
    started = time.perf_counter()
    workers = [
        subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env)
        for _ in range(count)
    ]
    try:
        wait_for(url, sql, target, what, workers, timeout=6 * 3600)
        elapsed = time.perf_counter() - started
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
    return elapsed


def queue(url: str, emulator_url: str, args, kind: str) -> None:
    """A job per user, as the schedule's tick would queue them (not timed)."""
    from app import create_app

    config = {"DATABASE_URL": url, "SECRET_KEY": SECRET, "SPOTIFY_EMULATOR_URL": emulator_url, "DB_POOL_MIN": 0}
    app = create_app(config)
    with app.app_context():
        from jobs import capture, sync_tasks

        user_ids = [r[0] for r in rows(url, "SELECT id FROM users ORDER BY id")]
        for user_id in user_ids:
            if kind == "snapshot":
                sync_tasks.request_sync(user_id)
            else:
                capture.queue_capture(user_id)
    import database

    database.close_pool()


def keep_a_sample(url: str, sample: int) -> int:
    """Leave the first ``sample`` users (with all that is theirs); returns how many are left."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("DELETE FROM users WHERE id NOT IN (SELECT id FROM users ORDER BY id LIMIT %s)", (sample,))
        cur.execute("SELECT count(*) FROM users")
        [(left,)] = cur.fetchall()
    conn.close()
    return left


def snapshot_round(url: str, emulator_url: str, args, workers: int | None) -> float:
    done = "SELECT count(*) FROM sync_runs WHERE status <> 'running'"
    if workers is None:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "flask", "--app", "app", "snapshot"],
            cwd=ROOT,
            env=app_env(url, emulator_url, args),
            stdout=subprocess.DEVNULL,
            check=False,
        )
        return time.perf_counter() - started
    queue(url, emulator_url, args, "snapshot")
    return run_workers(url, emulator_url, args, workers, done, args.users, "snapshots")


def capture_round(url: str, emulator_url: str, args, workers: int | None) -> float:
    done = "SELECT count(*) FROM capture_state WHERE last_captured_at IS NOT NULL"
    if workers is None:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--capture-sequentially"],
            cwd=ROOT,
            env=app_env(url, emulator_url, args),
            check=True,
        )
        return time.perf_counter() - started
    queue(url, emulator_url, args, "capture")
    return run_workers(url, emulator_url, args, workers, done, args.users, "captures")


def capture_sequentially() -> None:
    """The child process of a sequential capture round: every user in turn, one process."""
    from flask import current_app

    import spotify
    from app import create_app
    from jobs import capture

    app = create_app()
    with app.app_context():
        settings = spotify.settings_for(current_app)
        for (user_id,) in rows(os.environ["DATABASE_URL"], "SELECT id FROM users ORDER BY id"):
            try:
                capture.capture(settings, user_id)
            except spotify.SpotifyError as exc:  # counted by the checks as lost plays
                print(f"user {user_id}: capture failed: {exc.message}", file=sys.stderr)


# -- checks ---------------------------------------------------------------------------
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def millis(when: datetime) -> int:
    return round(when.timestamp() * 1000)


def check_plays(url: str, before: dict, started_at: datetime, interval: float) -> dict:
    """Plays stored by the capture round against what each listener played meanwhile."""
    cursors = dict(rows(url, "SELECT u.spotify_id, c.after_ms FROM capture_state c JOIN users u ON u.id = c.user_id"))
    stored: dict[str, list] = {}
    for spotify_id, played_at in rows(
        url, "SELECT u.spotify_id, p.played_at FROM plays p JOIN users u ON u.id = p.user_id ORDER BY 1, 2"
    ):
        stored.setdefault(spotify_id, []).append(millis(played_at))
    lost = extra = duplicates = captured = 0
    for spotify_id, cursor in cursors.items():
        low = before.get(spotify_id, 0)
        end = EPOCH + timedelta(milliseconds=cursor)  # the emulator serves played_at to the ms
        # plays are kept to the second (the emulator's played_at has milliseconds): compared
        # at the emulator's ms, the sync's newest play, which a capture asks for again and
        # moves its cursor to, counted as lost
        played = {
            millis(at.replace(microsecond=0))
            for item, at in recently_played_now(spotify_id, end, started_at, interval)
            if parse_played_item(item)[0] == "track" and low < millis(at.replace(microsecond=0)) <= cursor
        }
        kept = [at for at in stored.get(spotify_id, []) if low < at <= cursor]
        duplicates += len(kept) - len(set(kept))
        lost += len(played - set(kept))
        extra += len(set(kept) - played)
        captured += len(kept)
    [(gaps,)] = rows(url, "SELECT count(*) FROM play_gaps")
    return {"captured": captured, "lost": lost, "extra": extra, "duplicates": duplicates, "gaps": gaps}


def newest_plays(url: str) -> dict:
    return {
        spotify_id: millis(newest)
        for spotify_id, newest in rows(
            url, "SELECT u.spotify_id, max(p.played_at) FROM plays p JOIN users u ON u.id = p.user_id GROUP BY 1"
        )
    }


def check_snapshots(url: str) -> dict:
    [(succeeded, failed)] = rows(
        url,
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed') FROM sync_runs",
    )
    [(complete,)] = rows(
        url,
        "SELECT count(*) FROM (SELECT user_id FROM snapshots WHERE snapshot_date = current_date "
        "GROUP BY user_id HAVING count(DISTINCT time_range) = 3) s",
    )
    return {"succeeded": succeeded, "failed": failed, "complete": complete}


# -- the whole run ----------------------------------------------------------------------
def main() -> None:
    args = parse_args()
    if args.capture_sequentially:
        capture_sequentially()
        return
    emulator, emulator_url = start_emulator(args)
    try:
        run(args, emulator_url)
    finally:
        emulator.terminate()
        emulator.wait(20)


def run(args, emulator_url: str) -> None:
    load = os.getloadavg()[0]
    print(
        f"{args.users} users; emulator: {args.latency_ms:g} ms per call, limit {args.rate_limit} calls per "
        f"{args.rate_window:g} s; workers: {args.concurrency} jobs each, SPOTIFY_MAX_RPS={args.max_rps:g}; "
        f"load average {load:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    started = time.perf_counter()
    listeners = crowd_seed.make_listeners(emulator_url, args.users)
    made = time.perf_counter() - started
    template = f"{DB_PREFIX}_seed"
    seed_url = recreate(args.admin_url, template)
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", "init-db"],
        cwd=ROOT,
        env=app_env(seed_url, emulator_url, args),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    started = time.perf_counter()
    with psycopg2.connect(seed_url) as conn, conn.cursor() as cur:
        crowd_seed.seed(cur, SECRET, listeners, emulator_url, snapshot_day=date.today() - timedelta(days=1))
    conn.close()
    print(
        f"seeded: {args.users} emulator accounts in {made:.1f} s, users and tokens (COPY) in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    info = limit_counts(emulator_url)
    emulator_started = datetime.fromisoformat(info["started_at"])
    results = {}
    for workers in ([] if args.skip_sequential else [None]) + args.worker_counts:
        name = "sequential" if workers is None else f"{workers} worker" + ("s" if workers > 1 else "")
        url = recreate(args.admin_url, f"{DB_PREFIX}_run", template)
        scale = 1.0
        if workers is None and args.sequential_sample:
            scale = keep_a_sample(url, args.sequential_sample) / args.users
            name = f"sequential (sample of {args.sequential_sample}, scaled)"
        requests.delete(emulator_url + "/_emulator/rate-limit", timeout=10)
        snapshot_seconds = snapshot_round(url, emulator_url, args, workers) / scale
        snapshots = check_snapshots(url)
        after_snapshots = limit_counts(emulator_url)
        before = newest_plays(url)
        requests.delete(emulator_url + "/_emulator/rate-limit", timeout=10)
        capture_seconds = capture_round(url, emulator_url, args, workers) / scale
        after_captures = limit_counts(emulator_url)
        plays = check_plays(url, before, emulator_started, args.play_interval)
        results[name] = {
            "snapshot": snapshot_seconds,
            "capture": capture_seconds,
            "snapshots": snapshots,
            "plays": plays,
            "calls": after_snapshots["admitted"] + after_captures["admitted"],
            "exceeded": after_snapshots["exceeded"] + after_captures["exceeded"],
            "peak": max(after_snapshots["peak_in_window"], after_captures["peak_in_window"]),
        }
        print(
            f"{name}: snapshots {snapshot_seconds:.1f} s {snapshots}, captures {capture_seconds:.1f} s {plays}, "
            f"{results[name]['calls']} calls, {results[name]['exceeded']} refused by the limit",
            flush=True,
        )
        admin(args.admin_url, f"DROP DATABASE IF EXISTS {DB_PREFIX}_run WITH (FORCE)")
    admin(args.admin_url, f"DROP DATABASE IF EXISTS {template} WITH (FORCE)")
    print_table(args, results)


def print_table(args, results: dict) -> None:
    names = list(results)
    base = results.get("sequential") or results[names[0]]
    one = results.get("1 worker")

    def cell(seconds: float, reference: dict | None, key: str) -> str:
        rate = args.users / seconds
        speed = f", {reference[key] / seconds:.1f}×" if reference else ""
        return f"{seconds:.1f} s ({rate:.1f}/s{speed})"

    print(
        f"\n{args.users} users, {args.latency_ms:g} ms per call, limit {args.rate_limit}/{args.rate_window:g} s, "
        f"SPOTIFY_MAX_RPS {args.max_rps:g}, {args.concurrency} jobs per worker\n"
    )

    def row(label: str, value) -> None:
        print(f"| {label} | " + " | ".join(value(results[n]) for n in names) + " |")

    print("| | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    row("daily snapshots (every user)", lambda r: cell(r["snapshot"], base, "snapshot"))
    row("captures (every user)", lambda r: cell(r["capture"], base, "capture"))
    if one:
        row("snapshots vs 1 worker", lambda r: f"{one['snapshot'] / r['snapshot']:.2f}×")
        row("captures vs 1 worker", lambda r: f"{one['capture'] / r['capture']:.2f}×")
    row("syncs succeeded / failed", lambda r: f"{r['snapshots']['succeeded']} / {r['snapshots']['failed']}")
    row(
        "plays captured / lost / extra / duplicated",
        lambda r: "{captured} / {lost} / {extra} / {duplicates}".format(**r["plays"]),
    )
    row("Web API calls / refused by the limit", lambda r: f"{r['calls']} / {r['exceeded']}")
    row("most calls in one window (limit)", lambda r: f"{r['peak']} ({args.rate_limit})")


if __name__ == "__main__":
    main()
