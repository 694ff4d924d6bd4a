"""Dashboard benchmark: every chart's query for random users on a big data set, against
the same aggregates computed the book's way (load the rows, parse the JSON in Python).

    .venv/bin/python bench/dashboard.py                          # 1,000 users, 200,000 tracks, 52 weeks
    .venv/bin/python bench/dashboard.py --users 100 --tracks 20000 --samples 100   # a quick look

Data (all generated in SQL with generate_series, so loading is fast): USERS users, each with
WEEKS weekly snapshots of RANKS top tracks in each of the 3 time ranges (1,000 x 52 x 3 x 50
= 7.8 million snapshot rows), SAVED saved tracks each, TRACKS tracks with a realistic
provider payload in raw_json (about 1.3 kB) and audio features for 60 % of them. The
server is an embedded PostgreSQL of the benchmark's own, deleted at the end. Prints a
Markdown table for the README.

``generate()`` is also what tests/test_dashboard_explain.py uses, at a small size, to
check the query plans.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import date
from itertools import pairwise
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import dashboard  # noqa: E402
import database  # noqa: E402
import insights_db  # noqa: E402
import search_db  # noqa: E402
import snapshots  # noqa: E402
import spotify  # noqa: E402
from bench import http_load_lib as lib  # noqa: E402

POOL = 300  # tracks each user's list of one time range cycles through
MARKETS = ["AR", "AU", "BR", "CA", "DE", "ES", "FR", "GB", "IT", "JP", "MX", "NL", "SE", "US"]

GENERATE = [
    """
INSERT INTO users (spotify_id, display_name)
SELECT 'bench-user-' || g, 'Bench user ' || g FROM generate_series(1, %(users)s) g
""",
    """
INSERT INTO artists (spotify_id, name, raw_json)
SELECT 'ba' || g, 'Bench Artist ' || g,
       jsonb_build_object('id', 'ba' || g, 'name', 'Bench Artist ' || g, 'type', 'artist')
FROM generate_series(1, %(artists)s) g
""",
    """
INSERT INTO tracks (spotify_id, name, artist_name, primary_artist_id, album_name, duration_ms,
                    release_date, release_date_precision, explicit, raw_json, audio_features)
SELECT id, name, 'Bench Artist ' || artist_no, 'ba' || artist_no, album, duration_ms,
       parse_release_date(release_text, precision), precision, explicit,
       jsonb_build_object(
           'id', id, 'name', name, 'type', 'track', 'uri', 'spotify:track:' || id,
           'href', 'https://api.spotify.com/v1/tracks/' || id, 'explicit', explicit,
           'duration_ms', duration_ms, 'disc_number', 1, 'track_number', 1 + g %% 12, 'is_local', false,
           'external_ids', jsonb_build_object('isrc', 'QZBEN' || lpad(g::text, 7, '0')),
           'external_urls', jsonb_build_object('spotify', 'https://open.spotify.com/track/' || id),
           'artists', jsonb_build_array(artist),
           'album', jsonb_build_object(
               'id', 'bal' || g / 10, 'name', album, 'album_type', 'album', 'total_tracks', 10,
               'release_date', release_text, 'release_date_precision', coalesce(precision, 'year'),
               'available_markets', %(markets)s::jsonb, 'artists', jsonb_build_array(artist),
               'images', jsonb_build_array(
                   jsonb_build_object('url', 'https://i.scdn.co/image/bench640-' || g / 10,
                                      'height', 640, 'width', 640),
                   jsonb_build_object('url', 'https://i.scdn.co/image/bench300-' || g / 10,
                                      'height', 300, 'width', 300),
                   jsonb_build_object('url', 'https://i.scdn.co/image/bench64-' || g / 10, 'height', 64, 'width', 64)),
               'external_urls', jsonb_build_object('spotify', 'https://open.spotify.com/album/bal' || g / 10))),
       CASE WHEN has_features THEN jsonb_build_object(
           'energy', round(energy::numeric, 3), 'valence', round(valence::numeric, 3),
           'danceability', round(random()::numeric, 3), 'tempo', round((60 + random() * 120)::numeric, 1),
           'type', 'audio_features', 'id', id) END
