"""SQL for a user's library (saved tracks) and recently played. Connection-first, never commits.

The tracks must already be in ``tracks`` (tracks_db.upsert_catalogue); these statements
only link them to the user, so concurrent syncs of different users never contend here.
"""

from __future__ import annotations

from history.history_db import DRIFT, title_key

STORE_SAVED_TRACKS = """
WITH incoming AS (
    SELECT DISTINCT ON (track_id) track_id, added_at
    FROM unnest(%(track_ids)s::text[], %(added_at)s::timestamptz[]) AS x(track_id, added_at)
    ORDER BY track_id, added_at
),
written AS (
    INSERT INTO saved_tracks AS s (user_id, track_id, added_at)
    SELECT %(user_id)s, track_id, added_at FROM incoming
    ON CONFLICT (user_id, track_id) DO UPDATE SET added_at = EXCLUDED.added_at
        WHERE s.added_at <> EXCLUDED.added_at
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS newly_saved FROM written
"""


def store_saved_tracks(cur, user_id: int, track_ids: list, added_at: list) -> int:
    """Link a chunk of saved tracks to the user; returns how many are newly saved."""
    cur.execute(STORE_SAVED_TRACKS, {"track_ids": track_ids, "added_at": added_at, "user_id": user_id})
    return cur.fetchone()[0]


def forget_unsaved(cur, user_id: int, saved_ids: list) -> int:
    """Drop library rows for tracks the user no longer has saved (after a complete fetch)."""
    cur.execute("DELETE FROM saved_tracks WHERE user_id = %s AND NOT (track_id = ANY(%s))", (user_id, saved_ids))
    return cur.rowcount


# Recently played's plays, to the second, that the person's stored plays do not already
# have (history/history_db.py's docstring has the identity rules): an export's row of the
# same track ending within DRIFT s (and within its ms_played) is this play; an account-data
# play of the same minute and title is this play known to the minute only, so it is
# replaced by the precise one, which keeps its names and ms_played (the n-th capture of a
# title in a minute replaces the n-th such basic play).
CAPTURED_PLAYS = f"""
WITH incoming AS (
    SELECT DISTINCT ON (1) date_trunc('second', x.played_at) AS played_at, x.track_id, t.name
    FROM unnest(%(track_ids)s::text[], %(played_at)s::timestamptz[]) AS x(track_id, played_at)
    LEFT JOIN tracks t ON t.spotify_id = x.track_id
    ORDER BY 1
),
fresh AS (
    SELECT i.*, date_trunc('minute', i.played_at) AS minute, {title_key("i.name")} AS title,
           row_number() OVER (PARTITION BY date_trunc('minute', i.played_at), {title_key("i.name")}
                              ORDER BY i.played_at) AS nth
    FROM incoming i
    WHERE NOT EXISTS (SELECT 1 FROM plays k WHERE k.user_id = %(user_id)s AND k.played_at = i.played_at
                                               AND k.source <> 'export_basic')
      AND NOT EXISTS (
        SELECT 1 FROM plays e
        WHERE e.user_id = %(user_id)s AND e.source = 'export' AND e.track_id = i.track_id
          AND e.played_at BETWEEN i.played_at - interval '{DRIFT} seconds' AND i.played_at + interval '{DRIFT} seconds'
          AND e.played_at <> i.played_at
          AND abs(extract(epoch FROM e.played_at - i.played_at)) <= least({DRIFT}, coalesce(e.ms_played, 0) / 1000.0))
),
basic AS (
    SELECT b.played_at, b.ms_played, b.track_name, b.artist_name, date_trunc('minute', b.played_at) AS minute,
           {title_key("b.track_name")} AS title,
           row_number() OVER (PARTITION BY date_trunc('minute', b.played_at), {title_key("b.track_name")}
                              ORDER BY b.played_at) AS nth
    FROM plays b
    WHERE b.user_id = %(user_id)s AND b.source = 'export_basic'
      AND b.played_at >= (SELECT min(minute) FROM fresh)
      AND b.played_at < (SELECT max(minute) FROM fresh) + interval '1 minute'
),
pairs AS (
    SELECT f.played_at, b.played_at AS basic_at, b.ms_played, b.track_name, b.artist_name
    FROM fresh f JOIN basic b USING (minute, title, nth)
),
replaced AS (
    DELETE FROM plays d USING pairs p WHERE d.user_id = %(user_id)s AND d.played_at = p.basic_at
    RETURNING d.played_at
)
SELECT f.played_at, f.track_id, p.ms_played, p.track_name, p.artist_name, p.basic_at IS NOT NULL AS replaces
FROM fresh f LEFT JOIN pairs p ON p.played_at = f.played_at
"""


def store_plays(cur, user_id: int, track_ids: list, played_at: list) -> int:
    """Record recently-played tracks; plays already known are skipped, account-data plays
    they match are replaced (CAPTURED_PLAYS). Returns how many plays the person has more.

    End times are truncated to the second: that is a play's identity (see schema_postgres.sql)."""
    cur.execute(CAPTURED_PLAYS, {"user_id": user_id, "track_ids": track_ids, "played_at": played_at})
    rows = cur.fetchall()
    if not rows:
        return 0
    at, ids, ms, names, artists, replaces = (list(column) for column in zip(*rows, strict=True))
    cur.execute(
        """
        INSERT INTO plays (user_id, played_at, track_id, ms_played, track_name, artist_name)
        SELECT %(user_id)s, played_at, track_id, ms, name, artist
        FROM unnest(%(at)s::timestamptz[], %(ids)s::text[], %(ms)s::integer[], %(names)s::text[], %(artists)s::text[])
             AS x(played_at, track_id, ms, name, artist)
        ON CONFLICT (user_id, played_at) DO NOTHING
    """,
        {"user_id": user_id, "at": at, "ids": ids, "ms": ms, "names": names, "artists": artists},
    )
    return max(cur.rowcount - sum(replaces), 0)


def library_size(cur, user_id: int) -> int:
    cur.execute("SELECT count(*) FROM saved_tracks WHERE user_id = %s", (user_id,))
    return cur.fetchone()[0]
