"""SQL for the artist and album pages. Cursor first, returns dicts or lists, never commits.

Everything is one person's: an artist's or album's tracks are those of the catalogue that
are in the person's snapshots, library or plays (``MINE``); the catalogue alone never
makes a page. Lookups go through schema version 18's indexes: the credited artist ids and
the album id of the stored track JSON, and the artist name of tracks and plays that only
have names.
"""

from __future__ import annotations

from database import fetch_all, fetch_one, fetch_single
from tracks_db import cover_url, credited_artists

LIST_LIMIT = 200  # tracks listed on one page; the counts above the list are of all of them

# The track (alias t) is in the person's own data.
MINE = """(EXISTS (SELECT 1 FROM saved_tracks WHERE user_id = %(user_id)s AND track_id = t.spotify_id)
        OR EXISTS (SELECT 1 FROM snapshots WHERE user_id = %(user_id)s AND track_id = t.spotify_id)
        OR EXISTS (SELECT 1 FROM plays WHERE user_id = %(user_id)s AND track_id = t.spotify_id))"""

# A track stored from an export's names, before (or without) its Spotify object.
NAMES_ONLY = "t.raw_json = '{}'::jsonb"


def artist(cur, artist_id: str) -> dict | None:
    cur.execute(
        """SELECT spotify_id, name, raw_json->'external_urls'->>'spotify' AS spotify_url
           FROM artists WHERE spotify_id = %s""",
        (artist_id,),
    )
    return fetch_one(cur)


def artist_track_ids(cur, user_id: int, artist_ids: list[str], name: str) -> list[str]:
    """The person's tracks that credit one of the artists (in any position), and those that
    only have names and name the artist."""
    cur.execute(
        f"""
        SELECT t.spotify_id FROM tracks t
        WHERE (jsonb_path_query_array(t.raw_json, '$.artists[*].id') ?| %(artist_ids)s::text[]
               OR t.primary_artist_id = ANY(%(artist_ids)s::text[])
               OR ({NAMES_ONLY} AND lower(t.artist_name) = lower(%(name)s)))
          AND {MINE}
        ORDER BY t.spotify_id
    """,
        {"user_id": user_id, "artist_ids": artist_ids, "name": name},
    )
    return [row[0] for row in cur.fetchall()]


def artists_named(cur, user_id: int, name: str) -> list[dict]:
    """The catalogue's artists called ``name`` (in any case) that the person has tracks of,
    the one with most of them first."""
    cur.execute(
        f"""
        SELECT a.spotify_id, a.name, a.raw_json->'external_urls'->>'spotify' AS spotify_url FROM artists a
        CROSS JOIN LATERAL (SELECT count(*) AS tracks FROM tracks t
                             WHERE jsonb_path_query_array(t.raw_json, '$.artists[*].id') ? a.spotify_id
                               AND {MINE}) AS mine
        WHERE lower(a.name) = lower(%(name)s) AND mine.tracks > 0
        ORDER BY mine.tracks DESC, a.spotify_id
    """,
        {"user_id": user_id, "name": name},
    )
    return fetch_all(cur)


def album(cur, user_id: int, album_id: str) -> dict | None:
    """The album as the person's tracks of it describe it; None unless they have one."""
    cur.execute(
        f"""
        SELECT t.raw_json->'album'->>'id' AS album_id,
               coalesce(t.raw_json->'album'->>'name', t.album_name) AS name,
               t.raw_json->'album'->>'album_type' AS album_type,
               t.raw_json->'album'->>'release_date' AS release_text,
               t.raw_json->'album'->'external_urls'->>'spotify' AS spotify_url,
               CASE WHEN t.raw_json->'album'->>'total_tracks' ~ '^\\d+$'
                    THEN (t.raw_json->'album'->>'total_tracks')::int END AS total_tracks,
               {cover_url("t", 300)} AS cover_url,
               -- the album's own artists, else the track's (a payload without them)
               coalesce(nullif((SELECT jsonb_agg(jsonb_build_object('id', a->>'id', 'name', a->>'name') ORDER BY n)
                                  FROM jsonb_array_elements(CASE jsonb_typeof(t.raw_json->'album'->'artists')
                                                            WHEN 'array' THEN t.raw_json->'album'->'artists'
                                                            ELSE '[]' END) WITH ORDINALITY AS x(a, n)
                                 WHERE jsonb_typeof(a) = 'object' AND a->>'name' IS NOT NULL), '[]'),
                        {credited_artists("t")}) AS artists
        FROM tracks t
        WHERE t.raw_json->'album'->>'id' = %(album_id)s AND {MINE}
        ORDER BY t.updated_at DESC, t.spotify_id
        LIMIT 1
    """,
        {"user_id": user_id, "album_id": album_id},
    )
    return fetch_one(cur)