FROM (
    SELECT g, 'bt' || g AS id, 'Bench track ' || g AS name, 'Bench album ' || g / 10 AS album,
           1 + (g * 7919) %% %(artists)s AS artist_no,
           (120000 + random() * 240000 + CASE WHEN random() < 0.03 THEN 400000 ELSE 0 END)::integer AS duration_ms,
           (2026 - floor(power(random(), 2) * 70))::integer AS year,
           (1 + floor(random() * 12))::integer AS month, (1 + floor(random() * 28))::integer AS day,
           random() AS p, random() < 0.18 AS explicit,
           random() < %(features)s AS has_features, random() AS energy, random() AS valence
    FROM generate_series(1, %(tracks)s) g
) x
CROSS JOIN LATERAL (SELECT jsonb_build_object('id', 'ba' || artist_no, 'name', 'Bench Artist ' || artist_no,
                                              'type', 'artist') AS artist,
                           CASE WHEN p < 0.005 THEN NULL WHEN p < 0.10 THEN 'year'
                                WHEN p < 0.20 THEN 'month' ELSE 'day' END AS precision) a
CROSS JOIN LATERAL (SELECT CASE precision
                               WHEN 'year' THEN year::text
                               WHEN 'month' THEN year || '-' || lpad(month::text, 2, '0')
                               WHEN 'day' THEN year || '-' || lpad(month::text, 2, '0')
                                               || '-' || lpad(day::text, 2, '0')
                               ELSE '0000' END AS release_text) r
""",
    """
-- Each (user, range) cycles through POOL tracks, a few places a week (short term fastest):
-- every list holds distinct tracks, and ranks move from one week to the next.
INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank)
SELECT u.id,
       'bt' || (1 + (u.base + r.shift + (((k - 1) + (w * r.step) / 4) * 7) %% %(pool)s) %% %(tracks)s),
       %(end)s::date - (%(weeks)s - 1 - w) * 7, r.name, k
FROM (SELECT id, (substring(spotify_id FROM 12)::bigint * 104729) %% %(tracks)s AS base
      FROM users WHERE spotify_id LIKE 'bench-user-%%') u
CROSS JOIN (VALUES ('short_term', 12, 0), ('medium_term', 4, 1000), ('long_term', 1, 2000)) AS r(name, step, shift)
CROSS JOIN generate_series(0, %(weeks)s - 1) w
CROSS JOIN generate_series(1, %(ranks)s) k
""",
    """
INSERT INTO saved_tracks (user_id, track_id, added_at)
SELECT u.id, 'bt' || (1 + (u.base * 3 + j * 13) %% %(tracks)s),
       %(end)s::timestamptz - random() * interval '3650 days'
FROM (SELECT id, (substring(spotify_id FROM 12)::bigint * 104729) %% %(tracks)s AS base
      FROM users WHERE spotify_id LIKE 'bench-user-%%') u
