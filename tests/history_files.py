"""Hand-made Spotify export files for the history import tests (rows as the documented
format has them, both generations of field names), and a way to import them."""

from __future__ import annotations

import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2

import database
from history.importer import import_files, owner

IP_NEW, IP_OLD = "198.51.100.23", "203.0.113.77"
USER_AGENT = "Mozilla/5.0 (PrivateAgent 9.9)"
USERNAME = "secret-username-42"
START = datetime(2021, 3, 1, 20, 0, 0, tzinfo=UTC)


def track_uri(n: int) -> str:
    return "spotify:track:" + f"{n:022d}".replace("0", "a")


def extended_row(when: datetime, n: int = 1, ms: int = 200_000, old_names: bool = False, **fields) -> dict:
    """One music row; ``old_names`` writes the older export's private field names."""
    private = (
        {"username": USERNAME, "ip_addr_decrypted": IP_OLD, "user_agent_decrypted": USER_AGENT}
        if old_names
        else {"ip_addr": IP_NEW}
    )
    row = {
        "ts": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        **({"username": USERNAME} if old_names else {}),
        "platform": "Android OS 12 API 31 (Google, Pixel 6)",
        "ms_played": ms,
        "conn_country": "SE",
        **{k: v for k, v in private.items() if k != "username"},
        "master_metadata_track_name": f"Song {n}",
        "master_metadata_album_artist_name": f"Artist {n % 7}",
        "master_metadata_album_album_name": f"Album {n % 11}",
        "spotify_track_uri": track_uri(n),
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "offline_timestamp": 0,
        "incognito_mode": False,
    }
    if not old_names:
        row |= {"audiobook_title": None, "audiobook_uri": None, "audiobook_chapter_uri": None}
    return row | fields


def plays(count: int, start: datetime = START, step: int = 240, first: int = 1, **fields) -> list[dict]:
    """``count`` music rows, one every ``step`` seconds, tracks numbered from ``first``."""
    return [extended_row(start + timedelta(seconds=i * step), first + i, **fields) for i in range(count)]


def podcast_row(when: datetime) -> dict:
    return extended_row(
        when,
        master_metadata_track_name=None,
        master_metadata_album_artist_name=None,
        master_metadata_album_album_name=None,
        spotify_track_uri=None,
        episode_name="Episode 12",
        episode_show_name="A Show",
        spotify_episode_uri="spotify:episode:" + "b" * 22,
    )


def basic_row(when: datetime, n: int = 1, ms: int = 200_000) -> dict:
    return {
        "endTime": when.strftime("%Y-%m-%d %H:%M"),
        "artistName": f"Artist {n % 7}",
        "trackName": f"Song {n}",
        "msPlayed": ms,
    }


def write_json(path: Path, rows) -> Path:
    path.write_text(json.dumps(rows, indent=2))
    return path


def write_zip(path: Path, entries: dict) -> Path:
    """A zip of ``{entry name: rows or bytes}``."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content if isinstance(content, bytes) else json.dumps(content, indent=2))
    return path


def connect(db_url: str):
    return psycopg2.connect(db_url, connection_factory=database.Connection)


def user(db_url: str, spotify_id: str = "listener") -> int:
    conn = connect(db_url)
    with database.transaction(conn) as cur:
        user_id = owner(cur, spotify_id)
    conn.close()
    return user_id


def run_import(db_url: str, user_id: int, *paths, **options) -> dict:
    conn = connect(db_url)
    try:
        return import_files(conn, user_id, [(str(p), None) for p in paths], **options)
    finally:
        conn.close()
