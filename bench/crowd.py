"""Thousands of people with Spotify tokens, seeded in seconds (bench/jobs.py and the tests
of the emulator's rate limit).

The emulator makes the listeners and their token pairs in one call (``POST
/_emulator/crowd``, emulator/crowd.py); ``seed`` stores them as the app's users with
COPY: users, their encrypted tokens (Fernet under the app's secret, as a login stores
them) and, optionally, one snapshot of an earlier day, so the next sync of each is a daily
snapshot rather than a first one (no demo backfill, no ANALYZE after it).

The caller imports the app's modules first (the project root is on ``sys.path``).
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import requests

import spotify
import token_keys
import tracks_db

TOKEN_LIFETIME = timedelta(days=182)


def make_listeners(emulator_url: str, count: int) -> list[dict]:
    """crowd-1 ... crowd-``count`` with a token pair each, from a running emulator."""
    answer = requests.post(f"{emulator_url}/_emulator/crowd", json={"count": count}, timeout=120)
    answer.raise_for_status()
    return answer.json()["listeners"]


def _copy(cur, table: str, columns: tuple[str, ...], rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(r"\N" if v is None else str(v) for v in row) + "\n")
    buffer.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def seed(cur, secret_key: str, listeners: list[dict], emulator_url: str, snapshot_day: date | None = None) -> dict:
    """Store the listeners as users with tokens (in the caller's transaction); returns
    {spotify id: user id}."""
    _copy(cur, "users", ("spotify_id", "display_name"), ((p["id"], p["display_name"]) for p in listeners))
    cur.execute("SELECT spotify_id, id FROM users WHERE spotify_id = ANY(%s)", ([p["id"] for p in listeners],))
    ids = dict(cur.fetchall())
    cipher = token_keys.cipher(secret_key)
    now = datetime.now(UTC)

    def token_row(person: dict) -> tuple:
        access = cipher.encrypt(person["access_token"].encode())
        refresh = cipher.encrypt(person["refresh_token"].encode())
        expires = now + timedelta(seconds=int(person["expires_in"]))
        return (ids[person["id"]], "\\\\x" + access.hex(), "\\\\x" + refresh.hex(), expires, person["scope"])

    _copy(
        cur,
        "spotify_tokens",
        ("user_id", "access_token_encrypted", "refresh_token_encrypted", "expires_at", "scope"),
        (token_row(p) for p in listeners),
    )
    cur.execute(
        "UPDATE spotify_tokens SET refresh_token_expires_at = %s WHERE user_id = ANY(%s)",
        (now + TOKEN_LIFETIME, list(ids.values())),
    )
    if snapshot_day is not None:
        first = _any_track(emulator_url, listeners[0]["access_token"])
        tracks_db.upsert_catalogue(cur, [spotify.catalogue_track(first)])
        _copy(
            cur,
            "snapshots",
            ("user_id", "track_id", "snapshot_date", "time_range", "rank"),
            ((user_id, first["id"], snapshot_day, "short_term", 1) for user_id in ids.values()),
        )
    return ids


def _any_track(emulator_url: str, access_token: str) -> dict:
    answer = requests.get(
        f"{emulator_url}/v1/me/top/tracks",
        params={"limit": 1},
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["items"][0]
