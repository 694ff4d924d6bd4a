"""SQL for a person's whole account: status, export, deletion. Connection-first, never commits.

Exports stream: PostgreSQL renders each row (``row_to_json``) and a server-side named
cursor hands them over ``itersize`` at a time, so memory stays flat however long the
history is.
"""

from __future__ import annotations

from database import fetch_one, fetch_single

EXPORT_BATCH = 2000

# Section name -> query of the person's rows, oldest first. Every query takes %(user_id)s.
EXPORT_SECTIONS = {
    "snapshots": """
        SELECT snapshot_date, time_range, rank, track_id FROM snapshots
        WHERE user_id = %(user_id)s ORDER BY snapshot_date, time_range, rank""",
    "saved_tracks": """
        SELECT added_at, track_id FROM saved_tracks
        WHERE user_id = %(user_id)s ORDER BY added_at, track_id""",
    "plays": """
        SELECT played_at, track_id FROM plays WHERE user_id = %(user_id)s ORDER BY played_at""",
    "playlists": """
        SELECT p.id, p.kind, p.name, p.parameters, p.spotify_id, p.legacy_key, p.created_at,
               coalesce((SELECT json_agg(pt.track_id ORDER BY pt.position)
                           FROM playlist_tracks pt WHERE pt.playlist_id = p.id), '[]') AS track_ids
        FROM playlists p WHERE p.user_id = %(user_id)s ORDER BY p.created_at, p.id""",
    "sync_runs": """
        SELECT status, stage, summary, error, started_at, finished_at FROM sync_runs
        WHERE user_id = %(user_id)s ORDER BY started_at, id""",
    # the shared catalogue rows the history above points at, so the export reads alone
    "tracks": """
        SELECT t.spotify_id, t.name, t.artist_name, t.album_name, t.release_date, t.release_date_precision,
               t.duration_ms, t.explicit, t.spotify_url, t.raw_json->'external_ids'->>'isrc' AS isrc,
               t.audio_features
        FROM tracks t
        WHERE t.spotify_id IN (SELECT track_id FROM snapshots WHERE user_id = %(user_id)s
                               UNION SELECT track_id FROM saved_tracks WHERE user_id = %(user_id)s
                               UNION SELECT track_id FROM plays WHERE user_id = %(user_id)s
                               UNION SELECT pt.track_id FROM playlist_tracks pt
                                     JOIN playlists p ON p.id = pt.playlist_id WHERE p.user_id = %(user_id)s)
        ORDER BY t.spotify_id""",
}

# One flat table for the CSV: every fact about the person with its track spelled out.
EXPORT_CSV = """
    SELECT e.kind, e.happened_on, e.time_range, e.rank, e.playlist, e.track_id,
           t.name AS track_name, t.artist_name, t.album_name, t.release_date
    FROM (
        SELECT 'snapshot' AS kind, snapshot_date::timestamptz AS happened_on, time_range, rank,
               NULL::text AS playlist, track_id
          FROM snapshots WHERE user_id = %(user_id)s
        UNION ALL
        SELECT 'saved', added_at, NULL, NULL, NULL, track_id FROM saved_tracks WHERE user_id = %(user_id)s
        UNION ALL
        SELECT 'played', played_at, NULL, NULL, NULL, track_id FROM plays WHERE user_id = %(user_id)s
        UNION ALL
        SELECT 'playlist_entry', p.created_at, NULL, pt.position + 1, p.name, pt.track_id
          FROM playlists p JOIN playlist_tracks pt ON pt.playlist_id = p.id WHERE p.user_id = %(user_id)s
    ) AS e
    JOIN tracks t ON t.spotify_id = e.track_id
    ORDER BY e.happened_on, e.kind, e.time_range, e.rank, e.track_id
"""
CSV_COLUMNS = (
    "kind",
    "happened_on",
    "time_range",
    "rank",
    "playlist",
    "track_id",
    "track_name",
    "artist_name",
    "album_name",
    "release_date",
)


def account_status(cur, user_id: int) -> dict | None:
    """What the settings page shows: the user, their token's expiry, last sync, last
    snapshot and how much is stored."""
    cur.execute(
        """
        SELECT u.id, u.spotify_id, u.display_name, u.created_at, u.last_synced_at, u.needs_relogin_since,
               t.expires_at AS token_expires_at, t.refresh_token_expires_at,
               (SELECT max(snapshot_date) FROM snapshots WHERE user_id = u.id) AS last_snapshot,
               (SELECT count(DISTINCT snapshot_date) FROM snapshots WHERE user_id = u.id) AS snapshot_days,
               (SELECT count(*) FROM snapshots WHERE user_id = u.id) AS snapshot_rows,
               (SELECT count(*) FROM saved_tracks WHERE user_id = u.id) AS saved_tracks,
               (SELECT count(*) FROM plays WHERE user_id = u.id) AS plays,
               (SELECT count(*) FROM playlists WHERE user_id = u.id) AS playlists
        FROM users u LEFT JOIN spotify_tokens t ON t.user_id = u.id
        WHERE u.id = %s
    """,
        (user_id,),
    )
    return fetch_one(cur)


def export_user_row(cur, user_id: int) -> str:
    cur.execute(
        """
        SELECT row_to_json(u)::text FROM (
            SELECT spotify_id, display_name, created_at, last_login_at, last_synced_at FROM users WHERE id = %s
        ) AS u
    """,
        (user_id,),
    )
    row = cur.fetchone()
    return row[0] if row else "null"


def stream_json_rows(conn, user_id: int, section: str):
    """Yield each row of one export section as JSON text, from a server-side cursor."""
    with conn.cursor(name=f"export_{section}") as named:
        named.itersize = EXPORT_BATCH
        named.execute(f"SELECT row_to_json(r)::text FROM ({EXPORT_SECTIONS[section]}) AS r", {"user_id": user_id})
        for (text,) in named:
            yield text


def stream_csv_rows(conn, user_id: int):
    """Yield CSV_COLUMNS tuples of the flat export, from a server-side cursor."""
    with conn.cursor(name="export_csv") as named:
        named.itersize = EXPORT_BATCH
        named.execute(EXPORT_CSV, {"user_id": user_id})
        yield from named


def delete_account(cur, user_id: int) -> dict:
    """Delete the user; ON DELETE CASCADE takes their tokens, snapshots, library, plays,
    playlists (and entries) and sync runs. Tracks and artists are shared by everybody and
    stay. Returns what went, counted before."""
    cur.execute(
        """
        SELECT (SELECT count(*) FROM snapshots WHERE user_id = %(u)s) AS snapshots,
               (SELECT count(*) FROM saved_tracks WHERE user_id = %(u)s) AS saved_tracks,
               (SELECT count(*) FROM plays WHERE user_id = %(u)s) AS plays,
               (SELECT count(*) FROM playlists WHERE user_id = %(u)s) AS playlists
    """,
        {"u": user_id},
    )
    counts = fetch_single(cur)
    cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
    counts["users"] = cur.rowcount
    return counts
