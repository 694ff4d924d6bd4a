"""HTTP load on the app under gunicorn, exactly as the Procfile runs it, driven by wrk.

    bench/http_load.sh [--seconds 10] [--skip-scale-out] [--skip-mixed]
    (= .venv/bin/python bench/http_load.py ...; needs the Debian packages wrk and pgbouncer)

Everything runs against a PostgreSQL of the benchmark's own (embedded, in a temp dir) in
demo mode, with the five demo listeners logged in through the Spotify emulator and synced
(first syncs backfill 26 weeks), then ANALYZE (what autovacuum does within a minute or so).

1. One app instance (gunicorn master + WEB_CONCURRENCY workers x GUNICORN_THREADS): wrk at
   16, 64 and 256 connections for SECONDS each on /healthz, /dashboard, a chart API and
   search (the latter two only when they answer 200). 16 and 64 run on the Procfile's
   defaults (2 workers x 8 threads, DB_POOL_MAX 10); 256 runs with DB_POOL_MAX 4, i.e.
   fewer pool slots than threads, so requests must queue for connections and the excess
   must come back as 503 + Retry-After within DB_POOL_TIMEOUT (5 s), never hang.
2. Scale-out: two app instances (two gunicorns, one shared standalone emulator) share the
   database through PgBouncer in transaction pooling mode; the same runs, each wrk
   connection count split evenly over the two instances.
3. Mixed: the five listeners sync again and again (POST /sync, then poll) while wrk reads
   their dashboards at 64 connections.

wrk runs with bench/wrk_status.lua (status counts, Retry-After on every 503) and a 10 s
request timeout: a "timeout" is a request without an answer for 10 s. Prints Markdown
tables and a verdict.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import http_load_lib as lib  # noqa: E402

LEVELS = (16, 64, 256)
DEFAULTS: dict[str, Any] = {"workers": 2, "threads": 8, "pool_max": 10}  # Stack.gunicorn's keywords
CONSTRAINED: dict[str, Any] = {"workers": 2, "threads": 8, "pool_max": 4}
CANDIDATE_PAGES = [
    ("/healthz", "healthz"),
    ("/dashboard", "dashboard"),
    ("/api/charts/rank-movement", "chart API"),
    ("/search?q=love", "search"),
]
FALLBACK_PAGE = ("/api/sync/status", "sync status API")


def log_everyone_in(app_url: str) -> dict:
    browsers = {}
    for listener in lib.LISTENERS:
        browsers[listener] = lib.Browser(app_url, listener).log_in()
    for browser in browsers.values():
        status = browser.wait_for_sync(timeout=300)
        if status["status"] != "succeeded":
            raise RuntimeError(f"{browser.listener}'s first sync failed: {status}")
    return browsers


def pages_that_exist(app_url: str, cookie: str) -> list:
    pages = []
    for path, label in CANDIDATE_PAGES:
        answer = requests.get(
            app_url + path, headers={"Cookie": f"session={cookie}"}, allow_redirects=False, timeout=60
        )
        if answer.status_code == 200:
            pages.append((path, label))
        else:
            print(f"note: {path} answered {answer.status_code}; left out", file=sys.stderr)
    if not any(label in ("chart API",) for _, label in pages):
        pages.append(FALLBACK_PAGE)
    return pages


def wrk_in_parallel(targets: list, connections: int, seconds: int, cookies: list) -> list:
    """wrk on every target at once, with `connections` each; their results in order."""
    parts: list = [None] * len(targets)

    def one(i):
        parts[i] = lib.wrk(targets[i], connections, seconds, cookies=cookies)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return parts


def load_run(urls: list, pages: list, connections: int, seconds: int, cookies: list) -> dict:
    """wrk on every page; with several app URLs the connections are split over them and
    the results summed (requests, statuses) or taken at their worst (latencies)."""
    results = {}
    for path, label in pages:
        for url in urls:
            drain(url)
        parts = wrk_in_parallel([url + path for url in urls], max(1, connections // len(urls)), seconds, cookies)
        total = {k: sum(p[k] for p in parts) for k in parts[0]}
        for k in ("p50_ms", "p99_ms", "max_ms"):
            total[k] = max(p[k] for p in parts)
        results[label] = total
        print(
            f"  {connections:>3} connections {label}: {total['rps']:.0f} req/s, non-2xx {total['non2xx']:.0f}, "
            f"timeouts {total['timeouts']:.0f}",
            file=sys.stderr,
            flush=True,
        )
    return results


def drain(url: str, limit: float = 60):
    """Wait until the previous run's queued requests are served: gunicorn keeps working
    on requests wrk has given up on, and they would count against the next page."""
    deadline = time.monotonic() + limit
    quiet = 0
    while time.monotonic() < deadline and quiet < 3:
        try:
            pool = requests.get(url + "/healthz", timeout=limit).json()["pool"]
            quiet = quiet + 1 if pool["in_use"] == 0 and pool["waiting"] == 0 else 0
        except (requests.RequestException, KeyError, TypeError, ValueError):
            quiet = 0
        time.sleep(0.3)


def table(title: str, settings: str, runs: dict) -> tuple[str, bool]:
    lines = [
        f"\n**{title}** — {settings}\n",
        "| connections | page | requests/s | p50 ms | p99 ms | max ms | non-2xx | of which 503 (with Retry-After) "
        "| other non-2xx | wrk timeouts | socket errors | requests/s vs /healthz |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    ok = True
    for connections, results in runs.items():
        health = results.get("healthz", {}).get("rps") or float("nan")
        for label, r in results.items():
            other = r["non2xx"] - r["s503"]
            sockets = r["connect_errors"] + r["read_errors"] + r["write_errors"]
            ratio = r["rps"] / health if health == health and health else float("nan")
            lines.append(
                f"| {connections} | {label} | {r['rps']:.0f} | {r['p50_ms']:.0f} | {r['p99_ms']:.0f} "
                f"| {r['max_ms']:.0f} | {r['non2xx']:.0f} | {r['s503']:.0f} ({r['s503_retry_after']:.0f}) "
                f"| {other:.0f} | {r['timeouts']:.0f} | {sockets:.0f} | {ratio:.2f} |"
            )
            ok &= r["requests"] > 0
            if connections <= 64:
                ok &= r["non2xx"] == 0 and r["timeouts"] == 0
            else:
                ok &= other == 0 and r["s503"] == r["s503_retry_after"] and r["timeouts"] == 0
    return "\n".join(lines), ok


def settings_text(s: dict) -> str:
    return (
        f"WEB_CONCURRENCY={s['WEB_CONCURRENCY']}, GUNICORN_THREADS={s['GUNICORN_THREADS']}, "
        f"DB_POOL_MAX={s['DB_POOL_MAX']}, DB_POOL_TIMEOUT={s['DB_POOL_TIMEOUT']:g} s"
    )


def mixed_run(app, browsers: dict, seconds: int, connections: int = 64) -> dict:
    """Every listener syncs in a loop while wrk reads all five dashboards."""
    stop = threading.Event()
    syncs: dict[str, dict[str, Any]] = {
        name: {"ok": 0, "failed": 0, "refused": 0, "durations": [], "errors": set()} for name in browsers
    }

    def syncer(browser):
        record = syncs[browser.listener]
        while not stop.is_set():
            started = time.monotonic()
            try:
                code = browser.start_sync()
                status = browser.wait_for_sync(timeout=120)
            except Exception as exc:
                record["failed"] += 1
                record["errors"].add(type(exc).__name__)
                continue
            if code != 302:
                record["refused"] += 1
            elif status["status"] == "succeeded":
                record["ok"] += 1
                record["durations"].append(time.monotonic() - started)
            else:
                record["failed"] += 1
                record["errors"].add(status.get("error") or status["status"])

    threads = [threading.Thread(target=syncer, args=(b,)) for b in browsers.values()]
    for t in threads:
        t.start()
    time.sleep(1)
    reads = lib.wrk(app.url + "/dashboard", connections, seconds, cookies=[b.cookie for b in browsers.values()])
    stop.set()
    for t in threads:
        t.join(180)
    durations = sorted(d for s in syncs.values() for d in s["durations"])
    ok = sum(s["ok"] for s in syncs.values())
    failed = sum(s["failed"] + s["refused"] for s in syncs.values())
    errors = "; ".join(sorted({e for s in syncs.values() for e in s["errors"]})) or "-"
    return {
        "reads": reads,
        "syncs_ok": ok,
        "syncs_failed": failed,
        "errors": errors,
        "sync_p50": statistics.median(durations) if durations else float("nan"),
        "sync_max": max(durations) if durations else float("nan"),
        "per_listener": {n: s["ok"] for n, s in syncs.items()},
    }


def mixed_table(m: dict, reads_alone: dict | None, settings: str) -> tuple[str, bool]:
    r = m["reads"]
    alone = f"{r['rps'] / reads_alone['rps']:.2f}" if reads_alone and reads_alone["rps"] else "n/a"
    lines = [
        f"\n**Mixed: five listeners syncing in a loop while 64 connections read their dashboards** — {settings}\n",
        "| side | done | failed | rate | p50 | p99 / max | notes |",
        "|---|---:|---:|---:|---:|---:|---|",
        f"| reads: GET /dashboard (5 cookies in turn) | {r['requests']:.0f} | {r['non2xx']:.0f} non-2xx, "
        f"{r['timeouts']:.0f} timeouts | {r['rps']:.1f} req/s ({alone} x read-only run) | {r['p50_ms']:.0f} ms "
        f"| {r['p99_ms']:.0f} / {r['max_ms']:.0f} ms | 503s: {r['s503']:.0f} |",
        f"| writes: POST /sync + wait (same-day re-sync) | {m['syncs_ok']} | {m['syncs_failed']} | "
        f"per listener {m['per_listener']} | {m['sync_p50']:.1f} s | max {m['sync_max']:.1f} s "
        f"| errors: {m['errors']} |",
    ]
    ok = r["non2xx"] == 0 and r["timeouts"] == 0 and m["syncs_failed"] == 0 and m["syncs_ok"] > 0
    return "\n".join(lines), ok


def check_snapshots(db_url: str) -> str:
    dupes = lib.query(
        db_url,
        """SELECT count(*) FROM (SELECT 1 FROM snapshots GROUP BY user_id, track_id, snapshot_date,
                                 time_range HAVING count(*) > 1) d""",
    )[0][0]
    rank_dupes = lib.query(
        db_url,
        """SELECT count(*) FROM (SELECT 1 FROM snapshots GROUP BY user_id, time_range,
                                      snapshot_date, rank HAVING count(*) > 1) d""",
    )[0][0]
    return f"duplicate snapshot keys {dupes}, duplicate ranks {rank_dupes}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--skip-scale-out", action="store_true")
    parser.add_argument("--skip-mixed", action="store_true")
    args = parser.parse_args()
    out, verdicts = [], {}

    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        stack = lib.Stack(Path(tmp))
        try:
            # -- 1. one instance --------------------------------------------------------
            print("one instance: logging the five listeners in and syncing ...", file=sys.stderr, flush=True)
            app = stack.gunicorn("app-defaults", **DEFAULTS)
            browsers = log_everyone_in(app.url)
            stack.analyze()
            cookies = [b.cookie for b in browsers.values()]
            pages = pages_that_exist(app.url, cookies[0])
            runs = {n: load_run([app.url], pages, n, args.seconds, cookies) for n in LEVELS[:2]}
            defaults_settings = settings_text(app.settings)
            text, ok = table("One instance, Procfile defaults", defaults_settings, runs)
            out.append(text)
            verdicts["one instance, 16 and 64 connections: zero non-2xx, zero timeouts"] = ok
            healthz = app.health()

            mixed = None
            if not args.skip_mixed:
                print("mixed run ...", file=sys.stderr, flush=True)
                mixed = mixed_run(app, browsers, max(args.seconds * 3, 20))
                text, ok = mixed_table(mixed, runs[64].get("dashboard"), defaults_settings)
                out.append(text)
                verdicts["mixed: zero failed reads and syncs"] = ok
            app.process.stop()

            app = stack.gunicorn("app-constrained", **CONSTRAINED)
            runs = {256: load_run([app.url], pages, 256, args.seconds, cookies)}
            text, ok = table("One instance, fewer pool slots than threads", settings_text(app.settings), runs)
            out.append(text)
            verdicts["one instance, 256 connections: only 503 + Retry-After, zero timeouts"] = ok
            after = app.health()
            out.append(f"\nPool after the 256 run (/healthz, one worker): {after['pool']}")
            app.process.stop()

            # -- 2. scale-out through PgBouncer ---------------------------------------
            if not args.skip_scale_out:
                print("scale-out through PgBouncer ...", file=sys.stderr, flush=True)
                bouncer_url = stack.pgbouncer(pool_size=20)
                emulator = stack.emulator()
                apps = [
                    stack.gunicorn(f"app-bouncer-{i}", database_url=bouncer_url, emulator_url=emulator, **DEFAULTS)
                    for i in (1, 2)
                ]
                # log in and sync through the bouncer on both instances: writes must work too
                bouncer_browsers = {}
                for i, listener in enumerate(lib.LISTENERS):
                    bouncer_browsers[listener] = lib.Browser(apps[i % 2].url, listener).log_in()
                for b in bouncer_browsers.values():
                    b.start_sync()
                for b in bouncer_browsers.values():
                    status = b.wait_for_sync(timeout=300)
                    if status["status"] != "succeeded":
                        raise RuntimeError(f"sync through PgBouncer failed: {status}")
                stack.analyze()
                bouncer_cookies = [b.cookie for b in bouncer_browsers.values()]
                runs = {n: load_run([a.url for a in apps], pages, n, args.seconds, bouncer_cookies) for n in LEVELS[:2]}
                text, ok = table(
                    "Two instances through PgBouncer (transaction pooling, default_pool_size 20)",
                    "each instance " + settings_text(apps[0].settings),
                    runs,
                )
                out.append(text)
                verdicts["PgBouncer, 16 and 64 connections: zero non-2xx, zero timeouts"] = ok
                server_conns = lib.query(
                    stack.db_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                )[0][0]
                out.append(
                    f"\nThrough PgBouncer: sign-in and a sync per listener worked on both instances; "
                    f"server connections to the database at the end: {server_conns} "
                    f"(the apps' pools hold up to 2 x 2 x {DEFAULTS['pool_max']} client connections)."
                )
                for a in apps:
                    a.process.stop()

            out.append("\nSnapshots after everything: " + check_snapshots(stack.db_url))
            out.append(f"\n/healthz after the 16/64 runs: {healthz['pool']}")
        finally:
            stack.close()

    lib.report(
        f"\nwrk 4.1, 2 threads, {args.seconds} s per run, --timeout 10s; embedded PostgreSQL 18; "
        f"machine: 2 CPUs shared with other benchmarks.",
        out,
        verdicts,
    )


if __name__ == "__main__":
    main()
