"""SQL for a user's library (saved tracks) and recently played. Connection-first, never commits.

The tracks must already be in ``tracks`` (tracks_db.upsert_catalogue); these statements
only link them to the user, so concurrent syncs of different users never contend here.
"""

from __future__ import annotations

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


def store_plays(cur, user_id: int, track_ids: list, played_at: list) -> int:
    """Record recently-played tracks; plays already seen are skipped. Returns new plays.

    End times are truncated to the second: that is a play's identity (see schema_postgres.sql)."""
    cur.execute(
        """
        INSERT INTO plays (user_id, played_at, track_id)
        SELECT %(user_id)s, date_trunc('second', played_at), track_id
        FROM unnest(%(track_ids)s::text[], %(played_at)s::timestamptz[]) AS x(track_id, played_at)
        ON CONFLICT (user_id, played_at) DO NOTHING
    """,
        {"user_id": user_id, "track_ids": track_ids, "played_at": played_at},
    )
    return cur.rowcount


def library_size(cur, user_id: int) -> int:
    cur.execute("SELECT count(*) FROM saved_tracks WHERE user_id = %s", (user_id,))
    return cur.fetchone()[0]