CROSS JOIN generate_series(0, %(saved)s - 1) j
""",
]


def generate(
    cur,
    *,
    users: int,
    tracks: int,
    weeks: int,
    ranks: int,
    saved: int,
    end: date,
    features: float = 0.6,
    seed: float = 0.42,
    report=None,
) -> None:
    """Fill an empty schema with bench data, all in SQL. Does not commit."""
    if tracks % 13 == 0 or tracks < max(POOL + 2000, saved) or ranks > POOL:
        raise ValueError("tracks must not be a multiple of 13 and must exceed the pools and libraries")
    params = {
        "users": users,
        "tracks": tracks,
        "weeks": weeks,
        "ranks": ranks,
        "saved": saved,
        "end": end,
        "features": features,
        "artists": max(tracks // 8, 1),
        "pool": POOL,
        "markets": json.dumps(MARKETS),
    }
    cur.execute("SELECT setseed(%s)", (seed,))
    for statement, what in zip(GENERATE, ("users", "artists", "tracks", "snapshots", "saved_tracks"), strict=True):
        started = time.perf_counter()
        cur.execute(statement, params)
        if report:
            report(f"{what}: {cur.rowcount:,} rows in {time.perf_counter() - started:.1f} s")


# -- the load, with secondary indexes and foreign keys built once at the end -----------
LOADED_TABLES = ("tracks", "snapshots", "saved_tracks")


def drop_secondary(cur) -> list[str]:
    """Drop foreign keys, unique constraints and non-primary indexes of the loaded tables;
    returns the statements that put them back exactly as the schema made them."""
    cur.execute(
        """
        SELECT format('ALTER TABLE %%I ADD CONSTRAINT %%I %%s', conrelid::regclass, conname, pg_get_constraintdef(oid)),
               format('ALTER TABLE %%I DROP CONSTRAINT %%I', conrelid::regclass, conname), contype
        FROM pg_constraint WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('f', 'u')
        ORDER BY contype DESC""",
        (list(LOADED_TABLES),),
    )  # unique first back, then foreign keys
    constraints = cur.fetchall()
    cur.execute(
        """
        SELECT indexdef, format('DROP INDEX %%I', indexname) FROM pg_indexes
        WHERE tablename = ANY(%s) AND indexname NOT IN (SELECT conname FROM pg_constraint)""",
        (list(LOADED_TABLES),),
    )
    indexes = cur.fetchall()
    for _, drop, _ in sorted(constraints, key=lambda c: c[2]):  # foreign keys go first
        cur.execute(drop)
    for _, drop in indexes:
        cur.execute(drop)
    return (
        [i[0] for i in indexes]
        + [c[0] for c in constraints if c[2] == "u"]
        + [c[0] for c in constraints if c[2] == "f"]
    )


def load(url: str, args, report) -> None:
    with psycopg2.connect(url) as conn:
        database.apply_schema(conn)
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '1GB'; SET synchronous_commit = off")
            restore = drop_secondary(cur)
            generate(
                cur,
                users=args.users,
                tracks=args.tracks,
                weeks=args.weeks,
                ranks=args.ranks,
                saved=args.saved,
                end=date.today(),
                report=report,
            )
            started = time.perf_counter()
            for statement in restore:
                cur.execute(statement)
            report(f"indexes and constraints rebuilt in {time.perf_counter() - started:.1f} s")
    conn.close()
    conn = psycopg2.connect(url)
    conn.autocommit = True
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("VACUUM (ANALYZE)")  # the visibility map makes index-only scans possible
        cur.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
        report(f"VACUUM ANALYZE in {time.perf_counter() - started:.1f} s; database {database.fetch_value(cur)}")
    conn.close()


# -- the book's way: load the rows, parse the JSON in Python ---------------------------
MY_TRACK_ROWS = f"""
SELECT raw_json, audio_features FROM tracks WHERE spotify_id = ANY (ARRAY(
    SELECT track_id FROM saved_tracks
    WHERE user_id = %(user_id)s AND added_at >= {database.SINCE}::timestamp AT TIME ZONE 'UTC'
    UNION
    SELECT track_id FROM snapshots
    WHERE user_id = %(user_id)s AND snapshot_date >= {database.SINCE}
))
"""  # the same set of tracks, found the same way, as insights_db.MY_TRACKS


def my_tracks(cur, user_id, since):
    cur.execute(MY_TRACK_ROWS, {"user_id": user_id, "since": since})  # psycopg2 json.loads every value
    return cur.fetchall()


def book_explicit(cur, user_id, f):
    flags = Counter(raw.get("explicit") for raw, _ in my_tracks(cur, user_id, f.since))
    return {"explicit": flags[True], "clean": flags[False]}


def book_release_years(cur, user_id, f):
    years: Counter[int | None] = Counter()  # None: no usable year
    for raw, _ in my_tracks(cur, user_id, f.since):
        text = (raw.get("album") or {}).get("release_date") or ""
        years[int(text[:4]) if text[:4].isdigit() and int(text[:4]) >= 1000 else None] += 1
    return years


def book_durations(cur, user_id, f):
    lengths = [raw["duration_ms"] for raw, _ in my_tracks(cur, user_id, f.since) if "duration_ms" in raw]
    return Counter(min(ms // 60000, 10) for ms in lengths), statistics.median(lengths) if lengths else None


def book_energy(cur, user_id, f):
    return Counter(
        min(max(int(features["energy"] * 10) + 1, 1), 10)
        for _, features in my_tracks(cur, user_id, f.since)
        if features and "energy" in features
    )


def book_mood(cur, user_id, f):
    return Counter(
        (features["energy"] >= 0.5, features["valence"] >= 0.5)
        for _, features in my_tracks(cur, user_id, f.since)
        if features and "energy" in features
    )


def snapshot_rows(cur, user_id, time_range):
    cur.execute(
        "SELECT snapshot_date, track_id, rank FROM snapshots WHERE user_id = %s AND time_range = %s",
        (user_id, time_range),
    )
    days: defaultdict[date, dict[str, int]] = defaultdict(dict)
    for day, track_id, rank in cur.fetchall():
        days[day][track_id] = rank
    return days


def book_turnover(cur, user_id, f):
    days = snapshot_rows(cur, user_id, f.time_range)
    ordered = sorted(days)
    since = f.since or date.min
    return [
        (day, sum(1 for t in days[day] if t not in days[previous]))
        for previous, day in pairwise(ordered)
        if day >= since
    ]


def book_rank_movement(cur, user_id, f):
    days = snapshot_rows(cur, user_id, f.time_range)
    if not days:
        return []
    latest = days[max(days)]
    top = sorted((rank, track) for track, rank in latest.items())[:10]
    shown = [d for d in sorted(days) if d >= (f.since or date.min)]
    cur.execute("SELECT spotify_id, name FROM tracks WHERE spotify_id = ANY(%s)", ([t for _, t in top],))
    names = dict(cur.fetchall())
    return [(names[t], [days[d].get(t) for d in shown]) for _, t in top]


BOOK = {
    "rank-movement": book_rank_movement,
    "turnover": book_turnover,
    "release-years": book_release_years,
    "explicit": book_explicit,
    "durations": book_durations,
    "energy": book_energy,
    "mood": book_mood,
}


WORD_LIST = Path("/usr/share/dict/words")  # Debian: apt-get install -y wamerican-huge
SYLLABLES = (
    "a an ar as at ba be bi bo bu ca ce ch co cu da de di do du el en er es fa fe fi fo ga ge go "
    "ha he hi ho in ing is it ka la le li lo lu ma me mi mo mu na ne ni no nu on or ou pa pe pi po "
    "ra re ri ro ru sa se sh si so st su ta te th ti to tr tu un ve vi wa we wi ya yo za"
).split()


def vocabulary(size: int) -> tuple[list[str], str]:
    """Real words from the system word list when there is one, else made-up words of 2-5
    common syllables; returns (words, where they came from)."""
    if WORD_LIST.exists():
        words = sorted({w.strip().lower() for w in WORD_LIST.read_text(errors="ignore").split() if "'" not in w})
        if len(words) > size:  # a fair sample, not the first letters of the alphabet
            words = sorted(random.Random(7).sample(words, size))
        return words, str(WORD_LIST.resolve())
    rng = random.Random(7)
    return sorted({"".join(rng.choices(SYLLABLES, k=rng.randint(2, 5))) for _ in range(size)}), "made-up words"


def add_vocabulary(url: str, size: int, report) -> str:
    """The generated names use few distinct words ("bench", "track", numbers), which would
    make search's spelling lookup unrealistically cheap: top search_words (and its
    deletion variants) up to ``size`` words, a real catalogue's vocabulary."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM search_words")
        have = database.fetch_value(cur)
        words, source = vocabulary(size)
        if have < min(size, len(words)) // 2:
            cur.execute("SELECT remember_search_words(%s::text[])", (words,))
            cur.execute("ANALYZE search_words, search_word_variants")
            report(f"vocabulary: search_words topped up with {source}")
        cur.execute("SELECT count(*) FROM search_words")
        total = database.fetch_value(cur)
    conn.close()
    return f"{total:,} words in search_words ({source})"