def album_track_ids(cur, user_id: int, album_id: str, name: str, artist_name: str | None) -> list[str]:
    """The person's tracks of the album: by its id, and the name-only tracks an export
    gave with the same album and artist names."""
    cur.execute(
        f"""
        SELECT t.spotify_id FROM tracks t
        WHERE t.raw_json->'album'->>'id' = %(album_id)s AND {MINE}
        UNION
        SELECT t.spotify_id FROM tracks t
        WHERE {NAMES_ONLY} AND lower(t.artist_name) = lower(%(artist_name)s)
          AND lower(t.album_name) = lower(%(name)s) AND {MINE}
        ORDER BY 1
    """,
        {"user_id": user_id, "album_id": album_id, "name": name, "artist_name": artist_name},
    )
    return [row[0] for row in cur.fetchall()]


def number(track: str, key: str) -> str:
    """SQL for a whole number of the track's JSON, NULL when it is missing or not one."""
    return f"(CASE WHEN {track}.raw_json->>'{key}' ~ '^\\d{{1,6}}$' THEN ({track}.raw_json->>'{key}')::int END)"


def listed_tracks(cur, user_id: int, track_ids: list[str], album_order: bool = False) -> list[dict]:
    """The tracks with what the person did with each: most played first (an album: in its
    running order), at most LIST_LIMIT."""
    order = (
        f"{number('t', 'disc_number')} NULLS LAST, {number('t', 'track_number')} NULLS LAST, t.name"
        if album_order
        else "plays DESC, best_rank NULLS LAST, saved DESC, t.name"
    )
    cur.execute(
        f"""
        SELECT t.spotify_id, t.name, t.artist_name, t.album_name, t.release_date,
               t.raw_json->'album'->>'id' AS album_id,
               {cover_url("t", 64)} AS cover_url,
               (SELECT count(*) FROM plays WHERE user_id = %(user_id)s AND track_id = t.spotify_id) AS plays,
               (SELECT min(rank) FROM snapshots WHERE user_id = %(user_id)s AND track_id = t.spotify_id) AS best_rank,
               EXISTS (SELECT 1 FROM saved_tracks WHERE user_id = %(user_id)s AND track_id = t.spotify_id) AS saved
        FROM tracks t
        WHERE t.spotify_id = ANY(%(track_ids)s)
        ORDER BY {order}, t.spotify_id
        LIMIT %(limit)s
    """,
        {"user_id": user_id, "track_ids": track_ids, "limit": LIST_LIMIT},
    )
    return fetch_all(cur)


def plays_summary(
    cur, user_id: int, track_ids: list[str], artist_name: str | None, album_name: str | None = None
) -> dict:
    """The person's plays of the tracks, and those of plays with no track that name the
    artist (and the album, for an album): how many, how long, the first and the last."""
    cur.execute(
        """
        SELECT count(*) AS plays,
               coalesce(sum(coalesce(p.ms_played, t.duration_ms)), 0)::bigint AS ms,
               min(p.played_at) AS first_played_at, max(p.played_at) AS last_played_at
        FROM plays p LEFT JOIN tracks t ON t.spotify_id = p.track_id
        WHERE p.user_id = %(user_id)s
          AND (p.track_id = ANY(%(track_ids)s)
               OR (p.track_id IS NULL AND lower(p.artist_name) = lower(%(artist_name)s)
                   AND (%(album_name)s::text IS NULL OR lower(p.album_name) = lower(%(album_name)s))))
    """,
        {"user_id": user_id, "track_ids": track_ids, "artist_name": artist_name, "album_name": album_name},
    )
    return fetch_single(cur)


def rank_history(cur, user_id: int, track_ids: list[str]) -> list[dict]:
    """Per snapshot and time range: the best rank any of the tracks held, and how many of
    them were in the list."""
    cur.execute(
        """
        SELECT snapshot_date, time_range, min(rank) AS best_rank, count(*) AS tracks
        FROM snapshots
        WHERE user_id = %(user_id)s AND track_id = ANY(%(track_ids)s)
        GROUP BY snapshot_date, time_range
        ORDER BY snapshot_date, time_range
    """,
        {"user_id": user_id, "track_ids": track_ids},
    )
    return fetch_all(cur)
