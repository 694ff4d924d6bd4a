"""SQL for dated, ranked snapshots of a user's top tracks. Connection-first, never commits."""

from __future__ import annotations

from datetime import date

from database import SINCE, fetch_all, fetch_single
from tracks_db import cover_url

STORE_TOP_TRACKS = """
WITH ranked AS (
    SELECT DISTINCT ON (track_id) track_id, rank::integer AS rank
    FROM unnest(%(track_ids)s::text[]) WITH ORDINALITY AS x(track_id, rank)
    WHERE track_id IS NOT NULL
    ORDER BY track_id, rank
),
previous AS (  -- the same range's most recent earlier snapshot, to describe the movement
    SELECT track_id, rank FROM snapshots
    WHERE user_id = %(user_id)s AND time_range = %(time_range)s
      AND snapshot_date = (SELECT max(snapshot_date) FROM snapshots
                           WHERE user_id = %(user_id)s AND time_range = %(time_range)s
                             AND snapshot_date < %(day)s)
),
dropped AS (  -- a same-day re-sync replaces the day's list: tracks no longer in it go
    DELETE FROM snapshots
    WHERE user_id = %(user_id)s AND snapshot_date = %(day)s AND time_range = %(time_range)s
      AND track_id NOT IN (SELECT track_id FROM ranked)
    RETURNING track_id
),
written AS (
    INSERT INTO snapshots AS s (user_id, track_id, snapshot_date, time_range, rank)
    SELECT %(user_id)s, track_id, %(day)s, %(time_range)s, rank FROM ranked
    ON CONFLICT (user_id, track_id, snapshot_date, time_range) DO UPDATE SET rank = EXCLUDED.rank
        WHERE s.rank <> EXCLUDED.rank
    RETURNING track_id
)
SELECT (SELECT count(*) FROM ranked) AS ranked,
       (SELECT count(*) FROM written) + (SELECT count(*) FROM dropped) AS rows_changed,
       (SELECT count(*) FROM previous) > 0 AS has_previous,
       (SELECT count(*) FROM ranked r LEFT JOIN previous p USING (track_id) WHERE p.track_id IS NULL) AS entered,
       (SELECT count(*) FROM ranked r JOIN previous p USING (track_id) WHERE r.rank < p.rank) AS moved_up,
       (SELECT count(*) FROM ranked r JOIN previous p USING (track_id) WHERE r.rank > p.rank) AS moved_down
"""


def store_top_tracks(cur, user_id: int, day: date, time_range: str, track_ids: list) -> dict:
    """Record the user's top tracks (ids best first; None for a track without id keeps its
    rank taken) as the snapshot of ``day`` for ``time_range``. The tracks must exist.

    One statement: writes the ranks, drops tracks that left the list since an earlier sync
    the same day, and says how the list moved since the last snapshot. Running it again
    with the same list changes nothing.
    """
    cur.execute(STORE_TOP_TRACKS, {"track_ids": track_ids, "user_id": user_id, "day": day, "time_range": time_range})
    return fetch_single(cur)


def snapshot_dates(cur, user_id: int) -> list[dict]:
    cur.execute(
        """
        SELECT snapshot_date, time_range, count(*) AS tracks
        FROM snapshots WHERE user_id = %s
        GROUP BY snapshot_date, time_range ORDER BY snapshot_date DESC, time_range
    """,
        (user_id,),
    )
    return fetch_all(cur)


def snapshot_day_count(cur, user_id: int) -> int:
    cur.execute("SELECT count(DISTINCT snapshot_date) FROM snapshots WHERE user_id = %s", (user_id,))
    return cur.fetchone()[0]


def has_snapshots(cur, user_id: int) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM snapshots WHERE user_id = %s)", (user_id,))
    return cur.fetchone()[0]


def latest_top_tracks(cur, user_id: int, time_range: str, limit: int = 10) -> list[dict]:
    cur.execute(
        f"""
        SELECT s.rank, t.spotify_id, t.name, t.artist_name, t.album_name, {cover_url("t", 64)} AS cover_url,
               s.snapshot_date
        FROM snapshots s JOIN tracks t ON t.spotify_id = s.track_id
        WHERE s.user_id = %(user_id)s AND s.time_range = %(time_range)s
          AND s.snapshot_date = (SELECT max(snapshot_date) FROM snapshots
                                 WHERE user_id = %(user_id)s AND time_range = %(time_range)s)
        ORDER BY s.rank LIMIT %(limit)s
    """,
        {"user_id": user_id, "time_range": time_range, "limit": limit},
    )
    return fetch_all(cur)