def already_loaded(url: str) -> bool:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('snapshots') IS NOT NULL")
        loaded = database.fetch_value(cur)
        if loaded:
            cur.execute("SELECT EXISTS (SELECT 1 FROM snapshots)")
            loaded = database.fetch_value(cur)
    conn.close()
    return loaded


# -- measuring -----------------------------------------------------------------------
# the statements behind each chart, for the plans column
CHART_SQL = {
    "rank-movement": [snapshots.RANK_MOVEMENT],
    "turnover": [snapshots.TURNOVER],
    "discovery": [snapshots.DISCOVERY],
    "artist-diversity": [snapshots.ARTIST_DIVERSITY],
    "consistent-artists": [snapshots.CONSISTENT_ARTISTS],
    "library-growth": [insights_db.LIBRARY_GROWTH],
    "release-years": [insights_db.RELEASE_YEARS],
    "decades": [insights_db.RELEASE_DECADES],
    "explicit": [insights_db.EXPLICIT_SHARE],
    "durations": [insights_db.DURATIONS],
    "energy": [insights_db.AUDIO_FEATURE_COVERAGE, insights_db.ENERGY],
    "mood": [insights_db.AUDIO_FEATURE_COVERAGE, insights_db.MOOD_QUADRANTS],
}
BIG_TABLES = {"snapshots", "saved_tracks", "tracks"}


