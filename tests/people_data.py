"""Fixed data with known answers for the search, track, playlist and account tests (the
``people`` fixture in conftest.py seeds it).

Two people: ava (the one under test) and bob (whose data must never leak). Dates are
fixed; the latest short-term snapshot is 2026-11-02, so "the last four weeks" is every
snapshot after 2026-10-05.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import tracks_db

LATEST = date(2026, 11, 2)


def track(track_id, name, artist, album, released, precision="day", isrc=None, explicit=False):
    artist_id = "ar" + "".join(c for c in artist.lower() if c.isalnum())[:20]
    return {
        "id": track_id,
        "name": name,
        "type": "track",
        "explicit": explicit,
        "duration_ms": 200_000,
        "artists": [{"id": artist_id, "name": artist, "type": "artist"}],
        "album": {
            "id": "al" + track_id,
            "name": album,
            "release_date": released,
            "release_date_precision": precision,
            "album_type": "album",
            "images": [
                {"url": f"https://i.scdn.co/image/{track_id}640", "width": 640, "height": 640},
                {"url": f"https://i.scdn.co/image/{track_id}300", "width": 300, "height": 300},
            ],
        },
        "external_ids": {"isrc": isrc or f"XX{track_id.upper()[:10]}"},
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
    }


TRACKS = [
    track("tdance", "Dance the Night", "Dua Lipa", "Barbie The Album", "2023-05-26", isrc="GBAHT2300001"),
    track("tdancing", "Dancing Queen", "ABBA", "Arrival", "1976-08-15"),
    track("tqueen", "Bohemian Rhapsody", "Queen", "A Night at the Opera", "1975-10-31"),
    track("tnight", "Night Fever", "Bee Gees", "Saturday Night Fever", "1977", precision="year"),
    track("txss", "<script>alert(1)</script> Dance", "Evil & Co", "<b>bold</b>", "2001-01-01", explicit=True),
    track("tdejavu", "Déjà Vu", "Beyoncé", "B'Day", "2006-09-01"),
    track("tbob", "Dancing in the Dark", "Bruce Springsteen", "Born in the U.S.A.", "1984-05-04"),
    *[track(f"tlove{n:02d}", f"Love Song {n:02d}", "Filler Band", "Fillers", "1999-03-01") for n in range(1, 26)],
]
IDS = {t["id"] for t in TRACKS}


def add_user(cur, spotify_id):
    cur.execute(
        "INSERT INTO users (spotify_id, display_name) VALUES (%s, %s) RETURNING id", (spotify_id, spotify_id.title())
    )
    return cur.fetchone()[0]


def snap(cur, user_id, day, time_range, ranked_ids):
    for rank, track_id in enumerate(ranked_ids, 1):
        cur.execute(
            "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) VALUES (%s, %s, %s, %s, %s)",
            (user_id, track_id, day, time_range, rank),
        )


def seed(conn) -> dict:
    """Insert the fixed data on ``conn`` (the caller rolls back); returns the user ids."""
    with conn.cursor() as cur:
        tracks_db.upsert_catalogue(cur, TRACKS)
        ava, bob = add_user(cur, "ava-test"), add_user(cur, "bob-test")
        snap(cur, ava, date(2026, 9, 7), "short_term", ["tnight", "tdancing", "tdance"])
        snap(cur, ava, date(2026, 10, 5), "short_term", ["tnight", "tdance", "tdancing", "tqueen"])
        snap(cur, ava, LATEST, "short_term", ["tdancing", "tdance", "tdejavu", "txss"])
        snap(cur, ava, LATEST, "long_term", ["tqueen"])
        cur.execute(
            "INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, 'tnight', %s)",
            (ava, datetime(2026, 1, 1, tzinfo=UTC)),
        )
        for n in range(1, 26):
            cur.execute(
                "INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, %s, %s)",
                (ava, f"tlove{n:02d}", datetime(2026, 2, n, tzinfo=UTC)),
            )
        cur.execute(
            "INSERT INTO plays (user_id, played_at, track_id) VALUES (%s, %s, 'tdejavu')",
            (ava, datetime(2026, 11, 1, 12, tzinfo=UTC)),
        )
        # bob: his own track, and some of ava's tracks with other ranks
        snap(cur, bob, date(2026, 9, 7), "short_term", ["tbob", "tnight"])
        snap(cur, bob, LATEST, "short_term", ["tnight", "tbob"])
        cur.execute("INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, 'tbob', now())", (bob,))
        cur.execute(
            "INSERT INTO playlists (user_id, kind, name, spotify_id) VALUES (%s, 'time_machine', "
            "'Bob 1984', 'bobplaylist') RETURNING id",
            (bob,),
        )
        bob_playlist = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO playlist_tracks (playlist_id, track_id, position) VALUES (%s, 'tbob', 0)", (bob_playlist,)
        )
    return {"ava": ava, "bob": bob, "bob_playlist": bob_playlist}
