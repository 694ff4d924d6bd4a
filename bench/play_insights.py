"""Listening-chart benchmark: every plays_insights_db query for a heavy listener (300,000
plays over ten years) among 10 million plays in the database, per period a person picks.

    .venv/bin/python bench/play_insights.py                      # 10 M plays, the README's table
    .venv/bin/python bench/play_insights.py --plays 1000000 --samples 20   # a quick look

Data (generated in SQL with generate_series): one heavy listener with HEAVY plays spread
over ten years (about 80 a day, at the hours people listen), and ordinary listeners with
ORDINARY plays each over three years until PLAYS plays in all, each user's rows written
together as an import writes them; TRACKS tracks by TRACKS / 8 artists (eight tracks in a
row by one artist, so a listener's pool of 20,000 tracks holds 2,500 artists, as a real
library holds several tracks of an artist), each listener drawing from a skewed pool of
their own; 15 % skipped, 5 % captured plays without ms_played (their length comes from
the track). The server is an embedded PostgreSQL of the benchmark's own, deleted at the
end (or kept with --data-dir). Prints a Markdown table
for the README: per chart and period, p50 and p95 of SAMPLES runs after warm-up, each run
in its own transaction on one connection, as one chart request would.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import database  # noqa: E402
import plays_insights_db as pdb  # noqa: E402
from bench import http_load_lib as lib  # noqa: E402

TZ = "Europe/Berlin"
TARGET_MS = 50
TODAY = date(2026, 11, 2)

GENERATE_CATALOGUE = [
    """
INSERT INTO artists (spotify_id, name)
SELECT 'ba' || g, 'Bench Artist ' || g FROM generate_series(1, %(artists)s) g
""",
    """
INSERT INTO tracks (spotify_id, name, artist_name, primary_artist_id, album_name, duration_ms)
SELECT 'bt' || g, 'Bench Track ' || g, 'Bench Artist ' || ((g - 1) / 8 %% %(artists)s + 1),
       'ba' || ((g - 1) / 8 %% %(artists)s + 1),
       'Bench Album ' || (g / 10), 120000 + (g * 7919) %% 240000
FROM generate_series(1, %(tracks)s) g
""",
]

# One user's plays: ``n`` plays over ``days`` days before TODAY, the same number each day,
# back to back (3.5 minutes apart) in sessions of 25 from 7:00 local time with three hours
# between sessions; tracks from a pool of 20,000 starting at the user's own offset, the
# first ones played far more often (a cube of a uniform draw).
GENERATE_PLAYS = """
INSERT INTO plays (user_id, played_at, track_id, ms_played, skipped, reason_start, reason_end, shuffle,
                   platform, country, source)
SELECT %(user_id)s, played_at, 'bt' || track_no,
       CASE WHEN captured THEN NULL WHEN skip THEN (random() * 30000)::int
            ELSE 120000 + (track_no * 7919) %% 240000 END,
       CASE WHEN captured THEN NULL ELSE skip END,
       CASE WHEN captured THEN NULL ELSE 'clickrow' END,
       CASE WHEN captured THEN NULL WHEN skip THEN 'fwdbtn' ELSE 'trackdone' END,
       CASE WHEN captured THEN NULL ELSE random() < 0.3 END,
       CASE WHEN captured THEN NULL ELSE 'android' END,
       CASE WHEN captured THEN NULL ELSE 'DE' END,
       CASE WHEN captured THEN 'polling' ELSE 'export' END
