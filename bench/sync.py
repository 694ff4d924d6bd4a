"""Sync benchmark: one full sync written our way and the book's way, side by side.

    .venv/bin/python bench/sync.py [--listener emeka]

Fetches one demo listener's data once from the Spotify emulator (3 x 99 top tracks and a
library of ~5,100 tracks for emeka), then writes the same data into two fresh databases on
the benchmark's own embedded PostgreSQL:

- ours: sync.store_everything — one transaction, catalogue upserts sorted and chunked,
  one statement per thousand rows;
- the book's way: a pool connection and a commit per track (``save_track``), one
  INSERT ... ON CONFLICT per snapshot and library row.

Both are run twice (a first sync, then the same day again). Round trips are statements
plus commits sent to the server; database time is the time spent waiting for them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import psycopg2
from psycopg2.extras import Json

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import database  # noqa: E402
import db_config  # noqa: E402
import spotify  # noqa: E402
import sync  # noqa: E402
from emulator import server as spotify_emulator  # noqa: E402

DAY = date(2026, 11, 23)


class Meter:
    round_trips = 0
    seconds = 0.0

    @classmethod
    def reset(cls):
        cls.round_trips, cls.seconds = 0, 0.0

    @classmethod
    def timed(cls, call, *args):
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            cls.seconds += time.perf_counter() - started
            cls.round_trips += 1


class MeteredCursor(psycopg2.extensions.cursor):
    def execute(self, query, params=None):
        return Meter.timed(super().execute, query, params)


class MeteredConnection(database.Connection):
    def cursor(self, *args, **kwargs):
        kwargs.setdefault("cursor_factory", MeteredCursor)
        return super().cursor(*args, **kwargs)

    def commit(self):
        return Meter.timed(super().commit)


def fetch(listener: str) -> tuple[sync.Fetched, float]:
    emulator = spotify_emulator.serve_in_thread()
    settings = spotify.SpotifySettings(
        client_id=emulator.client_id,
        client_secret=emulator.client_secret,
        redirect_uri="http://127.0.0.1:5000/callback",
        secret_key="bench",
        accounts_url=emulator.base_url,
        api_url=emulator.base_url,
        demo=True,
    )
    verifier, challenge = spotify.pkce_pair()
    code = emulator.state.issue_code(
        emulator.client_id, settings.redirect_uri, listener, spotify.SCOPES.split(), challenge
    )
    client = spotify.SpotifyClient(settings, spotify.exchange_code(settings, code, verifier)["access_token"])
    started = time.perf_counter()
    fetched = sync.fetch_everything(client, lambda stage: None, backfill_from=None)
    seconds = time.perf_counter() - started
    emulator.stop()
    return fetched, seconds


def new_user(url: str, listener: str) -> int:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES (%s) RETURNING id", (listener,))
        user_id = database.fetch_value(cur)
    conn.close()
    return user_id


def ours(url: str, user_id: int, fetched: sync.Fetched) -> None:
    conn = psycopg2.connect(url, connection_factory=MeteredConnection)
    with database.transaction(conn) as cur:
        sync.store_everything(cur, user_id, DAY, fetched)
    conn.close()


BOOK_TRACK = """
    INSERT INTO tracks (spotify_id, name, artist_name, album_name, duration_ms, spotify_url, raw_json)
    VALUES (%s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (spotify_id) DO UPDATE SET name = EXCLUDED.name, artist_name = EXCLUDED.artist_name,
        album_name = EXCLUDED.album_name, duration_ms = EXCLUDED.duration_ms,
        spotify_url = EXCLUDED.spotify_url, raw_json = EXCLUDED.raw_json, updated_at = now()
"""


def book(pool, user_id: int, fetched: sync.Fetched) -> None:
    """The chapter's save_track / save_snapshot_row, faithfully: a commit per track."""

    def save_track(track):
        conn = pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    BOOK_TRACK,
                    (
                        track["id"],
                        track["name"],
                        track["artists"][0]["name"],
                        track["album"]["name"],
                        track["duration_ms"],
                        track.get("external_urls", {}).get("spotify"),
                        Json(track),
                    ),
                )
            conn.commit()
        finally:
            pool.putconn(conn)

    for tracks in fetched.top.values():
        for track in tracks:
            save_track(track)
    for item in fetched.saved:
        save_track(item["track"])
    conn = pool.getconn()
    with conn.cursor() as cur:
        for time_range, tracks in fetched.top.items():
            for rank, track in enumerate(tracks, 1):
                cur.execute(
                    """INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank)
                               VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id, track_id, snapshot_date, time_range)
                               DO UPDATE SET rank = EXCLUDED.rank""",
                    (user_id, track["id"], DAY, time_range, rank),
                )
        for item in fetched.saved:
            cur.execute(
                """INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, %s, %s)
                           ON CONFLICT (user_id, track_id) DO UPDATE SET added_at = EXCLUDED.added_at""",
                (user_id, item["track"]["id"], item["added_at"]),
            )
    conn.commit()
    pool.putconn(conn)


def measure(label, run, *args):
    Meter.reset()
    started = time.perf_counter()
    run(*args)
    return {"label": label, "wall": time.perf_counter() - started, "db": Meter.seconds, "trips": Meter.round_trips}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listener", default="emeka")
    args = parser.parse_args()
    fetched, fetch_seconds = fetch(args.listener)
    top = {r: len(t) for r, t in fetched.top.items()}

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        server = db_config.EmbeddedPostgres(Path(tmp), cleanup_mode="delete")
        urls = {name: server.url(name) for name in ("ours", "book")}
        for url in urls.values():
            with psycopg2.connect(url) as conn:
                database.apply_schema(conn)
            conn.close()
        users = {name: new_user(url, args.listener) for name, url in urls.items()}
        from psycopg2.pool import ThreadedConnectionPool

        pool = ThreadedConnectionPool(1, 4, urls["book"], connection_factory=MeteredConnection)
        rows = []
        for run in ("first sync", "same day again"):
            rows.append(measure(f"ours, {run}", ours, urls["ours"], users["ours"], fetched))
            rows.append(measure(f"book's way, {run}", book, pool, users["book"], fetched))
        pool.closeall()
        server.server().cleanup()

    print(
        f"\nListener {args.listener}: top tracks {top}, library {len(fetched.saved)} tracks; "
        f"fetching it from the emulator took {fetch_seconds:.1f} s (not counted below)\n"
    )
    print("| writer | round trips | database time s | wall time s |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['label']} | {r['trips']} | {r['db']:.2f} | {r['wall']:.2f} |")
    first_ours, first_book = rows[0], rows[1]
    print(
        f"\nfirst sync: {first_book['trips'] / first_ours['trips']:.0f}x fewer round trips, "
        f"{first_book['db'] / first_ours['db']:.1f}x less database time"
    )


if __name__ == "__main__":
    main()