# -- taste over time: the dashboard's aggregates ------------------------------------
# Each takes the user, one time range and ``since`` (the first day to include, or None
# for all history). Every one is served by the (user_id, time_range, snapshot_date, rank)
# index behind snapshots_one_track_per_rank, or the (user_id, track_id, ...) unique key.

RANK_MOVEMENT = f"""
WITH current_top AS (  -- the latest snapshot's best tracks
    SELECT track_id, rank FROM snapshots
    WHERE user_id = %(user_id)s AND time_range = %(time_range)s AND rank <= %(limit)s
      AND snapshot_date = (SELECT max(snapshot_date) FROM snapshots
                           WHERE user_id = %(user_id)s AND time_range = %(time_range)s)
),
days AS (
    SELECT DISTINCT snapshot_date FROM snapshots
    WHERE user_id = %(user_id)s AND time_range = %(time_range)s AND snapshot_date >= {SINCE}
),
history AS (  -- only those tracks' rows, through the (user, track, ...) key
    SELECT track_id, snapshot_date, rank FROM snapshots
    WHERE user_id = %(user_id)s AND time_range = %(time_range)s AND snapshot_date >= {SINCE}
      AND track_id = ANY (ARRAY(SELECT track_id FROM current_top))
)
SELECT c.track_id, t.name, t.artist_name, c.rank AS current_rank,
       array_agg(d.snapshot_date ORDER BY d.snapshot_date) AS dates,
       array_agg(h.rank ORDER BY d.snapshot_date) AS ranks,
       count(*) AS days, count(*) OVER () AS tracks_shown
FROM current_top c
CROSS JOIN days d
JOIN tracks t ON t.spotify_id = c.track_id
LEFT JOIN history h ON h.snapshot_date = d.snapshot_date AND h.track_id = c.track_id
GROUP BY c.track_id, t.name, t.artist_name, c.rank
ORDER BY c.rank
"""

# Each day paired with the range's previous snapshot day, which may lie before ``since``.
SNAPSHOT_DAYS = """
days AS (
    SELECT snapshot_date, tracks, lag(snapshot_date) OVER (ORDER BY snapshot_date) AS previous_date
    FROM (SELECT snapshot_date, count(*) AS tracks FROM snapshots
          WHERE user_id = %(user_id)s AND time_range = %(time_range)s
          GROUP BY snapshot_date) per_day
)"""

TURNOVER = f"""
WITH {SNAPSHOT_DAYS}
SELECT d.snapshot_date, d.previous_date, d.tracks,
       count(*) FILTER (WHERE p.track_id IS NULL) AS entered,
       round(100.0 * count(*) FILTER (WHERE p.track_id IS NULL) / d.tracks, 1)::float8 AS turnover_pct
FROM days d
JOIN snapshots s ON s.user_id = %(user_id)s AND s.time_range = %(time_range)s
                AND s.snapshot_date = d.snapshot_date
LEFT JOIN snapshots p ON p.user_id = %(user_id)s AND p.time_range = %(time_range)s
                     AND p.snapshot_date = d.previous_date AND p.track_id = s.track_id
WHERE d.previous_date IS NOT NULL AND d.snapshot_date >= {SINCE}
GROUP BY d.snapshot_date, d.previous_date, d.tracks
ORDER BY d.snapshot_date
"""

# The range's first snapshot is left out: everything in it is "new".
DISCOVERY = f"""
WITH {SNAPSHOT_DAYS},
first_seen AS (
    SELECT track_id, min(snapshot_date) AS snapshot_date FROM snapshots
    WHERE user_id = %(user_id)s AND time_range = %(time_range)s
    GROUP BY track_id
)
SELECT d.snapshot_date, d.tracks, count(f.track_id) AS discovered,
       round(100.0 * count(f.track_id) / d.tracks, 1)::float8 AS discovery_pct
FROM days d
LEFT JOIN first_seen f ON f.snapshot_date = d.snapshot_date
WHERE d.previous_date IS NOT NULL AND d.snapshot_date >= {SINCE}
GROUP BY d.snapshot_date, d.tracks
ORDER BY d.snapshot_date
"""