def plan_summary(cur, user_id: int) -> dict:
    """Per chart: the indexes its plans use, and any sequential scan of a big table."""
    summary = {}
    for name, statements in CHART_SQL.items():
        indexes, seq_scans = set(), set()
        for statement in statements:
            cur.execute(
                "EXPLAIN (FORMAT JSON) " + statement,
                {"user_id": user_id, "time_range": "medium_term", "since": None, "limit": 10},
            )
            stack = [cur.fetchone()[0][0]["Plan"]]
            while stack:
                node = stack.pop()
                stack.extend(node.get("Plans", []))
                if node.get("Index Name"):
                    indexes.add(node["Index Name"])
                if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES:
                    seq_scans.add(node["Relation Name"])
        summary[name] = ", ".join(sorted(indexes)) + (
            f"; SEQ SCAN of {', '.join(sorted(seq_scans))}" if seq_scans else ""
        )
    return summary


def measure(url: str, samples: int, warmup: int = 20, seed: int = 7) -> tuple[dict, dict]:
    rng = random.Random(seed)
    timings: defaultdict[tuple[str, str], list[float]] = defaultdict(list)
    conn = psycopg2.connect(url, connection_factory=database.Connection)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM users WHERE spotify_id LIKE 'bench-user-%' ORDER BY id")
        ids = [row[0] for row in cur.fetchall()]
        plans = plan_summary(cur, rng.choice(ids))
        conn.rollback()
        for sample in range(-warmup, samples):  # the first draws warm the caches and are not counted
            if sample == 0:
                timings.clear()
            user_id = rng.choice(ids)
            filters = dashboard.Filters(rng.choice(spotify.TIME_RANGES), rng.choice(list(dashboard.PERIODS)))
            for name in dashboard.CHARTS:
                started = time.perf_counter()
                dashboard.build_charts(cur, user_id, filters, [name])  # one /api/charts/<name> call's SQL
                conn.rollback()
                timings[("sql", name)].append(time.perf_counter() - started)
            started = time.perf_counter()
            dashboard.build_charts(cur, user_id, filters)  # the whole page's first paint
            conn.rollback()
            timings[("sql", "all charts (page)")].append(time.perf_counter() - started)
            for name, book in BOOK.items():
                started = time.perf_counter()
                book(cur, user_id, filters)
                conn.rollback()
                timings[("book", name)].append(time.perf_counter() - started)
            for kind, query in search_queries(rng):
                started = time.perf_counter()
                found = search_db.search_tracks(cur, user_id, query)  # one /search?q= page's SQL
                conn.rollback()
                timings[("search", kind)].append(time.perf_counter() - started)
                timings[("search hits", kind)].append(found["total"])
    conn.close()
    return timings, plans


