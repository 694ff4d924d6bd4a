"""Generates legacy SQLite files of both layouts, clean bulk plus every kind of real dirt.

Used by the migration tests (small files, exact expectations) and by bench/migration.py
(millions of rows). Deterministic: the same arguments give the same file.

``make_v1`` / ``make_v2`` return a manifest: per source table the rows written and how
many of the injected dirty rows must end up merged or rejected, plus the Spotify ids the
tests look up.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

V1_DDL = """
CREATE TABLE artists (id INTEGER PRIMARY KEY AUTOINCREMENT, spotify_id TEXT NOT NULL,
    name TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE tracks (id INTEGER PRIMARY KEY AUTOINCREMENT, spotify_id TEXT NOT NULL,
    name TEXT NOT NULL, artist_id INTEGER, album_name TEXT, release_date TEXT,
    duration_ms INTEGER, popularity INTEGER, audio_features TEXT, created_at TEXT NOT NULL,
    FOREIGN KEY (artist_id) REFERENCES artists(id));
CREATE TABLE playlist_tracks (id INTEGER PRIMARY KEY AUTOINCREMENT, playlist_id TEXT NOT NULL,
    track_id INTEGER NOT NULL, position INTEGER NOT NULL, created_at TEXT NOT NULL,
    FOREIGN KEY (track_id) REFERENCES tracks(id));
"""
V2_DDL = """
CREATE TABLE tracks (track_id TEXT PRIMARY KEY, name TEXT NOT NULL, artist_name TEXT,
    album_name TEXT, duration_ms INTEGER, spotify_url TEXT, raw_json TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP, updated_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, track_id TEXT NOT NULL,
    snapshot_date TEXT NOT NULL, time_range TEXT NOT NULL, rank INTEGER NOT NULL,
    UNIQUE (track_id, snapshot_date, time_range), FOREIGN KEY (track_id) REFERENCES tracks(track_id));
"""
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
EPOCH = datetime(2021, 1, 1, tzinfo=UTC)
TIME_RANGES = ("short_term", "medium_term", "long_term")
# 5 million snapshots of 50 ranks x 3 ranges span 91 years of days: start early enough
SNAPSHOTS_START = datetime(1975, 1, 1)
DIRTY_DAY = "2099-01-01"  # after every generated day, so dirty ranks collide only on purpose


def spotify_id(kind: str, n: int) -> str:
    """A 22-character base62 id, distinct per (kind, n)."""
    value = (n * 2_654_435_761 + (7 if kind == "artist" else 13) * 10**30) % 62**22
    chars = []
    for _ in range(22):
        value, digit = divmod(value, 62)
        chars.append(BASE62[digit])
    return "".join(chars)


def timestamp_text(n: int) -> str:
    """Timestamps in the formats real files hold, cycling (all equal-information)."""
    moment = EPOCH + timedelta(seconds=n * 37)
    style = n % 4
    if style == 0:
        return moment.strftime("%Y-%m-%d %H:%M:%S")  # SQLite CURRENT_TIMESTAMP (UTC)
    if style == 1:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if style == 2:
        return moment.astimezone(timezone(timedelta(hours=2))).isoformat()
    return str(int(moment.timestamp()))  # epoch seconds


def audio_features(n: int) -> dict:
    return {
        "danceability": round((n % 97) / 97, 3),
        "energy": round((n % 89) / 89, 3),
        "key": n % 12,
        "loudness": -round((n % 300) / 10, 1),
        "mode": n % 2,
        "speechiness": 0.05,
        "acousticness": round((n % 83) / 83, 3),
        "instrumentalness": 0.0,
        "liveness": 0.11,
        "valence": round((n % 79) / 79, 3),
        "tempo": 60 + n % 120,
        "time_signature": 4,
    }


def release_date(n: int) -> str:
    year = 1960 + n % 64
    return (f"{year}", f"{year}-{1 + n % 12:02d}", f"{year}-{1 + n % 12:02d}-{1 + n % 28:02d}")[n % 3]


def track_object(n: int, track_id: str, name: str, artist: str) -> dict:
    """A Spotify track object as the Web API returns it (without available_markets)."""
    artist_id = spotify_id("artist", n % 50_000)
    artist_obj = {
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
        "href": f"https://api.spotify.com/v1/artists/{artist_id}",
        "id": artist_id,
        "name": artist,
        "type": "artist",
        "uri": f"spotify:artist:{artist_id}",
    }
    album_id = spotify_id("album", n)
    date = release_date(n)
    return {
        "album": {
            "album_type": "album",
            "artists": [artist_obj],
            "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
            "href": f"https://api.spotify.com/v1/albums/{album_id}",
            "id": album_id,
            "images": [
                {"height": size, "url": f"https://i.scdn.co/image/{album_id}{size}", "width": size}
                for size in (640, 300, 64)
            ],
            "name": f"Album {n}",
            "release_date": date,
            "release_date_precision": ("year", "month", "day")[n % 3],
            "total_tracks": 12,
            "type": "album",
            "uri": f"spotify:album:{album_id}",
        },
        "artists": [artist_obj],
        "disc_number": 1,
        "duration_ms": 120_000 + n % 240_000,
        "explicit": n % 5 == 0,
        "external_ids": {"isrc": f"USRC1{n:07d}"},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
        "href": f"https://api.spotify.com/v1/tracks/{track_id}",
        "id": track_id,
        "is_local": False,
        "name": name,
        "popularity": n % 101,
        "preview_url": None,
        "track_number": 1 + n % 12,
        "type": "track",
        "uri": f"spotify:track:{track_id}",
    }


def _connect(path) -> sqlite3.Connection:
    path = Path(path)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    return conn


def make_v1(
    path, artists: int = 20, tracks: int = 60, entries: int = 120, dirty: bool = True, per_playlist: int = 50
) -> dict:
    """A v1 file; ``dirty`` appends one row of every kind of dirt after the clean bulk."""
    conn = _connect(path)
    conn.executescript(V1_DDL)
    conn.executemany(
        "INSERT INTO artists VALUES (?, ?, ?, ?)",
        ((i, spotify_id("artist", i), f"Artist {i}", timestamp_text(i)) for i in range(1, artists + 1)),
    )
    conn.executemany(
        "INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            (
                j,
                spotify_id("track", j),
                f"Track {j}",
                1 + j % artists if artists else None,
                f"Album {j // 10}",
                release_date(j),
                120_000 + j % 240_000,
                j % 101,
                json.dumps(audio_features(j)),
                timestamp_text(j),
            )
            for j in range(1, tracks + 1)
        ),
    )
    conn.executemany(
        "INSERT INTO playlist_tracks VALUES (?, ?, ?, ?, ?)",
        (
            (
                k,
                f"playlist_{2000 + (k // per_playlist) // 12}_{1 + (k // per_playlist) % 12:02d}_{k // per_playlist}",
                1 + k % tracks,
                k % per_playlist,
                timestamp_text(k),
            )
            for k in range(1, entries + 1)
        ),
    )
    manifest = {
        "layout": "v1",
        "artists": {"rows": artists, "merged": 0, "rejected": 0},
        "tracks": {"rows": tracks, "merged": 0, "rejected": 0},
        "playlist_tracks": {"rows": entries, "merged": 0, "rejected": 0},
    }
    if dirty:
        _v1_dirt(conn, artists, tracks, manifest)
    conn.commit()
    conn.close()
    return manifest


def _v1_dirt(conn, artists: int, tracks: int, manifest: dict) -> None:
    a, t = artists + 1000, tracks + 1000  # ids of the dirty rows, past the clean ones
    first_artist, first_track = spotify_id("artist", 1), spotify_id("track", 1)
    dirty_artists = [
        (a, first_artist, "Artist 1 (again)", timestamp_text(1)),  # duplicate -> merged
        (a + 1, spotify_id("artist", a + 1), "Nul\x00Name", "1609459200"),  # NUL -> repaired
        (a + 2, spotify_id("artist", a + 2), "   ", timestamp_text(2)),  # empty name -> rejected
        (a + 3, "  " + spotify_id("artist", a + 3) + " ", "Spaced", "2021-01-01T00:00:00+05:30"),
    ]
    conn.executemany("INSERT INTO artists VALUES (?, ?, ?, ?)", dirty_artists)
    manifest["artists"].update(rows=artists + 4, merged=1, rejected=1)
    af = json.dumps(audio_features(7))
    dirty_tracks = [
        # (id, spotify_id, name, artist_id, album, release, duration, popularity, features, created)
        (t, first_track, "Track 1 (dup)", a, "A", "2020", 1000, 10, af, timestamp_text(3)),  # merged
        (
            t + 1,
            spotify_id("track", t + 1),
            "Orphan artist",
            999_999,
            "A",
            "2020-03",
            1000,
            10,
            af,
            "2021-06-01 10:00:00",
        ),  # ref cleared
        (
            t + 2,
            spotify_id("track", t + 2),
            "Malformed",
            a,
            None,
            "2020-02-30",
            1000,
            10,
            '{"energy": 0.5',
            "1609459200000",
        ),  # cleared x2
        (
            t + 3,
            spotify_id("track", t + 3),
            "Double",
            a,
            None,
            "1999",
            1000,
            10,
            json.dumps(af),
            "2021-01-01T00:00:00Z",
        ),  # unwrapped
        (t + 4, spotify_id("track", t + 4), "Array", 1, None, "0000", -5, 150, "[1, 2]", "yesterday"),  # cleared
        (
            t + 5,
            spotify_id("track", t + 5),
            "Nan",
            1,
            None,
            None,
            215000.5,
            "high",
            '{"energy": NaN, "tempo": 120}',
            timestamp_text(5),
        ),  # cleared
        (
            t + 6,
            spotify_id("track", t + 6),
            "Zero\x00Byte",
            1,
            None,
            None,
            1000,
            10,
            '{"energy": 0.1, "note": "a\\u0000b"}',
            timestamp_text(6),
        ),  # sanitised
        (t + 7, "", "No id", 1, None, None, 1000, 10, af, timestamp_text(7)),  # rejected
        (
            t + 8,
            spotify_id("track", t + 8),
            b"Caf\xc3\xa9",
            a + 2,
            None,
            None,
            1000,
            10,
            "",
            timestamp_text(8),
        ),  # blob name; rejected artist
        (
            t + 9,
            f"spotify:track:{spotify_id('track', t + 9)}",
            "Uri",
            a + 3,
            None,
            None,
            1000,
            10,
            None,
            timestamp_text(9),
        ),  # repaired
    ]
    conn.executemany("INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", dirty_tracks)
    conn.execute(
        "INSERT INTO tracks VALUES (?, ?, CAST(? AS TEXT), 1, NULL, NULL, 1, 1, NULL, ?)",
        (t + 10, spotify_id("track", t + 10), b"bad \xff utf8", timestamp_text(10)),
    )
    manifest["tracks"].update(rows=tracks + 11, merged=1, rejected=1)
    dirty_entries = [
        ("playlist_dirty", 1, 0),
        ("playlist_dirty", t, 1),  # duplicate via dup track -> merged
        ("playlist_dirty", 1, 2),  # plain duplicate -> merged
        ("playlist_dirty", 888_888, 3),  # orphan -> rejected
        ("playlist_dirty", t + 7, 4),  # its track was rejected
        ("playlist_dirty", 2, -1),  # negative position -> rejected
        ("", 3, 5),  # no playlist key -> rejected
        ("playlist_dirty", t + 3, 6.0),  # fine
        ("playlist_dirty", t + 2, 7),  # fine
    ]
    next_id = conn.execute("SELECT max(id) FROM playlist_tracks").fetchone()[0] or 0
    conn.executemany(
        "INSERT INTO playlist_tracks VALUES (?, ?, ?, ?, ?)",
        (
            (next_id + 1 + i, key, track, pos, str(1_700_000_000 + i))
            for i, (key, track, pos) in enumerate(dirty_entries)
        ),
    )
    manifest["playlist_tracks"].update(
        rows=manifest["playlist_tracks"]["rows"] + len(dirty_entries), merged=2, rejected=4
    )
    manifest.update(
        duplicate_track=first_track,
        duplicate_artist=first_artist,
        orphan_artist_track=spotify_id("track", t + 1),
        double_encoded_track=spotify_id("track", t + 3),
    )


def make_v2(path, tracks: int = 60, snapshots: int = 150, dirty: bool = True, days: int | None = None) -> dict:
    """A v2 file: ``snapshots`` rows spread over days x 3 ranges, 50 ranks each."""
    conn = _connect(path)
    conn.executescript(V2_DDL)

    def track_rows():
        for n in range(1, tracks + 1):
            track_id = spotify_id("track", n)
            name, artist = f"Track {n}", f"Artist {n % 50_000}"
            raw = track_object(n, track_id, name, artist)
            yield (
                track_id,
                name,
                artist,
                raw["album"]["name"],
                raw["duration_ms"],
                raw["external_urls"]["spotify"],
                json.dumps(raw),
                timestamp_text(n),
                timestamp_text(n + 1),
            )

    conn.executemany("INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", track_rows())
    ranks = min(50, tracks)

    def snapshot_rows():
        for k in range(snapshots):
            slot, rank = divmod(k, ranks)
            day, time_range = divmod(slot, 3)
            # rotate which tracks fill the ranks so (track, day, range) stays unique
            track = 1 + (rank + day * 7) % tracks
            yield (
                k + 1,
                spotify_id("track", track),
                (SNAPSHOTS_START + timedelta(days=day)).strftime("%Y-%m-%d"),
                TIME_RANGES[time_range],
                rank + 1,
            )

    conn.executemany("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)", snapshot_rows())
    manifest = {
        "layout": "v2",
        "tracks": {"rows": tracks, "merged": 0, "rejected": 0},
        "snapshots": {"rows": snapshots, "merged": 0, "rejected": 0},
    }
    if dirty:
        _v2_dirt(conn, tracks, manifest)
    conn.commit()
    conn.close()
    return manifest


def _v2_dirt(conn, tracks: int, manifest: dict) -> None:
    first = spotify_id("track", 1)
    ids = [spotify_id("track", tracks + 1000 + i) for i in range(12)]
    good = track_object(5, ids[0], "Double", "Artist")
    nan_text = json.dumps(track_object(6, ids[3], "NaN", "Artist")).replace('"popularity": 6', '"popularity": NaN')
    nul_text = json.dumps(track_object(7, ids[4], "Nul", "Artist")).replace('"Album 7"', '"Al\\u0000bum"')
    dirty_tracks = [
        (ids[0], "Double", "Artist", None, "200000", None, json.dumps(json.dumps(good)), "1609459200", None),
        (ids[1], "Malformed", None, None, None, None, '{"album": {"release_date": "2020"', None, None),
        (ids[2], "Array", None, None, -1, None, "[1, 2, 3]", "garbage", "2021-01-01T00:00:00+01:00"),
        (ids[3], "NaN", None, None, None, None, nan_text, None, None),
        (ids[4], "Nul", None, None, None, None, nul_text, None, None),
        (ids[5], "Empty", None, None, None, None, "", None, None),
        (f"spotify:track:{first}", "Track 1 (uri)", None, None, None, None, None, None, None),  # merged
        (ids[6], "", None, None, None, None, json.dumps({"name": "From payload"}), None, None),  # repaired
        (ids[7], "", None, None, None, None, None, None, None),  # rejected
        (None, "No id", None, None, None, None, None, None, None),  # rejected
        (ids[8], "Tab\tand\nnewline \\ backslash", None, None, 1, None, None, None, None),
        (ids[9] + "\x00", "Nul in the key", None, None, None, None, None, None, None),  # repaired
    ]
    conn.executemany("INSERT INTO tracks VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", dirty_tracks)
    manifest["tracks"].update(rows=tracks + len(dirty_tracks), merged=1, rejected=2)
    next_id = conn.execute("SELECT coalesce(max(id), 0) FROM snapshots").fetchone()[0]
    day = DIRTY_DAY
    dirty_snapshots = [
        (ids[0], day, "short_term", 1),
        (ids[1], day, "short_term", 2),  # fine
        (f"spotify:track:{first}", day, "short_term", 3),  # follows survivor
        (first, day + "T00:00:00", "short_term", 4),  # same day: merged
        ("NoSuchTrack0000000000", day, "short_term", 5),  # orphan
        (ids[7], day, "short_term", 6),  # track rejected
        (ids[2], "2030-02-30", "short_term", 7),  # impossible date
        (ids[2], day, "Medium_Term ", 1),  # normalised
        (ids[3], day, "forever", 1),  # bad range
        (ids[4], day, "short_term", 0),  # bad rank
        (ids[5], day, "short_term", 2),  # rank collision
        (ids[6], day, "long_term", "9"),  # fine
        (ids[9], day, "long_term", 10),  # fine
    ]
    conn.executemany(
        "INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
        ((next_id + 1 + i, *row) for i, row in enumerate(dirty_snapshots)),
    )
    manifest["snapshots"].update(rows=manifest["snapshots"]["rows"] + len(dirty_snapshots), merged=1, rejected=6)
    manifest.update(
        duplicate_track=first,
        double_encoded_track=ids[0],
        nul_track=ids[4],
        payload_name_track=ids[6],
        nul_key_track=ids[9],
    )
