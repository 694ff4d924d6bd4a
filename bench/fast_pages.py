"""Fast pages (issue 15): the dashboard against /healthz, before and after, in one run.

    .venv/bin/python bench/fast_pages.py [--seconds 10] [--rounds 3] [--baseline REV] [--plays 300000]
                                         [--skip-browser] [--page PATH ...]
    (needs the Debian packages wrk and chromium)

One PostgreSQL of the bench's own, the five demo listeners logged in and synced, then:

1. wrk at 16, 64 and 256 connections on /healthz, /dashboard, one chart API and the year
   in review (when that page exists), against this checkout and, with ``--baseline REV``,
   against that older revision of the app (a git worktree in the temp dir) on the same
   database with the same session cookies. Both run exactly as the Procfile says
   (2 workers x 8 threads, DB_POOL_MAX 10). Each round runs /healthz, then each page, the
   two apps in turn, so both see the same machine; medians over the rounds.
2. The bulk-insert price of the data-version trigger: ``--plays`` plays for one person in
   one INSERT, with the trigger and with it disabled (three times each, rolled back).
3. The first view after a sync for that person, with ``--plays`` plays committed: a sync
   through the app, then GET /dashboard and GET /api/charts as the page does; and the
   same after the version was moved by hand, i.e. without the sync's precomputation.
4. With chromium (Playwright): time to first byte, first contentful paint, all charts
   drawn and the layout shift, median of five loads of /dashboard per app.

Prints Markdown tables and verdicts. Traffic stays on 127.0.0.1; every process it starts
is stopped on exit.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import http_load_lib as lib  # noqa: E402
from bench.http_load import DEFAULTS, drain  # noqa: E402
from database import fetch_value  # noqa: E402

LEVELS = (16, 64, 256)
PAGES = [
    ("/healthz", "healthz"),
    ("/dashboard", "dashboard"),
    ("/api/charts/rank-movement", "chart API"),
    ("/api/charts", "all charts API"),
    ("/search?q=love", "search"),
]
YEAR_IN_REVIEW = [f"/listening/{date.today().year}"]  # the insights pages' Year in review
HEAVY_LISTENER = "emeka"
TARGET_PAGES = ("dashboard", "chart API", "year in review")  # the ">= 0.5 x /healthz at 64"


# -- the apps ------------------------------------------------------------------------
def baseline_checkout(rev: str, tmp: Path) -> Path:
    where = tmp / f"baseline-{rev}"
    subprocess.run(["git", "-C", str(lib.ROOT), "worktree", "add", "--detach", str(where), rev], check=True)
    return where


def remove_checkout(where: Path) -> None:
    subprocess.run(["git", "-C", str(lib.ROOT), "worktree", "remove", "--force", str(where)], check=False)


def pages_of(app_url: str, cookie: str, extra: list[str]) -> list[tuple[str, str]]:
    pages = list(PAGES)
    for path in [*YEAR_IN_REVIEW, *extra]:
        answer = requests.get(app_url + path, headers={"Cookie": f"session={cookie}"}, timeout=60)
        if answer.status_code == 200:
            pages.append((path, "year in review" if path in YEAR_IN_REVIEW else path))
            if path in YEAR_IN_REVIEW:
                break
    return pages


def answers(app_url: str, path: str, cookie: str) -> bool:
    return requests.get(app_url + path, headers={"Cookie": f"session={cookie}"}, timeout=60).status_code == 200


# -- 1. throughput --------------------------------------------------------------------
def versions_moved(db_url: str) -> int:
    """The sum of every person's data version: how often anybody's data changed."""
    return lib.query(db_url, "SELECT coalesce(sum(data_version), 0) FROM users")[0][0]


def throughput(apps: dict, pages: list, seconds: int, cookies: list, rounds: int, db_url: str) -> dict:
    """{(connections, page label, app name): [wrk result per round]}. Each round measures
    /healthz and then every page, app after app, so a page's ratio compares runs seconds
    apart on a machine whose load moves; an app that lacks a page skips it."""
    results: dict = {}
    for connections in LEVELS:
        for _ in range(rounds):
            for path, label in pages:
                for name, app in apps.items():
                    if not answers(app.url, path, cookies[0]):
                        continue
                    drain(app.url)
                    before = versions_moved(db_url)
                    r = lib.wrk(app.url + path, connections, seconds, cookies=cookies)
                    # a capture (either app's job worker) landing mid-run: every view after
                    # it misses the store once, which is what a burst at 256 pays for
                    r["changes"] = versions_moved(db_url) - before
                    results.setdefault((connections, label, name), []).append(r)
                    print(
                        f"  {connections:>3} {label} [{name}]: {r['rps']:.0f} req/s, non-2xx {r['non2xx']:.0f}, "
                        f"timeouts {r['timeouts']:.0f}, data changes {r['changes']}",
                        file=sys.stderr,
                        flush=True,
                    )
    return results


def throughput_table(results: dict, apps: list[str]) -> tuple[str, bool]:
    """Medians over the rounds; the ratio is the median of each round's page / /healthz."""
    lines = [
        "| connections | page | app | requests/s | p50 ms | p99 ms | non-2xx | of which 503 + Retry-After "
        "| wrk timeouts | data changes during the run | vs `/healthz` (same app, same round) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ok = True
    for (connections, label, name), runs in results.items():
        health = results[(connections, "healthz", name)]
        ratio = statistics.median(r["rps"] / h["rps"] for r, h in zip(runs, health, strict=True))
        median = {key: statistics.median(r[key] for r in runs) for key in ("rps", "p50_ms", "p99_ms")}
        total = {key: sum(r[key] for r in runs) for key in ("non2xx", "s503_retry_after", "timeouts", "changes")}
        lines.append(
            f"| {connections} | {label} | {name} | {median['rps']:.0f} | {median['p50_ms']:.0f} "
            f"| {median['p99_ms']:.0f} | {total['non2xx']:.0f} | {total['s503_retry_after']:.0f} "
            f"| {total['timeouts']:.0f} | {total['changes']:.0f} | {ratio:.2f} |"
        )
        if name == apps[-1]:
            ok &= total["timeouts"] == 0 and total["non2xx"] == total["s503_retry_after"]
            if connections <= 64:
                ok &= total["non2xx"] == 0
            if connections == 64 and label in TARGET_PAGES:
                ok &= ratio >= 0.5
    return "\n".join(lines), ok


def under_churn(apps: dict, seconds: int, cookies: list, db_url: str, every: float = 2.0) -> dict:
    """/dashboard at 256 connections while every listener's data changes every ``every``
    seconds (as captures landing mid-burst do): each change makes every queued view of that
    person miss the store at once. {app name: (healthz run, dashboard run)}."""
    import threading

    results = {}
    for name, app in apps.items():
        drain(app.url)
        health = lib.wrk(app.url + "/healthz", 256, seconds, cookies=cookies)
        stop = threading.Event()

        def change(stop: threading.Event = stop) -> None:
            while not stop.wait(every):
                lib.query(db_url, "SELECT bump_data_versions(ARRAY(SELECT id FROM users)::bigint[])")

        changer = threading.Thread(target=change, daemon=True)
        drain(app.url)
        before = versions_moved(db_url)
        changer.start()
        try:
            page = lib.wrk(app.url + "/dashboard", 256, seconds, cookies=cookies)
        finally:
            stop.set()
            changer.join()
        page["changes"] = versions_moved(db_url) - before
        results[name] = (health, page)
        print(f"  churn [{name}]: {page['rps']:.0f} req/s vs healthz {health['rps']:.0f}", file=sys.stderr, flush=True)
    return results


# -- 2. the trigger's price -----------------------------------------------------------
PLAYS = """
INSERT INTO plays (user_id, played_at, track_id, ms_played, source)
SELECT %(user_id)s, date_trunc('second', now()) - g * interval '3 minutes 7 seconds',
       (%(tracks)s::text[])[1 + g %% cardinality(%(tracks)s::text[])], 60000 + (g::bigint * 7919) %% 240000, 'export'
FROM generate_series(1, %(plays)s) AS g
ON CONFLICT (user_id, played_at) DO NOTHING
"""


def listener_tracks(cur, user_id: int) -> list[str]:
    cur.execute("SELECT track_id FROM saved_tracks WHERE user_id = %s ORDER BY track_id", (user_id,))
    return [row[0] for row in cur.fetchall()]


def trigger_price(db_url: str, user_id: int, plays: int, rounds: int = 3) -> dict:
    """Seconds for one INSERT of ``plays`` plays, with the data-version trigger and without."""
    timings: dict[str, list[float]] = {"with the trigger": [], "trigger disabled": []}
    conn = psycopg2.connect(db_url)
    try:
        with conn.cursor() as cur:
            tracks = listener_tracks(cur, user_id)
        conn.rollback()
        for _ in range(rounds):
            for label in timings:
                with conn.cursor() as cur:
                    if label == "trigger disabled":
                        cur.execute("ALTER TABLE plays DISABLE TRIGGER plays_bump_data_version_after_insert")
                    started = time.perf_counter()
                    cur.execute(PLAYS, {"user_id": user_id, "tracks": tracks, "plays": plays})
                    timings[label].append(time.perf_counter() - started)
                conn.rollback()
    finally:
        conn.close()
    return {label: statistics.median(values) for label, values in timings.items()}


def load_plays(db_url: str, user_id: int, plays: int) -> int:
    conn = psycopg2.connect(db_url)
    with conn, conn.cursor() as cur:
        cur.execute(PLAYS, {"user_id": user_id, "tracks": listener_tracks(cur, user_id), "plays": plays})
        cur.execute("SELECT count(*) FROM plays WHERE user_id = %s", (user_id,))
        count = fetch_value(cur)
    conn.close()
    return count


# -- 3. the first view after a sync ---------------------------------------------------
def first_view(app_url: str, browser: lib.Browser, tries: int = 5) -> dict:
    """What the browser asks for when it opens the dashboard: the frame, then the charts.
    A loaded machine may shed a request (503 + Retry-After): then it is asked again, as a
    browser would after Retry-After, and the shed try is not timed."""
    s = browser.session
    for _ in range(tries):
        started = time.perf_counter()
        page = s.get(app_url + "/dashboard", timeout=60)
        frame = time.perf_counter() - started
        charts = s.get(app_url + "/api/charts", timeout=60)
        total = time.perf_counter() - started
        if page.status_code == 200 and charts.status_code == 200:
            return {"frame_ms": frame * 1000, "charts_ms": (total - frame) * 1000, "total_ms": total * 1000}
        assert {page.status_code, charts.status_code} <= {200, 503}, (page.status_code, charts.status_code)
        time.sleep(1)
    raise RuntimeError(f"the dashboard was shed {tries} times")


def after_a_sync(app_url: str, browser: lib.Browser, db_url: str, user_id: int, rounds: int = 3) -> dict:
    """Median first view after a real sync (precomputed by it), and after a change the
    sync did not precompute (the version moved by hand: the view computes)."""
    warm, cold = [], []
    for _ in range(rounds):
        assert browser.start_sync() == 302
        status = browser.wait_for_sync(timeout=300)
        assert status["status"] == "succeeded", status
        warm.append(first_view(app_url, browser))
        lib.query(db_url, "SELECT bump_data_versions(ARRAY[%s]::bigint[])", (user_id,))
        cold.append(first_view(app_url, browser))
    pick = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    return {
        kind: {key: pick(runs, key) for key in ("frame_ms", "charts_ms", "total_ms")}
        for kind, runs in (("after a sync (precomputed)", warm), ("after an unannounced change", cold))
    }


def baseline_view(app_url: str, browser: lib.Browser, rounds: int = 5) -> dict:
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        assert browser.session.get(app_url + "/dashboard", timeout=60).status_code == 200
        runs.append((time.perf_counter() - started) * 1000)
    return {"frame_ms": statistics.median(runs), "charts_ms": 0.0, "total_ms": statistics.median(runs)}


# -- 4. the browser -------------------------------------------------------------------
PAINT = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const fcp = performance.getEntriesByName('first-contentful-paint')[0];
    return {ttfb: nav.responseStart - nav.startTime, fcp: fcp ? fcp.startTime : null,
            shift: window.__layoutShift || 0};
}"""
SHIFT_OBSERVER = """
window.__layoutShift = 0;
new PerformanceObserver(list => {
    for (const e of list.getEntries()) if (!e.hadRecentInput) window.__layoutShift += e.value;
}).observe({type: 'layout-shift', buffered: true});
"""
ALL_DRAWN = """() => typeof Chart !== 'undefined' && [...document.querySelectorAll('[data-chart]')].every(f =>
    Chart.getChart(f.querySelector('canvas')) || !f.querySelector('.chart-empty').hidden)"""


def browser_timings(app_url: str, cookie: str, loads: int = 5) -> dict:
    from playwright.sync_api import sync_playwright

    runs = []
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            for _ in range(loads):
                context = chromium.new_context(viewport={"width": 1280, "height": 900})
                context.add_cookies([{"name": "session", "value": cookie, "url": app_url}])
                context.add_init_script(SHIFT_OBSERVER)
                page = context.new_page()
                page.emulate_media(reduced_motion="reduce")
                started = time.perf_counter()
                page.goto(app_url + "/dashboard", wait_until="commit")
                page.wait_for_function(ALL_DRAWN, timeout=60_000)
                drawn = (time.perf_counter() - started) * 1000
                timings = page.evaluate(PAINT)
                runs.append({**timings, "drawn": drawn})
                context.close()
        finally:
            chromium.close()
    return {key: statistics.median(r[key] for r in runs if r[key] is not None) for key in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="wrk rounds per page (medians are reported)")
    parser.add_argument("--baseline", help="an older revision to measure beside this checkout (e.g. 0c512a1)")
    parser.add_argument("--plays", type=int, default=300_000)
    parser.add_argument("--trigger-rounds", type=int, default=3, help="bulk inserts timed each way")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--page", action="append", default=[], help="another page to measure (a path)")
    args = parser.parse_args()
    out, verdicts = [], {}

    with tempfile.TemporaryDirectory(prefix="bench-fast-pages-") as tmp_name:
        tmp = Path(tmp_name)
        stack = lib.Stack(tmp)
        checkout = None
        try:
            print("logging the five listeners in and syncing ...", file=sys.stderr, flush=True)
            apps = {}
            if args.baseline:
                checkout = baseline_checkout(args.baseline, tmp)
                apps["before"] = stack.gunicorn("before", code=checkout, **DEFAULTS)
            apps["after"] = stack.gunicorn("after", **DEFAULTS)
            browsers = {name: lib.Browser(apps["after"].url, name).log_in() for name in lib.LISTENERS}
            for browser in browsers.values():
                status = browser.wait_for_sync(timeout=300)
                assert status["status"] == "succeeded", status
                # the first view shows the login's flash message once, as a person's browser
                # would: a cookie that kept it would make every wrk view a flash page, which
                # is never kept (it must show once), and measure that instead of the page
                assert browser.session.get(apps["after"].url + "/dashboard", timeout=60).status_code == 200
            stack.analyze()
            cookies = [b.cookie for b in browsers.values()]
            pages = pages_of(apps["after"].url, cookies[0], args.page)

            heavy = browsers[HEAVY_LISTENER]
            heavy_id = lib.query(stack.db_url, "SELECT id FROM users WHERE spotify_id = %s", (HEAVY_LISTENER,))[0][0]
            print(f"the trigger's price on {args.plays:,} plays ...", file=sys.stderr, flush=True)
            price = trigger_price(stack.db_url, heavy_id, args.plays, args.trigger_rounds)
            plays = load_plays(stack.db_url, heavy_id, args.plays)
            stack.analyze()
            print(f"first view after a sync ({plays:,} plays) ...", file=sys.stderr, flush=True)
            try:
                views = after_a_sync(apps["after"].url, heavy, stack.db_url, heavy_id)
            except RuntimeError as exc:  # every try shed: say so instead of a number
                print(f"first view not measured: {exc}", file=sys.stderr)
                views = {}
            if "before" in apps:
                views = {"before: every view computes": baseline_view(apps["before"].url, heavy), **views}

            print("wrk ...", file=sys.stderr, flush=True)
            results = throughput(apps, pages, args.seconds, cookies, args.rounds, stack.db_url)
            text, ok = throughput_table(results, list(apps))
            out.append(
                f"\n**Throughput** — wrk {args.seconds} s x {args.rounds} rounds per row, --timeout 10s, 2 threads, "
                f"the five listeners' "
                f"cookies in turn; each app as the Procfile runs it (WEB_CONCURRENCY=2, GUNICORN_THREADS=8, "
                f"DB_POOL_MAX=10, DB_POOL_TIMEOUT=5 s)\n"
            )
            out.append(text)
            missing = "" if any(label == "year in review" for _, label in pages) else " (no year-in-review page yet)"
            verdicts[
                f"after: 64 connections, {', '.join(TARGET_PAGES)} >= 0.5 x /healthz; no timeouts; "
                f"no non-2xx at 16/64{missing}"
            ] = ok

            churn = under_churn(apps, args.seconds, cookies, stack.db_url)
            out.append(
                "\n**256 connections while the data changes** — /dashboard while every listener's data version "
                "moves every 2 s (captures landing mid-burst), /healthz just before:\n"
            )
            out.append(
                "| app | /healthz req/s | /dashboard req/s | p50 ms | p99 ms | non-2xx | timeouts | data changes "
                "| ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
            )
            for name, (health, page) in churn.items():
                out.append(
                    f"| {name} | {health['rps']:.0f} | {page['rps']:.0f} | {page['p50_ms']:.0f} | {page['p99_ms']:.0f} "
                    f"| {page['non2xx']:.0f} | {page['timeouts']:.0f} | {page['changes']} "
                    f"| {page['rps'] / health['rps']:.2f} |"
                )

            out.append(
                f"\n**The data-version trigger on a bulk insert** — one INSERT of {args.plays:,} plays for one "
                f"person, median of {args.trigger_rounds}, rolled back:\n"
            )
            out.append("| plays trigger | seconds |\n|---|---:|")
            out.extend(f"| {label} | {seconds:.2f} |" for label, seconds in price.items())
            extra = price["with the trigger"] - price["trigger disabled"]
            out.append(f"\nThe trigger adds {extra:.2f} s ({100 * extra / price['trigger disabled']:.0f} %).")

            out.append(
                f"\n**First view** — {HEAVY_LISTENER} with {plays:,} plays; GET /dashboard then GET /api/charts "
                "(what the page asks for), median of 3 (5 for before):\n"
            )
            out.append("| when | frame ms | charts ms | total ms |\n|---|---:|---:|---:|")
            for when, v in views.items():
                out.append(f"| {when} | {v['frame_ms']:.0f} | {v['charts_ms']:.0f} | {v['total_ms']:.0f} |")
            first = views.get("after a sync (precomputed)", {}).get("total_ms", float("inf"))
            verdicts["first view after a sync < 300 ms"] = first < 300

            if not args.skip_browser:
                out.append(
                    "\n**In chromium** — /dashboard of a demo listener, median of 5 loads, reduced motion:\n"
                    "\n| app | time to first byte ms | first contentful paint ms | all charts drawn ms "
                    "| layout shift |\n|---|---:|---:|---:|---:|"
                )
                for name, app in apps.items():
                    b = browser_timings(app.url, browsers["ava"].cookie)
                    out.append(f"| {name} | {b['ttfb']:.0f} | {b['fcp']:.0f} | {b['drawn']:.0f} | {b['shift']:.3f} |")
        finally:
            stack.close()
            if checkout:
                remove_checkout(checkout)

    baseline = f", baseline {args.baseline}" if args.baseline else ""
    lib.report(f"\nbench/fast_pages.py, one run; embedded PostgreSQL 18; 2 CPUs{baseline}.", out, verdicts)


if __name__ == "__main__":
    main()
