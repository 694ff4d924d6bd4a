#!/usr/bin/env python3
"""Benchmark: migrate_to_postgresql.py vs the book's row-by-row script vs pgloader.

Generates (once, cached under bench/out/) a v1 file with 1M tracks, 300k artists and 3M
playlist entries and a v2 file with 1M tracks and 5M snapshots (``--scale`` shrinks
both), then loads each into a fresh scratch database on one PostgreSQL server with:

- ours: ``migrate_to_postgresql.py`` (cleaning, dedup, the app's schema with all its
  indexes, verification with per-row checksums);
- book: ``bench/book_migration.py``, the chapter's row-by-row approach, on a slice of the
  file (``--book-rows`` rows per table) because it runs at a few thousand rows/s;
- pgloader (Debian package ``pgloader``): its own mirror schema, text copied as text;
- floor (``--tools ...,floor``, after ours): the rows ours produced, already clean, loaded
  with COPY straight into an empty copy of the app's schema in one transaction, indexes,
  constraints and the search dictionary built afterwards, the way ours does it. No SQLite,
  no cleaning, no duplicates, no verification: what PostgreSQL alone needs to build the
  app's tables from this data, the part of a one-transaction migration nothing overlaps.

Prints a markdown table: rows, seconds, rows/s and peak memory of the migrating process
and its children (summed PSS, sampled every 0.2 s; the PostgreSQL server's memory is the
same for all and not counted).

    python bench/migration.py [--scale 1.0] [--admin-url postgresql://postgres@127.0.0.1/postgres]

The server: ``--admin-url`` (a superuser URL), else TEST_DATABASE_URL, else an embedded
PostgreSQL under bench/out/pg.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import database  # noqa: E402
import db_config  # noqa: E402
from legacy_factory import make_v1, make_v2  # noqa: E402
from migration import load as migration_load  # noqa: E402
from migration import upsert as migration_upsert  # noqa: E402
from processes import children_by_parent  # noqa: E402

FULL = {
    "v1": {"artists": 300_000, "tracks": 1_000_000, "entries": 3_000_000},
    "v2": {"tracks": 1_000_000, "snapshots": 5_000_000},
}
TOOL_TIMEOUT = float(os.environ.get("BENCH_TOOL_TIMEOUT", 1200))  # seconds one tool may take
PGLOADER_OPTIONS = (
    "include drop, create tables, create indexes, reset sequences, "
    "batch rows = 5000, prefetch rows = 5000, workers = 2, concurrency = 1"
)


def legacy_file(layout: str, scale: float) -> tuple[Path, int]:
    sizes = {name: max(1, int(count * scale)) for name, count in FULL[layout].items()}
    path = OUT / f"{layout}-{'-'.join(str(v) for v in sizes.values())}.db"
    if not path.exists():
        print(f"generating {path.name} ...", file=sys.stderr, flush=True)
        partial = path.with_suffix(".partial")
        (make_v1 if layout == "v1" else make_v2)(partial, dirty=True, **sizes)
        partial.rename(path)
    conn = sqlite3.connect(path)
    tables = [
        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")
    ]
    rows = sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
    conn.close()
    return path, rows


SLICES = {  # the first rows of each table, closed under references (tracks first)
    "tracks": "SELECT * FROM src.tracks ORDER BY rowid LIMIT :rows",
    "artists": "SELECT * FROM src.artists WHERE id <= :rows OR id IN (SELECT artist_id FROM main.tracks)",
    "playlist_tracks": "SELECT * FROM src.playlist_tracks WHERE track_id IN (SELECT id FROM main.tracks) "
    "ORDER BY rowid LIMIT :rows",
    "snapshots": "SELECT * FROM src.snapshots WHERE track_id IN (SELECT track_id FROM main.tracks) "
    "ORDER BY rowid LIMIT :rows",
}


def sliced_copy(path: Path, rows: int) -> tuple[Path, int]:
    """A consistent slice of a generated file, for the book's slow row-by-row script."""
    target = OUT / f"{path.stem}-slice{rows}-book.db"
    if not target.exists():
        partial = target.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        conn = sqlite3.connect(partial)
        conn.execute("ATTACH DATABASE ? AS src", (str(path),))
        ddl = dict(
            conn.execute(
                "SELECT name, sql FROM src.sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        )
        for name, query in SLICES.items():
            if name not in ddl:
                continue
            conn.execute(ddl[name])
            conn.execute(f'INSERT INTO main."{name}" {query}', {"rows": rows})
            if name != "snapshots":
                # the book's script only parses ISO text: give it the epoch rows as ISO, or it
                # skips them and aborts its transaction at the first foreign key they break
                conn.execute(f"""UPDATE main."{name}" SET created_at = datetime(created_at, 'unixepoch')
                                 WHERE created_at NOT GLOB '*[^0-9]*'""")
        conn.commit()
        conn.close()
        partial.rename(target)
    conn = sqlite3.connect(target)
    total = sum(
        conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
        for (t,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
        ).fetchall()
    )
    conn.close()
    return target, total


def admin_url(option: str | None) -> str:
    url = option or os.environ.get("TEST_DATABASE_URL", "").strip()
    if url:
        return db_config.normalize_database_url(url, "--admin-url")
    return db_config.EmbeddedPostgres(OUT / "pg").admin_url()


def scratch_database(admin: str) -> str:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return urlunsplit(urlsplit(admin)._replace(path="/" + name))


def drop_database(admin: str, url: str) -> None:
    conn = psycopg2.connect(admin)
    conn.autocommit = True
    conn.cursor().execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
    conn.close()


def landed_rows(url: str) -> int:
    """Rows the legacy tables ended up as in the target (whatever schema the tool made)."""
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN
                       ('pg_catalog', 'information_schema') AND table_name = ANY(%s)""",
            (["artists", "tracks", "playlist_tracks", "snapshots"],),
        )
        total = 0
        for (table,) in cur.fetchall():
            cur.execute(f'SELECT count(*) FROM "{table}"')
            total += database.fetch_value(cur)
    conn.close()
    return total


def tree_pss_mb(root: int) -> float:
    """Proportional set size of a process and all its descendants, in MB (Linux /proc).

    PSS, not RSS: forked cleaning workers share their parent's pages, and RSS would count
    those once per process."""
    children = children_by_parent()
    total_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def measure(command: list[str], log: Path) -> tuple[float, float, int]:
    """(seconds, peak memory in MB of the process tree, exit status) of one child process."""
    started = time.monotonic()
    peak = [0.0]
    with log.open("w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT))
        )
        done = threading.Event()

        def sample() -> None:  # memory every 0.2 s; the clock stops when the process does, not at a sample
            while not done.wait(0.2 if peak[0] else 0.02):
                peak[0] = max(peak[0], tree_pss_mb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            proc.wait(timeout=TOOL_TIMEOUT)
        except subprocess.TimeoutExpired:  # pgloader once hung for good on the 200 k v2 file
            proc.kill()
            proc.wait()
            print(f"  killed after {TOOL_TIMEOUT:.0f} s: {' '.join(command[:2])}", file=sys.stderr, flush=True)
        seconds = time.monotonic() - started
        done.set()
        sampler.join()
    return seconds, peak[0], proc.returncode


def run_ours(path: Path, url: str) -> tuple[float, float, int, str]:
    log = OUT / f"ours-{path.stem}.log"
    seconds, memory, status = measure(
        [
            sys.executable,
            "migrate_to_postgresql.py",
            str(path),
            "--database-url",
            url,
            "--rejects",
            str(OUT / f"{path.stem}.rejects.jsonl"),
        ],
        log,
    )
    lines = log.read_text().splitlines()
    verified = [line.split()[2] for line in lines if line.startswith("verified in")]
    note = f"exit {status}; of which verification {verified[0]} s" if verified else f"exit {status}"
    return seconds, memory, status, note


# the app's tables a migration fills, in dependency order, with the columns COPY writes
FLOOR_TABLES = {
    "users": "id, spotify_id, display_name, is_placeholder",
    "artists": "spotify_id, name, raw_json, created_at",
    "tracks": "spotify_id, name, artist_name, primary_artist_id, album_name, duration_ms, "
    "release_date, release_date_precision, explicit, popularity, spotify_url, "
    "raw_json, audio_features, created_at, updated_at",
    "playlists": "id, user_id, kind, name, legacy_key, created_at",
    "playlist_tracks": "playlist_id, track_id, position, added_at",
    "snapshots": "id, user_id, track_id, snapshot_date, time_range, rank",
}


def floor_dir(path: Path) -> Path:
    return OUT / f"floor-{path.stem}"


def dump_for_floor(path: Path, url: str) -> None:
    """Keep what ours landed (clean rows) as COPY files, for the floor run."""
    target = floor_dir(path)
    target.mkdir(exist_ok=True)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        for table, columns in FLOOR_TABLES.items():
            with (target / f"{table}.copy").open("w", encoding="utf-8") as out:
                cur.copy_expert(f"COPY (SELECT {columns} FROM {table} ORDER BY 1) TO STDOUT", out)
    conn.close()


def run_floor(path: Path, url: str) -> tuple[float, float, int, str]:
    """Time PostgreSQL building the app's tables from already-clean COPY files."""
    source = floor_dir(path)
    if not (source / "tracks.copy").exists():
        return float("nan"), float("nan"), -1, "needs ours to run first (--tools ours,floor)"
    conn = psycopg2.connect(url)
    database.apply_schema(conn)
    conn.commit()
    started = time.monotonic()
    with conn.cursor() as cur:
        migration_load.prepare_session(cur)  # ours' session settings (memory, time zone)
        restore = []
        for table in FLOOR_TABLES:  # the same bulk mode as ours: build indexes after the load
            restore += migration_upsert.suspend_for_bulk_load(cur, table) or []
        for table, columns in FLOOR_TABLES.items():
            with (source / f"{table}.copy").open(encoding="utf-8") as data:
                cur.copy_expert(f"COPY {table} ({columns}) FROM STDIN", data, size=1 << 20)
        for statement in restore:
            cur.execute(statement)
    conn.commit()
    seconds = time.monotonic() - started
    conn.close()
    shutil.rmtree(source)  # gigabytes for v2; the next ours run writes it again
    return seconds, float("nan"), 0, "PostgreSQL alone: clean rows COPYed into the app schema"


def run_book(path: Path, url: str) -> tuple[float, float, int, str]:
    seconds, memory, status = measure(
        [sys.executable, "bench/book_migration.py", str(path), url], OUT / f"book-{path.stem}.log"
    )
    return seconds, memory, status, f"exit {status}; row by row, fetchall()"


def run_pgloader(path: Path, url: str) -> tuple[float, float, int, str]:
    if not shutil.which("pgloader"):
        return float("nan"), float("nan"), -1, "pgloader not installed (apt-get install pgloader)"
    command_file = OUT / f"pgloader-{path.stem}.load"
    command_file.write_text(f"LOAD DATABASE FROM sqlite://{path} INTO {url}\n WITH {PGLOADER_OPTIONS};\n")
    log = OUT / f"pgloader-{path.stem}.log"
    seconds, memory, status = measure(["pgloader", str(command_file)], log)
    errors = [line for line in log.read_text().splitlines() if "ERROR" in line]
    return seconds, memory, status, f"exit {status}; {len(errors)} error lines; text JSON, no checks"


# What a person writes after pgloader to reach the app's schema from its text mirror (moved
# to a schema "legacy"): the app's schema from init-db, then one INSERT ... SELECT per table
# with safe casts (a bad value becomes NULL instead of aborting the statement), duplicates
# collapsed onto their first row, references followed, orphans and rank collisions
# dropped, the search dictionary filled by the app's own trigger. Nothing is verified or
# reported: the cheap end of "the same result".
PGLOADER_SQL_FUNCTIONS = r"""
CREATE FUNCTION legacy.ts(value text) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF value ~ '^\s*[0-9]+(\.[0-9]+)?\s*$' THEN
        RETURN to_timestamp(CASE WHEN value::numeric >= 1e11 THEN value::numeric / 1000
                                 ELSE value::numeric END);
    END IF;
    RETURN value::timestamptz;
EXCEPTION WHEN others THEN RETURN NULL;
END $$;
CREATE FUNCTION legacy.obj(value text) RETURNS jsonb LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE parsed jsonb;
BEGIN
    parsed := value::jsonb;
    WHILE jsonb_typeof(parsed) = 'string' LOOP parsed := (parsed #>> '{}')::jsonb; END LOOP;
    RETURN CASE WHEN jsonb_typeof(parsed) = 'object' THEN parsed END;
EXCEPTION WHEN others THEN RETURN NULL;
END $$;
CREATE FUNCTION legacy.num(value text, low bigint, high bigint) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT n FROM (SELECT CASE WHEN trim(value) ~ '^-?[0-9]+(\.0*)?$' THEN trim(value)::numeric::bigint END AS n) x
    WHERE n BETWEEN low AND high
$$;
CREATE FUNCTION legacy.sid(value text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT nullif(regexp_replace(trim(value),
                                 '^(spotify:(track|artist):|https?://open\.spotify\.com/(track|artist)/)', ''), '')
$$;
"""
PGLOADER_SQL = {
    "v1": """
INSERT INTO users (spotify_id, display_name, is_placeholder)
    VALUES ('legacy-owner', 'Legacy SQLite owner', true);
CREATE TEMP TABLE artist_map AS
    SELECT a.id,
           first_value(legacy.sid(a.spotify_id)) OVER (PARTITION BY legacy.sid(a.spotify_id) ORDER BY a.id) AS sid,
           a.name, a.created_at
    FROM legacy.artists a WHERE legacy.sid(a.spotify_id) IS NOT NULL AND trim(a.name) <> '';
INSERT INTO artists (spotify_id, name, created_at)
    SELECT DISTINCT ON (sid) sid, name, coalesce(legacy.ts(created_at), now()) FROM artist_map ORDER BY sid, id;
CREATE TEMP TABLE track_map AS
    SELECT t.*, first_value(legacy.sid(t.spotify_id)) OVER (PARTITION BY legacy.sid(t.spotify_id) ORDER BY t.id) AS sid
    FROM legacy.tracks t WHERE legacy.sid(t.spotify_id) IS NOT NULL AND trim(t.name) <> '';
INSERT INTO tracks (spotify_id, name, primary_artist_id, artist_name, album_name, duration_ms,
                    release_date, release_date_precision, popularity, audio_features, created_at, updated_at)
    SELECT DISTINCT ON (t.sid) t.sid, t.name, m.sid, m.name, t.album_name,
           legacy.num(t.duration_ms::text, 0, 2147483647),
           parse_release_date(t.release_date, NULL),
           CASE WHEN parse_release_date(t.release_date, NULL) IS NOT NULL
                THEN release_date_precision(t.release_date, NULL) END,
           legacy.num(t.popularity::text, 0, 100), legacy.obj(t.audio_features),
           coalesce(legacy.ts(t.created_at), now()), coalesce(legacy.ts(t.created_at), now())
    FROM track_map t LEFT JOIN artist_map m ON m.id = t.artist_id ORDER BY t.sid, t.id;
INSERT INTO playlists (user_id, kind, name, legacy_key, created_at)
    SELECT u.id, 'legacy', e.playlist_id, e.playlist_id, coalesce(min(legacy.ts(e.created_at)), now())
    FROM legacy.playlist_tracks e, users u WHERE u.spotify_id = 'legacy-owner' AND trim(e.playlist_id) <> ''
    GROUP BY u.id, e.playlist_id;
INSERT INTO playlist_tracks (playlist_id, track_id, position, added_at)
    SELECT DISTINCT ON (p.id, t.sid) p.id, t.sid, legacy.num(e.position::text, 0, 2147483647), legacy.ts(e.created_at)
    FROM legacy.playlist_tracks e JOIN track_map t ON t.id = e.track_id
    JOIN playlists p ON p.legacy_key = e.playlist_id
    WHERE legacy.num(e.position::text, 0, 2147483647) IS NOT NULL ORDER BY p.id, t.sid, e.id;
""",
    "v2": """
INSERT INTO users (spotify_id, display_name, is_placeholder)
    VALUES ('legacy-owner', 'Legacy SQLite owner', true);
CREATE TEMP TABLE track_rows AS
    SELECT legacy.sid(t.track_id) AS sid, t.*, legacy.obj(t.raw_json) AS payload FROM legacy.tracks t;
INSERT INTO tracks (spotify_id, name, artist_name, album_name, duration_ms, release_date, release_date_precision,
                    explicit, popularity, spotify_url, raw_json, created_at, updated_at)
    SELECT DISTINCT ON (sid) sid, coalesce(nullif(trim(name), ''), payload->>'name'), artist_name, album_name,
           legacy.num(duration_ms::text, 0, 2147483647),
           parse_release_date(payload->'album'->>'release_date', NULL),
           CASE WHEN parse_release_date(payload->'album'->>'release_date', NULL) IS NOT NULL
                THEN release_date_precision(payload->'album'->>'release_date', NULL) END,
           CASE WHEN jsonb_typeof(payload->'explicit') = 'boolean' THEN (payload->>'explicit')::boolean END,
           legacy.num(payload->>'popularity', 0, 100), spotify_url, coalesce(payload, '{}'),
           coalesce(legacy.ts(created_at), now()), coalesce(legacy.ts(updated_at), legacy.ts(created_at), now())
    FROM track_rows WHERE sid IS NOT NULL AND coalesce(nullif(trim(name), ''), payload->>'name') IS NOT NULL
    ORDER BY sid;
INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank)
    SELECT u.id, s.sid, s.day, s.time_range, s.rank
    FROM (SELECT *, row_number() OVER (PARTITION BY time_range, day, rank ORDER BY id) AS holder
          FROM (SELECT DISTINCT ON (sid, day, time_range) *
                FROM (SELECT s.id, legacy.sid(s.track_id) AS sid, legacy.ts(s.snapshot_date)::date AS day,
                             replace(replace(lower(trim(s.time_range)), '-', '_'), ' ', '_') AS time_range,
                             legacy.num(s.rank::text, 1, 2147483647) AS rank
                      FROM legacy.snapshots s) c
                WHERE time_range IN ('short_term', 'medium_term', 'long_term') AND rank IS NOT NULL
                  AND day BETWEEN '1970-01-01' AND '2100-12-31'
                  AND EXISTS (SELECT FROM tracks t WHERE t.spotify_id = c.sid)
                ORDER BY sid, day, time_range, id) d) s, users u
    WHERE s.holder = 1 AND u.spotify_id = 'legacy-owner';
""",
}


def run_pgloader_sql(path: Path, url: str) -> tuple[float, float, int, str]:
    """pgloader, then the SQL above, timed together (memory: pgloader's, the SQL runs in the server)."""
    seconds, memory, status, note = run_pgloader(path, url)
    if status != 0:
        return seconds, memory, status, note
    layout = "v1" if "v1" in path.stem else "v2"
    started = time.monotonic()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("ALTER SCHEMA public RENAME TO legacy; CREATE SCHEMA public")
        cur.execute(PGLOADER_SQL_FUNCTIONS)
        cur.execute("SET TIME ZONE 'UTC'")
    database.apply_schema(conn)
    with conn, conn.cursor() as cur:
        cur.execute(PGLOADER_SQL[layout])
        cur.execute("DROP SCHEMA legacy CASCADE")
    conn.close()
    extra = time.monotonic() - started
    return seconds + extra, memory, status, f"{note}; then {extra:.1f} s of SQL into the app's schema, no checks"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the issue's sizes")
    parser.add_argument("--admin-url", help="superuser URL of the PostgreSQL server to use")
    parser.add_argument("--book-rows", type=int, default=50_000, help="rows per table for the book's slice")
    parser.add_argument("--only", choices=("v1", "v2"), help="one layout only")
    parser.add_argument(
        "--tools",
        default="ours,pgloader,pgloader+sql,floor,book",
        help="comma-separated subset of ours,pgloader,pgloader+sql,floor,book (floor needs ours)",
    )
    args = parser.parse_args(argv)
    OUT.mkdir(parents=True, exist_ok=True)
    admin = admin_url(args.admin_url)
    with psycopg2.connect(admin) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        server = database.fetch_value(cur)
    conn.close()
    results = []
    for layout in ("v1", "v2"):
        if args.only and layout != args.only:
            continue
        path, rows = legacy_file(layout, args.scale)
        # the book's slice only when the book runs (building it reads the whole file)
        contestants = {
            "ours": ("ours (migrate_to_postgresql.py)", run_ours, path, rows),
            "floor": ("floor: app schema from clean rows", run_floor, path, rows),
            "pgloader": ("pgloader", run_pgloader, path, rows),
            "pgloader+sql": ("pgloader + SQL to the app's schema", run_pgloader_sql, path, rows),
        }
        if "book" in args.tools:  # its slice is built only when the book runs
            slice_path, slice_rows = sliced_copy(path, args.book_rows)
            contestants["book"] = (f"book, row by row ({args.book_rows:,}-row slice)", run_book, slice_path, slice_rows)
        for key in args.tools.split(","):
            tool, runner, source, count = contestants[key.strip()]
            url = scratch_database(admin)
            print(f"{layout}: {tool} ...", file=sys.stderr, flush=True)
            try:
                seconds, memory, status, note = runner(source, url)
                landed = landed_rows(url)
                if key.strip() == "ours" and "floor" in args.tools and status == 0:
                    dump_for_floor(path, url)  # only a verified, committed result
            finally:
                drop_database(admin, url)
            results.append((layout, tool, count, landed, seconds, memory, note))
    print(f"\nPostgreSQL {server}; {os.cpu_count()} cores; scale {args.scale}\n")
    print("| layout | tool | source rows | rows in target | seconds | rows/s | peak memory (MB) | notes |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for layout, tool, count, landed, seconds, memory, note in results:
        memory_text = "–" if memory != memory else f"{memory:,.0f}"  # NaN: not measured
        print(
            f"| {layout} | {tool} | {count:,} | {landed:,} | {seconds:,.1f} | {count / seconds:,.0f} "
            f"| {memory_text} | {note} |"
        )
    print(
        "\nours: source rows = rows in target + merged duplicates + rejected rows (see the "
        "rejects report); the target is the app's schema with all its indexes, verified."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
