#!/usr/bin/env python3
"""The book's migration, re-implemented faithfully as the baseline for bench/migration.py.

v1 follows chapter 25 (seed 000): the chapter's PostgreSQL schema (SERIAL ids copied from
SQLite, VARCHAR limits), ``fetchall()`` of each table, one ``INSERT ... ON CONFLICT DO
NOTHING`` per row with ``json.loads`` for audio features, a progress print every few
hundred rows, one commit per table, then ``setval`` on the sequences. v2 follows the newer
edition (seeds 003/004): tracks first with ``Json(json.loads(raw_json))`` per row, then
snapshots with ``ON CONFLICT ... DO UPDATE``. Not for real use: it trusts its input.

    python bench/book_migration.py SQLITE_PATH DATABASE_URL
"""

from __future__ import annotations

import json
import sqlite3
import sys
from datetime import datetime

import psycopg2
from psycopg2.extras import Json

V1_SCHEMA = """
CREATE TABLE artists (id SERIAL PRIMARY KEY, spotify_id VARCHAR(22) UNIQUE NOT NULL,
    name VARCHAR(500) NOT NULL, created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE tracks (id SERIAL PRIMARY KEY, spotify_id VARCHAR(22) UNIQUE NOT NULL,
    name VARCHAR(500) NOT NULL, artist_id INTEGER, album_name VARCHAR(500), release_date DATE,
    duration_ms INTEGER, popularity SMALLINT CHECK (popularity BETWEEN 0 AND 100),
    audio_features JSONB, created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (artist_id) REFERENCES artists(id) ON DELETE CASCADE);
CREATE TABLE playlist_tracks (id SERIAL PRIMARY KEY, playlist_id VARCHAR(100) NOT NULL,
    track_id INTEGER NOT NULL, position SMALLINT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY (track_id) REFERENCES tracks(id) ON DELETE CASCADE, UNIQUE (playlist_id, track_id));
CREATE INDEX idx_artists_spotify_id ON artists(spotify_id);
CREATE INDEX idx_tracks_spotify_id ON tracks(spotify_id);
CREATE INDEX idx_tracks_artist_id ON tracks(artist_id);
CREATE INDEX idx_tracks_popularity ON tracks(popularity) WHERE popularity > 50;
CREATE INDEX idx_tracks_audio_features ON tracks USING GIN (audio_features);
CREATE INDEX idx_playlist_tracks_playlist ON playlist_tracks(playlist_id, position);
CREATE INDEX idx_playlist_tracks_track ON playlist_tracks(track_id);
"""
V2_SCHEMA = """
CREATE TABLE tracks (track_id VARCHAR(22) PRIMARY KEY, name VARCHAR(500) NOT NULL,
    artist_name VARCHAR(500), album_name VARCHAR(500), duration_ms INTEGER, spotify_url TEXT,
    raw_json JSONB, created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW());
CREATE TABLE snapshots (id SERIAL PRIMARY KEY, track_id VARCHAR(22) NOT NULL REFERENCES tracks(track_id),
    snapshot_date DATE NOT NULL, time_range VARCHAR(20) NOT NULL, rank INTEGER NOT NULL,
    UNIQUE (track_id, snapshot_date, time_range));
CREATE INDEX idx_snapshots_date ON snapshots(snapshot_date, time_range);
"""


def timestamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else datetime.now()