# An artist is the track's primary artist, or its credited names when that is unknown.
# The list's tracks are looked up by primary key (``= ANY(ARRAY(...))``): a year of
# snapshots repeats a few hundred tracks, which the planner cannot know.
ARTIST_KEY = "coalesce(t.primary_artist_id, t.artist_name)"
LIST_ENTRIES = f"""
entries AS (
    SELECT snapshot_date, track_id FROM snapshots
    WHERE user_id = %(user_id)s AND time_range = %(time_range)s AND snapshot_date >= {SINCE}
),
artist_of AS (
    SELECT t.spotify_id AS track_id, {ARTIST_KEY} AS artist_key, coalesce(a.name, t.artist_name) AS artist_name
    FROM tracks t LEFT JOIN artists a ON a.spotify_id = t.primary_artist_id
    WHERE t.spotify_id = ANY (ARRAY(SELECT DISTINCT track_id FROM entries))
)"""

ARTIST_DIVERSITY = f"""
WITH {LIST_ENTRIES}
SELECT date_trunc('month', e.snapshot_date)::date AS month,
       count(DISTINCT a.artist_key) AS artists,
       count(DISTINCT e.track_id) AS tracks,
       round(100.0 * count(DISTINCT a.artist_key) / count(DISTINCT e.track_id), 1)::float8 AS artists_per_100_tracks
FROM entries e JOIN artist_of a USING (track_id)
GROUP BY 1
ORDER BY 1
"""

CONSISTENT_ARTISTS = f"""
WITH {LIST_ENTRIES},
per_artist AS (
    SELECT a.artist_key, min(a.artist_name) AS artist_name, count(DISTINCT e.snapshot_date) AS snapshot_days,
           count(*) AS entries
    FROM entries e JOIN artist_of a USING (track_id)
    WHERE a.artist_key IS NOT NULL
    GROUP BY a.artist_key
),
total AS MATERIALIZED (SELECT count(DISTINCT snapshot_date) AS days FROM entries)  -- once, not per row
SELECT artist_name, snapshot_days, entries, total.days AS total_days,
       round(100.0 * snapshot_days / total.days, 1)::float8 AS presence_pct,
       round(1.0 * entries / total.days, 1)::float8 AS tracks_per_snapshot
FROM per_artist, total
ORDER BY entries DESC, snapshot_days DESC, artist_name
LIMIT %(limit)s
"""


def _taste(cur, query: str, user_id: int, time_range: str, since: date | None, limit: int | None = None):
    cur.execute(query, {"user_id": user_id, "time_range": time_range, "since": since, "limit": limit})
    return fetch_all(cur)


def rank_movement(cur, user_id: int, time_range: str, since: date | None, limit: int = 10) -> list[dict]:
    """The latest snapshot's top ``limit`` tracks, each with its rank on every snapshot day
    since ``since`` (``ranks[i]`` is None when it was not in the list on ``dates[i]``)."""
    return _taste(cur, RANK_MOVEMENT, user_id, time_range, since, limit)


def turnover(cur, user_id: int, time_range: str, since: date | None) -> list[dict]:
    """Per snapshot day: how many of its tracks were absent from the previous snapshot
    (``entered``) and that share in percent (``turnover_pct``)."""
    return _taste(cur, TURNOVER, user_id, time_range, since)


def discovery(cur, user_id: int, time_range: str, since: date | None) -> list[dict]:
    """Per snapshot day: tracks in this range's list for the first time ever."""
    return _taste(cur, DISCOVERY, user_id, time_range, since)


def artist_diversity(cur, user_id: int, time_range: str, since: date | None) -> list[dict]:
    """Per month: distinct artists and tracks across that month's snapshots."""
    return _taste(cur, ARTIST_DIVERSITY, user_id, time_range, since)


def consistent_artists(cur, user_id: int, time_range: str, since: date | None, limit: int = 10) -> list[dict]:
    """Artists by how many of their tracks the average snapshot holds (``tracks_per_snapshot``:
    their track-days over all days), then by the days they are in at all (``presence_pct``).
    Presence alone ties every artist who is always there at 100 %."""
    return _taste(cur, CONSISTENT_ARTISTS, user_id, time_range, since, limit)
