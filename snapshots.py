"""SQL for dated, ranked snapshots of a user's top tracks. Connection-first, never commits."""
from __future__ import annotations

from datetime import date

from database import fetch_all, fetch_one

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
    cur.execute(STORE_TOP_TRACKS, {"track_ids": track_ids, "user_id": user_id, "day": day,
                                   "time_range": time_range})
    return fetch_one(cur)


def snapshot_dates(cur, user_id: int) -> list[dict]:
    cur.execute("""
        SELECT snapshot_date, time_range, count(*) AS tracks
        FROM snapshots WHERE user_id = %s
        GROUP BY snapshot_date, time_range ORDER BY snapshot_date DESC, time_range
    """, (user_id,))
    return fetch_all(cur)


def has_snapshots(cur, user_id: int) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM snapshots WHERE user_id = %s)", (user_id,))
    return cur.fetchone()[0]


def latest_top_tracks(cur, user_id: int, time_range: str, limit: int = 10) -> list[dict]:
    cur.execute("""
        SELECT s.rank, t.spotify_id, t.name, t.artist_name, s.snapshot_date
        FROM snapshots s JOIN tracks t ON t.spotify_id = s.track_id
        WHERE s.user_id = %(user_id)s AND s.time_range = %(time_range)s
          AND s.snapshot_date = (SELECT max(snapshot_date) FROM snapshots
                                 WHERE user_id = %(user_id)s AND time_range = %(time_range)s)
        ORDER BY s.rank LIMIT %(limit)s
    """, {"user_id": user_id, "time_range": time_range, "limit": limit})
    return fetch_all(cur)