def migrate_v1(sqlite_conn, pg_conn):
    cur = pg_conn.cursor()
    cur.execute(V1_SCHEMA)
    pg_conn.commit()
    artists = sqlite_conn.execute("SELECT id, spotify_id, name, created_at FROM artists").fetchall()
    migrated = errors = 0
    for artist_id, spotify_id, name, created_at in artists:
        try:
            cur.execute(
                """INSERT INTO artists (id, spotify_id, name, created_at) VALUES (%s, %s, %s, %s)
                           ON CONFLICT (spotify_id) DO NOTHING""",
                (artist_id, spotify_id, name, timestamp(created_at)),
            )
            migrated += 1
            if migrated % 100 == 0:
                print(f"  Progress: {migrated}/{len(artists)} artists")
        except Exception as exc:
            errors += 1
            print(f"  Warning: Skipped artist {spotify_id}: {exc}")
    pg_conn.commit()
    cur.execute("SELECT setval('artists_id_seq', (SELECT MAX(id) FROM artists))")
    pg_conn.commit()
    tracks = sqlite_conn.execute("""SELECT id, spotify_id, name, artist_id, album_name, release_date,
                                    duration_ms, popularity, audio_features, created_at FROM tracks""").fetchall()
    migrated = 0
    for (
        track_id,
        spotify_id,
        name,
        artist_id,
        album_name,
        release_date,
        duration_ms,
        popularity,
        audio_features,
        created_at,
    ) in tracks:
        try:
            release = None
            if release_date:
                try:
                    if len(release_date) == 4:
                        release = datetime(int(release_date), 1, 1).date()
                    elif len(release_date) == 7:
                        year, month = release_date.split("-")
                        release = datetime(int(year), int(month), 1).date()
                    else:
                        release = datetime.fromisoformat(release_date).date()
                except (ValueError, AttributeError):
                    release = None
            features = None
            if audio_features:
                try:
                    features = json.loads(audio_features)
                except json.JSONDecodeError as exc:
                    print(f"  Warning: Invalid JSON for track {spotify_id}: {exc}")
            cur.execute(
                """INSERT INTO tracks (id, spotify_id, name, artist_id, album_name, release_date,
                               duration_ms, popularity, audio_features, created_at)
                           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                           ON CONFLICT (spotify_id) DO NOTHING""",
                (
                    track_id,
                    spotify_id,
                    name,
                    artist_id,
                    album_name,
                    release,
                    duration_ms,
                    popularity,
                    json.dumps(features) if features else None,
                    timestamp(created_at),
                ),
            )
            migrated += 1
            if migrated % 200 == 0:
                print(f"  Progress: {migrated}/{len(tracks)} tracks")
        except Exception as exc:
            print(f"  Warning: Skipped track {spotify_id}: {exc}")
    pg_conn.commit()
    cur.execute("SELECT setval('tracks_id_seq', (SELECT MAX(id) FROM tracks))")
    pg_conn.commit()
    entries = sqlite_conn.execute(
        "SELECT id, playlist_id, track_id, position, created_at FROM playlist_tracks"
    ).fetchall()
    migrated = 0
    for entry_id, playlist_id, track_id, position, created_at in entries:
        try:
            cur.execute(
                """INSERT INTO playlist_tracks (id, playlist_id, track_id, position, created_at)
                           VALUES (%s, %s, %s, %s, %s) ON CONFLICT (playlist_id, track_id) DO NOTHING""",
                (entry_id, playlist_id, track_id, position, timestamp(created_at)),
            )
            migrated += 1
            if migrated % 300 == 0:
                print(f"  Progress: {migrated}/{len(entries)} entries")
        except psycopg2.errors.ForeignKeyViolation:
            print(f"  Warning: Track ID {track_id} doesn't exist (orphaned entry)")
        except Exception as exc:
            print(f"  Warning: Skipped playlist entry {entry_id}: {exc}")
    pg_conn.commit()
    cur.execute("SELECT setval('playlist_tracks_id_seq', (SELECT MAX(id) FROM playlist_tracks))")
    pg_conn.commit()


def migrate_v2(sqlite_conn, pg_conn):
    cur = pg_conn.cursor()
    cur.execute(V2_SCHEMA)
    pg_conn.commit()
    tracks = sqlite_conn.execute("""SELECT track_id, name, artist_name, album_name, duration_ms,
                                    spotify_url, raw_json FROM tracks""").fetchall()
    for n, (track_id, name, artist, album, duration, url, raw_json) in enumerate(tracks, 1):
        cur.execute(
            """INSERT INTO tracks (track_id, name, artist_name, album_name, duration_ms,
                           spotify_url, raw_json) VALUES (%s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (track_id) DO UPDATE SET name = EXCLUDED.name,
                           artist_name = EXCLUDED.artist_name, album_name = EXCLUDED.album_name,
                           duration_ms = EXCLUDED.duration_ms, spotify_url = EXCLUDED.spotify_url,
                           raw_json = EXCLUDED.raw_json, updated_at = NOW()""",
            (track_id, name, artist, album, duration, url, Json(json.loads(raw_json)) if raw_json else None),
        )
        if n % 200 == 0:
            print(f"  Progress: {n}/{len(tracks)} tracks")
    pg_conn.commit()
    snapshots = sqlite_conn.execute("SELECT track_id, snapshot_date, time_range, rank FROM snapshots").fetchall()
    for n, row in enumerate(snapshots, 1):
        cur.execute(
            """INSERT INTO snapshots (track_id, snapshot_date, time_range, rank)
                       VALUES (%s, %s, %s, %s) ON CONFLICT (track_id, snapshot_date, time_range)
                       DO UPDATE SET rank = EXCLUDED.rank""",
            row,
        )
        if n % 300 == 0:
            print(f"  Progress: {n}/{len(snapshots)} snapshots")
    pg_conn.commit()


def main(sqlite_path: str, url: str) -> int:
    sqlite_conn = sqlite3.connect(sqlite_path)
    pg_conn = psycopg2.connect(url)
    tables = {row[0] for row in sqlite_conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    (migrate_v1 if "artists" in tables else migrate_v2)(sqlite_conn, pg_conn)
    pg_conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