FROM (
    SELECT %(end)s::timestamp AT TIME ZONE 'Europe/Berlin' - make_interval(days => %(days)s)
           + make_interval(days => g / %(per_day)s, hours => 7 + 3 * ((g %% %(per_day)s) / 25),
                           secs => 210 * (g %% %(per_day)s)) AS played_at,
           1 + (%(offset)s + (power(random(), 3) * 20000)::int) %% %(tracks)s AS track_no,
           random() < 0.15 AS skip, random() < 0.05 AS captured
    FROM generate_series(1, %(n)s) g
) AS generated
ON CONFLICT DO NOTHING
"""


def load(url: str, args, report) -> int:
    """Fill the database; returns the heavy listener's id."""
    with psycopg2.connect(url) as conn:
        database.apply_schema(conn)
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'; SET synchronous_commit = off")
            cur.execute("SELECT setseed(0.42)")
            started = time.perf_counter()
            for statement in GENERATE_CATALOGUE:
                cur.execute(statement, {"artists": max(args.tracks // 8, 1), "tracks": args.tracks})
            cur.execute("ALTER TABLE plays DROP CONSTRAINT plays_track_id_fkey")
            ordinary = max((args.plays - args.heavy) // args.ordinary, 0)
            cur.execute(
                "INSERT INTO users (spotify_id, time_zone) SELECT 'bench-' || g, %s FROM generate_series(0, %s) g "
                "RETURNING id",
                (TZ, ordinary),
            )
            ids = [row[0] for row in cur.fetchall()]
            heavy = ids[len(ids) // 2]  # in the middle of the table, not at an end
            for n, user_id in enumerate(ids):
                size, days = (args.heavy, 3652) if user_id == heavy else (args.ordinary, 1095)
                cur.execute(
                    GENERATE_PLAYS,
                    {
                        "user_id": user_id,
                        "n": size,
                        "days": days,
                        "per_day": -(-size // days),
                        "end": TODAY,
                        "offset": (n * 7_919) % args.tracks,
                        "tracks": args.tracks,
                    },
                )
                if n % 100 == 0:
                    report(f"plays: {n + 1} of {len(ids)} users, {time.perf_counter() - started:.0f} s")
            cur.execute(
                "ALTER TABLE plays ADD CONSTRAINT plays_track_id_fkey FOREIGN KEY (track_id) "
                "REFERENCES tracks (spotify_id)"
            )
            report(f"loaded in {time.perf_counter() - started:.0f} s")
    conn.close()
    with psycopg2.connect(url, connection_factory=database.Connection) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        for user_id in ids:  # what each person's first page view after their import does
            pdb.refresh_rollups(cur, user_id)
        report(f"rollups built in {time.perf_counter() - started:.0f} s")
    conn.close()
    vacuum(url)
    return heavy


def vacuum(url: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM (ANALYZE)")  # the visibility map makes index-only scans possible
    conn.close()


def periods() -> dict:
    """What a person picks: the dashboard's default, one year's review, everything."""
    return {
        "last 12 months": (date(TODAY.year - 1, TODAY.month, TODAY.day), TODAY),
        "year 2023": (date(2023, 1, 1), date(2023, 12, 31)),
        "all history": (None, None),
    }


def charts(first, last) -> dict:
    """chart name -> a call of its query, as the listening pages make it (``plain``: the
    same numbers from plays alone, without the rollups)."""
    grain = "month" if first is None else "week"
    return {
        "minutes per " + grain: lambda cur, u, plain: pdb.listening_minutes(cur, u, first, last, grain, plain),
        "hour × weekday heatmap": lambda cur, u, plain: pdb.hour_weekday_heatmap(cur, u, first, last, plain),
        "top tracks by plays": lambda cur, u, plain: pdb.top_items(
            cur, u, first, last, "tracks", "plays", from_plays=plain
        ),
        "top artists by minutes": lambda cur, u, plain: pdb.top_items(
            cur, u, first, last, "artists", "minutes", from_plays=plain
        ),
        "top albums by minutes": lambda cur, u, plain: pdb.top_items(
            cur, u, first, last, "albums", "minutes", from_plays=plain
        ),
        "skip rate": lambda cur, u, plain: pdb.skip_rate(cur, u, first, last, plain),
        "skip rate per month": lambda cur, u, plain: pdb.skip_rate_by_month(cur, u, first, last, plain),
        "discoveries per month": lambda cur, u, plain: pdb.discoveries(cur, u, first, last, plain),
        "longest streak": lambda cur, u, plain: pdb.longest_streak(cur, u, first, last, plain),
        "totals": lambda cur, u, plain: pdb.totals(cur, u, first, last, plain),
        "first plays": lambda cur, u, plain: pdb.first_plays(cur, u, first, last, from_plays=plain),
        "most skipped": lambda cur, u, plain: pdb.most_skipped(cur, u, first, last, from_plays=plain),
        "played tracks (time machine playlist)": lambda cur, u, plain: pdb.played_tracks(
            cur, u, first, last, from_plays=plain
        ),
    }


def timed(conn, runs: int, warmup: int, call, *args) -> list[float]:
    """Seconds of ``runs`` calls after ``warmup`` uncounted ones, each in its own transaction."""
    seconds = []
    for sample in range(warmup + runs):
        started = time.perf_counter()
        call(*args)
        conn.rollback()
        if sample >= warmup:
            seconds.append(time.perf_counter() - started)
    return seconds


def measure(url: str, heavy: int, samples: int, plain_samples: int, warmup: int = 3) -> tuple[dict, dict]:
    """Timings per (chart, period) from the rollups, and (``plain_samples`` runs) from plays alone."""
    timings, plain = {}, {}
    conn = psycopg2.connect(url, connection_factory=database.Connection)
    with conn.cursor() as cur:
        for period, (first, last) in periods().items():
            for name, run in charts(first, last).items():
                timings[(name, period)] = timed(conn, samples, warmup, run, cur, heavy, False)
                if plain_samples:
                    plain[(name, period)] = timed(conn, plain_samples, 1, run, cur, heavy, True)
        timings[("on this day (1, 5, 10 years)", "–")] = timed(
            conn, samples, warmup, lambda: pdb.on_this_day(cur, heavy, TODAY)
        )
        # how fast the machine is at the moment (shared cores): the same CPU-bound statement
        # takes about 5 ms on an idle core
        timings[("reference: count(*) over generate_series(1, 100000)", "–")] = timed(
            conn, samples, warmup, cur.execute, "SELECT count(*) FROM generate_series(1, 100000)"
        )
        refreshes = {
            "rollup refresh after a capture (one month)": date(TODAY.year, TODAY.month, 1),
            "rollup rebuild, whole history (time zone change)": None,
        }
        for name, month in refreshes.items():

            def refresh(month=month):
                cur.execute("INSERT INTO play_rollup_dirty (user_id, month) VALUES (%s, %s)", (heavy, month))
                pdb.refresh_rollups(cur, heavy)

            timings[(name, "–")] = timed(conn, 2, 0, refresh)
    conn.close()
    return timings, plain


def already_loaded(url: str) -> int | None:
    try:
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute("SELECT user_id FROM plays GROUP BY user_id ORDER BY count(*) DESC LIMIT 1")
            row = cur.fetchone()
        conn.close()
        return row[0] if row else None
    except psycopg2.Error:
        return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plays", type=int, default=10_000_000, help="plays in the database in all")
    parser.add_argument("--heavy", type=int, default=300_000, help="plays of the heavy listener")
    parser.add_argument("--ordinary", type=int, default=10_000, help="plays of each other listener")
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--samples", type=int, default=40, help="runs of each query (after 3 warm-up runs)")
    parser.add_argument(
        "--plain-samples",
        type=int,
        default=5,
        help="runs of each chart from plays alone, no rollups (0: none)",
    )
    parser.add_argument(
        "--all-rollups",
        action="store_true",
        help="with --data-dir: rebuild every listener's stale rollups, not just the measured one's",
    )
    parser.add_argument("--data-dir", help="keep the loaded server here and reuse it next time")
    args = parser.parse_args()

    with lib.embedded_server(args.data_dir, "bench-plays-") as url:
        heavy = already_loaded(url)
        if heavy is None:
            lib.progress("loading…")
            heavy = load(url, args, lib.progress)
        else:
            with psycopg2.connect(url, connection_factory=database.Connection) as catching_up:
                database.apply_schema(catching_up)  # tables and indexes added since the data was loaded
            catching_up.close()
            # rollups a load did not finish, or a new schema's: the measured listener's
            # first, then (--all-rollups) everyone else's, committed as they go
            catching_up = psycopg2.connect(url, connection_factory=database.Connection)
            with catching_up.cursor() as cur:
                cur.execute(
                    "SELECT user_id FROM play_rollup_dirty GROUP BY 1 ORDER BY user_id <> %s, user_id", (heavy,)
                )
                behind = [row[0] for row in cur.fetchall()][: None if args.all_rollups else 1]
                for n, user_id in enumerate(behind):
                    pdb.refresh_rollups(cur, user_id)
                    catching_up.commit()
                    if n % 50 == 0:
                        lib.progress(f"rollups: {n + 1} of {len(behind)} listeners")
            catching_up.close()
            if behind:
                vacuum(url)
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(DISTINCT user_id) FROM play_tracks) AS rolled, "
                "(SELECT count(*) FROM plays) AS total, "
                "(SELECT count(*) FROM plays WHERE user_id = %s) AS mine, "
                "(SELECT count(*) FROM users) AS users, current_setting('server_version') AS version",
                (heavy,),
            )
            rolled, total, mine, users, version = database.fetch_single(cur).values()
        conn.close()
        lib.progress("measuring…")
        timings, plain = measure(url, heavy, args.samples, args.plain_samples)

    charted = {key: times for key, times in timings.items() if not key[0].startswith(("rollup", "reference"))}
    worst = max(charted, key=lambda key: lib.percentile(charted[key], 0.95))
    worst_p95 = lib.percentile(charted[worst], 0.95)
    lib.report(
        f"\n{total:,} plays of {users:,} listeners ({rolled:,} with rollups); the one measured has {mine:,} plays "
        "over ten years. "
        f"PostgreSQL {version} (embedded), {args.samples} runs per query after 3 warm-up runs "
        f"({args.plain_samples} after one from plays alone), "
        "one connection, 2 cores, time zone Europe/Berlin.\n",
        [
            *lib.timing_table(["chart", "period"], timings, plain, "from plays alone"),
            f"\nWorst p95: {worst_p95:.1f} ms ({worst[0]}, {worst[1]}).",
        ],
        {f"every chart's p95 < {TARGET_MS} ms": worst_p95 < TARGET_MS},
    )


if __name__ == "__main__":
    main()