def search_queries(rng: random.Random) -> list[tuple[str, str]]:
    """Searches a person might type: a word in every one of their tracks (the most rows to
    rank), one artist (usually not theirs: nothing found, even after the typo fallback),
    and typos whose corrections match every track."""
    return [
        ('a word in every track ("track")', "track"),
        ('one artist ("artist 1234")', f"artist {rng.randint(1, 25_000)}"),
        ('a typo matching every track ("bench trak")', "bench trak"),
        ('two typos ("bnech atrist")', "bnech atrist"),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--tracks", type=int, default=200_000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--ranks", type=int, default=50)
    parser.add_argument("--saved", type=int, default=1000, help="saved tracks per user")
    parser.add_argument("--vocabulary", type=int, default=300_000, help="distinct words search_words should hold")
    parser.add_argument("--samples", type=int, default=200, help="random (user, filters) draws per query")
    parser.add_argument("--data-dir", help="keep the loaded server here and reuse it next time")
    args = parser.parse_args()

    with lib.embedded_server(args.data_dir, "bench-dashboard-") as url:
        # --data-dir keeps the loaded server for another run (same sizes); default: deleted
        started = time.perf_counter()
        loaded_now = not already_loaded(url)
        if loaded_now:
            lib.progress("loading…")
            load(url, args, lib.progress)
        load_seconds = time.perf_counter() - started
        words_note = add_vocabulary(url, args.vocabulary, lib.progress)
        with psycopg2.connect(url) as conn, conn.cursor() as cur:
            cur.execute(
                "SELECT (SELECT count(*) FROM snapshots), (SELECT count(*) FROM tracks), "
                "(SELECT count(*) FROM saved_tracks), (SELECT count(*) FROM users), "
                "current_setting('server_version')"
            )
            totals = database.fetch_single(cur).values()
            snapshot_rows_total, tracks_total, saved_total, users_total, version = totals
        conn.close()
        lib.progress("measuring…")
        timings, plans = measure(url, args.samples)

    print(
        f"\n{users_total:,} users x {args.weeks} weekly snapshots x 3 ranges x {args.ranks} ranks = "
        f"{snapshot_rows_total:,} snapshot rows; {tracks_total:,} tracks; {saved_total:,} saved tracks; "
        f"{'loaded in ' + format(load_seconds, '.0f') + ' s' if loaded_now else 'loaded earlier (--data-dir)'}. "
        f"PostgreSQL {version} (embedded), {args.samples} random "
        "(user, time range, period) draws per query after 20 warm-up draws, one connection, 2 cores.\n"
    )
    print(
        "| chart (`/api/charts/<name>`) | SQL p50 ms | SQL p95 ms | book's way p50 ms | book's way p95 ms "
        "| book ÷ SQL (p50) | indexes in the plan |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for name in [*dashboard.CHARTS, "all charts (page)"]:
        sql = timings[("sql", name)]
        book = timings.get(("book", name))
        book_cells = (
            (
                f"{lib.percentile(book, 0.5):.1f} | {lib.percentile(book, 0.95):.1f} | "
                f"{lib.percentile(book, 0.5) / lib.percentile(sql, 0.5):.1f}x"
            )
            if book
            else "– | – | –"
        )
        print(
            f"| {name} | {lib.percentile(sql, 0.5):.1f} | {lib.percentile(sql, 0.95):.1f} | {book_cells} "
            f"| {plans.get(name, '')} |"
        )
    worst = max(lib.percentile(timings[("sql", n)], 0.95) for n in dashboard.CHARTS)
    print(f"\nWorst per-chart p95: {worst:.1f} ms (target < 50 ms).\n")
    print("| search (`/search?q=`, first page of 20) | p50 ms | p95 ms | median matches |")
    print("|---|---:|---:|---:|")
    kinds = [kind for source, kind in timings if source == "search"]
    for kind in kinds:
        times = timings[("search", kind)]
        print(
            f"| {kind} | {lib.percentile(times, 0.5):.1f} | {lib.percentile(times, 0.95):.1f} "
            f"| {statistics.median(timings[('search hits', kind)]):.0f} |"
        )
    worst_search = max(lib.percentile(timings[("search", kind)], 0.95) for kind in kinds)
    print(f"\nSearch vocabulary: {words_note}.")
    print(f"\nWorst search p95: {worst_search:.1f} ms (target < 20 ms).")


if __name__ == "__main__":
    main()
