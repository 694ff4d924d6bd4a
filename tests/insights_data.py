"""A small hand-made data set whose dashboard numbers were worked out by hand: ``me``
(under test) and ``other`` (whose rows must never count). Used by test_insights.py and
test_dashboard.py."""

from __future__ import annotations

from datetime import date

from psycopg2.extras import Json

D1, D2, D3 = date(2026, 1, 5), date(2026, 1, 12), date(2026, 2, 2)


def track(tid, name, artist_id, artist_name, release, precision, duration_ms, explicit, features=None):
    raw = {} if explicit is None else {"id": tid, "name": name, "explicit": explicit}
    return (
        tid,
        name,
        artist_name,
        artist_id,
        "Album " + name,
        duration_ms,
        release,
        precision,
        explicit,
        Json(raw),
        Json(features) if features is not None else None,
    )


# id, name, primary artist, credited names, release date, precision, ms, explicit, audio features
TRACKS = [
    track("t1", "One", "a1", "Alpha", date(1995, 6, 1), "day", 185_000, True, {"energy": 0.9, "valence": 0.8}),
    track("t2", "Two", "a1", "Alpha", date(1999, 1, 1), "year", 240_000, False, {"energy": 0.8, "valence": 0.2}),
    track("t3", "Three", "a2", "Beta", date(2004, 3, 1), "month", 59_000, True, {"energy": 0.2, "valence": 0.7}),
    track("t4", "Four", "a2", "Beta", date(2021, 1, 15), "day", 200_000, False, {"energy": 1.0, "valence": 0.5}),
    # a legacy import: no payload, no release date, features without a usable energy
    track("t5", "Five", "a3", "Gamma", None, None, 700_000, None, {"energy": None, "valence": 0.3}),
    # primary artist unknown: the credited names stand in for it
    track(
        "t6", "Six", None, "Gamma feat. X", date(2020, 5, 5), "day", 125_000, False, {"energy": 0.05, "valence": 0.1}
    ),
    track("t7", "Secret", "a3", "Gamma", date(1960, 1, 1), "year", 300_000, True, {"energy": 0.5, "valence": 0.5}),
]


def load_fixed_data(cur) -> dict:
    """Two users; ``me`` has three short-term snapshots, one medium-term one and four saved
    tracks; ``other`` owns t7, which must never show up in ``me``'s numbers."""
    cur.execute("INSERT INTO users (spotify_id, display_name) VALUES ('me', 'Me'), ('other', 'Other') RETURNING id")
    me, other = [row[0] for row in cur.fetchall()]
    cur.execute("INSERT INTO artists (spotify_id, name) VALUES ('a1', 'Alpha'), ('a2', 'Beta'), ('a3', 'Gamma')")
    cur.executemany(
        """INSERT INTO tracks (spotify_id, name, artist_name, primary_artist_id, album_name, duration_ms,
                                          release_date, release_date_precision, explicit, raw_json, audio_features)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
        TRACKS,
    )
    rows = [
        (me, "t1", D1, "short_term", 1),
        (me, "t2", D1, "short_term", 2),
        (me, "t3", D1, "short_term", 3),
        (me, "t2", D2, "short_term", 1),
        (me, "t1", D2, "short_term", 2),
        (me, "t4", D2, "short_term", 3),
        (me, "t4", D3, "short_term", 1),
        (me, "t3", D3, "short_term", 2),
        (me, "t6", D3, "short_term", 3),
        (me, "t1", D3, "medium_term", 1),
        (other, "t7", D1, "short_term", 1),
        (other, "t1", D1, "short_term", 2),
        (other, "t7", D2, "short_term", 1),
        (other, "t5", D2, "short_term", 2),
    ]
    cur.executemany(
        "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) VALUES (%s, %s, %s, %s, %s)", rows
    )
    saved = [
        (me, "t1", "2025-11-10T12:00:00Z"),
        (me, "t2", "2025-11-20T08:00:00Z"),
        (me, "t5", "2026-01-03T23:30:00Z"),
        (me, "t3", "2026-01-25T00:10:00Z"),
        (other, "t7", "2025-12-01T10:00:00Z"),
        (other, "t6", "2024-06-01T10:00:00Z"),
    ]
    cur.executemany("INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, %s, %s)", saved)
    return {"me": me, "other": other}
