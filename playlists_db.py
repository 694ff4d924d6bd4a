"""SQL for the playlists the app builds from a person's past. Connection-first, never commits.

Selections (era, forgotten gems, currently obsessed, mood) read only the person's own
data; ``record_playlist`` writes what was created on Spotify.
"""

from __future__ import annotations

from psycopg2.extras import Json

from database import fetch_all, fetch_one, fetch_single

# How much the person cared about each of their tracks: snapshot appearances, best rank,
# whether it is saved and when, how often it was seen played. One row per track.
AFFINITY = """
    SELECT track_id, sum(snapshot_rows) AS snapshot_rows, min(best_rank) AS best_rank,
           bool_or(saved) AS saved, max(saved_at) AS saved_at, sum(plays) AS plays
    FROM (
        SELECT track_id, count(*) AS snapshot_rows, min(rank) AS best_rank, false AS saved,
               NULL::timestamptz AS saved_at, 0 AS plays
          FROM snapshots WHERE user_id = %(user_id)s GROUP BY track_id
        UNION ALL
        SELECT track_id, 0, NULL, true, added_at, 0 FROM saved_tracks WHERE user_id = %(user_id)s
        UNION ALL
        SELECT track_id, 0, NULL, false, NULL, count(*) FROM plays WHERE user_id = %(user_id)s GROUP BY track_id
    ) AS facts
    GROUP BY track_id
"""

# Most listened to first: plays, then rank history (appearances, best rank), then the most
# recently saved; the id only makes ties stable (never the name: that was an A-to-Z slice).
LISTENED_MOST = "a.plays DESC, a.snapshot_rows DESC, a.best_rank NULLS LAST, a.saved_at DESC NULLS LAST, t.spotify_id"

TRACK_COLUMNS = "t.spotify_id, t.name, t.artist_name, t.album_name, t.release_date, t.duration_ms"
ENTRY_COUNT = "(SELECT count(*) FROM playlist_tracks pt WHERE pt.playlist_id = p.id) AS tracks"  # of playlists p


def era_tracks(cur, user_id: int, first_year: int, last_year: int, limit: int = 150) -> list[dict]:
    """The person's tracks released in [first_year, last_year], what they listened to most
    first (LISTENED_MOST), the years taking turns: each year's best, then each year's
    second best, and so on, so a long era is not one busy year."""
    cur.execute(
        f"""
        SELECT spotify_id, name, artist_name, album_name, release_date, duration_ms,
               snapshot_rows, best_rank, saved, plays
        FROM (
            SELECT {TRACK_COLUMNS}, a.snapshot_rows, a.best_rank, a.saved, a.plays,
                   row_number() OVER (PARTITION BY extract(year FROM t.release_date) ORDER BY {LISTENED_MOST})
                       AS turn,
                   row_number() OVER (ORDER BY {LISTENED_MOST}) AS overall
            FROM ({AFFINITY}) AS a JOIN tracks t ON t.spotify_id = a.track_id
            WHERE t.release_date >= make_date(%(first_year)s, 1, 1)
              AND t.release_date < make_date(%(last_year)s + 1, 1, 1)
        ) AS ranked
        ORDER BY turn, overall
        LIMIT %(limit)s
    """,
        {"user_id": user_id, "first_year": first_year, "last_year": last_year, "limit": limit},
    )
    return fetch_all(cur)


RECENT_DAYS = 28  # "lately" for forgotten gems: the four weeks before the latest snapshot, and since


def forgotten_gems(cur, user_id: int, recent_days: int = RECENT_DAYS, top_n: int = 20, limit: int = 50) -> list[dict]:
    """Tracks that made the person's top ``top_n`` (any range) before the recent window and
    have not been heard of since: in no top-tracks snapshot of any range dated in the window
    and not played in it. The window is the ``recent_days`` days up to the person's latest
    snapshot, and everything after it (a play since the last sync is recent too). Strongest
    past first: most appearances, then best rank."""
    cur.execute(
        f"""
        WITH latest AS (
            SELECT max(snapshot_date) - %(recent_days)s AS window_start FROM snapshots WHERE user_id = %(user_id)s
        ),
        recent AS (
            SELECT s.track_id FROM snapshots s, latest
            WHERE s.user_id = %(user_id)s AND s.snapshot_date > latest.window_start
            UNION
            SELECT p.track_id FROM plays p, latest
            WHERE p.user_id = %(user_id)s AND p.track_id IS NOT NULL
              AND p.played_at >= latest.window_start + 1
        ),
        ranked_before AS (
            SELECT s.track_id, count(*) AS appearances, min(s.rank) AS best_rank,
                   max(s.snapshot_date) AS last_ranked_on
            FROM snapshots s, latest
            WHERE s.user_id = %(user_id)s AND s.rank <= %(top_n)s AND s.snapshot_date <= latest.window_start
            GROUP BY s.track_id
        )
        SELECT {TRACK_COLUMNS}, r.appearances, r.best_rank, r.last_ranked_on
        FROM ranked_before r JOIN tracks t ON t.spotify_id = r.track_id
        WHERE NOT EXISTS (SELECT 1 FROM recent WHERE recent.track_id = r.track_id)
        ORDER BY r.appearances DESC, r.best_rank, t.name, t.spotify_id
        LIMIT %(limit)s
    """,
        {"user_id": user_id, "recent_days": recent_days, "top_n": top_n, "limit": limit},
    )
    return fetch_all(cur)


def obsessed(cur, user_id: int, days: int = 28, limit: int = 30) -> dict:
    """This month's risers: tracks in the latest short-term snapshot that climbed since the
    baseline (the last short-term snapshot at least ``days`` days older, else the oldest
    one); a new entry counts as climbing from just below the baseline's last rank.

    Returns {"latest", "baseline", "rows"}; rows carry rank, previous_rank (None when new)
    and climbed. No baseline (a single snapshot): no rows.
    """
    cur.execute(
        """
        WITH days AS (
            SELECT max(snapshot_date) AS latest FROM snapshots
            WHERE user_id = %(user_id)s AND time_range = 'short_term'
        )
        SELECT days.latest,
               coalesce((SELECT max(snapshot_date) FROM snapshots
                          WHERE user_id = %(user_id)s AND time_range = 'short_term'
                            AND snapshot_date <= days.latest - %(days)s),
                        (SELECT min(snapshot_date) FROM snapshots
                          WHERE user_id = %(user_id)s AND time_range = 'short_term'
                            AND snapshot_date < days.latest)) AS baseline
        FROM days
    """,
        {"user_id": user_id, "days": days},
    )
    span = fetch_single(cur)
    if span["baseline"] is None:
        return {**span, "rows": []}
    cur.execute(
        f"""
        WITH before AS (
            SELECT track_id, rank FROM snapshots
            WHERE user_id = %(user_id)s AND time_range = 'short_term' AND snapshot_date = %(baseline)s
        ),
        entry_rank AS (SELECT max(rank) + 1 AS rank FROM before),
        now AS (
            SELECT track_id, rank FROM snapshots
            WHERE user_id = %(user_id)s AND time_range = 'short_term' AND snapshot_date = %(latest)s
        )
        SELECT {TRACK_COLUMNS}, n.rank, b.rank AS previous_rank,
               coalesce(b.rank, e.rank) - n.rank AS climbed
        FROM now n CROSS JOIN entry_rank e
        JOIN tracks t ON t.spotify_id = n.track_id
        LEFT JOIN before b ON b.track_id = n.track_id
        WHERE coalesce(b.rank, e.rank) > n.rank
        ORDER BY climbed DESC, n.rank, t.spotify_id
        LIMIT %(limit)s
    """,
        {"user_id": user_id, "latest": span["latest"], "baseline": span["baseline"], "limit": limit},
    )
    return {**span, "rows": fetch_all(cur)}


# Energy × valence quadrants, the book's mood map.
MOODS = {
    "happy": ("Happy & energetic", "f.valence >= 0.5 AND f.energy >= 0.5"),
    "calm": ("Calm & content", "f.valence >= 0.5 AND f.energy < 0.5"),
    "intense": ("Tense & intense", "f.valence < 0.5 AND f.energy >= 0.5"),
    "sad": ("Sad & slow", "f.valence < 0.5 AND f.energy < 0.5"),
}


def audio_feature_count(cur, user_id: int) -> int:
    cur.execute(
        f"""
        SELECT count(*) FROM tracks t
        WHERE t.audio_features IS NOT NULL AND t.spotify_id IN (SELECT track_id FROM ({AFFINITY}) a)
    """,
        {"user_id": user_id},
    )
    return cur.fetchone()[0]


ANY_AUDIO_FEATURES = "SELECT EXISTS (SELECT 1 FROM tracks WHERE audio_features IS NOT NULL)"


def has_audio_features(cur, user_id: int) -> bool:
    """Whether any of the person's tracks (saved, ranked or played) has audio features: the
    mood playlist is offered only then.

    Most catalogues of 2026 have no audio features at all, and then the first probe (one
    look at tracks_with_audio_features_idx) answers without reading the person's rows.
    """
    cur.execute(ANY_AUDIO_FEATURES)
    if not cur.fetchone()[0]:
        return False
    cur.execute(
        """
        SELECT EXISTS (
            SELECT 1
            FROM (SELECT track_id FROM saved_tracks WHERE user_id = %(user_id)s
                  UNION ALL SELECT track_id FROM snapshots WHERE user_id = %(user_id)s
                  UNION ALL SELECT track_id FROM plays WHERE user_id = %(user_id)s) AS mine
            JOIN tracks t ON t.spotify_id = mine.track_id
            WHERE t.audio_features IS NOT NULL
        )
    """,
        {"user_id": user_id},
    )
    return bool(cur.fetchone()[0])


def mood_tracks(cur, user_id: int, mood: str, limit: int = 50) -> list[dict]:
    """The person's tracks in one energy × valence quadrant, those they cared about most
    first. ``mood`` must be a key of MOODS (the condition is ours, never input)."""
    condition = MOODS[mood][1]
    cur.execute(
        f"""
        SELECT {TRACK_COLUMNS}, f.energy, f.valence
        FROM ({AFFINITY}) AS a JOIN tracks t ON t.spotify_id = a.track_id
        CROSS JOIN LATERAL (SELECT (t.audio_features->>'energy')::float AS energy,
                                   (t.audio_features->>'valence')::float AS valence) AS f
        WHERE t.audio_features IS NOT NULL AND f.energy IS NOT NULL AND f.valence IS NOT NULL
          AND {condition}
        ORDER BY a.snapshot_rows DESC, a.best_rank NULLS LAST, a.saved DESC, t.name, t.spotify_id
        LIMIT %(limit)s
    """,
        {"user_id": user_id, "limit": limit},
    )
    return fetch_all(cur)


# -- what the app built -------------------------------------------------------------
def record_playlist(
    cur, user_id: int, kind: str, name: str, parameters: dict, spotify_id: str | None, track_ids: list
) -> int:
    """Store a built playlist and its entries in order (a repeated track keeps its first
    position). The tracks must already be in ``tracks``."""
    cur.execute(
        """
        INSERT INTO playlists (user_id, kind, name, parameters, spotify_id)
        VALUES (%s, %s, %s, %s, %s) RETURNING id
    """,
        (user_id, kind, name, Json(parameters), spotify_id),
    )
    playlist_id = cur.fetchone()[0]
    insert_entries(cur, playlist_id, track_ids)
    return playlist_id


def insert_entries(cur, playlist_id: int, track_ids: list) -> None:
    cur.execute(
        """
        INSERT INTO playlist_tracks (playlist_id, track_id, position, added_at)
        SELECT %s, track_id, min(position)::int - 1, now()
        FROM unnest(%s::text[]) WITH ORDINALITY AS x(track_id, position)
        GROUP BY track_id
    """,
        (playlist_id, track_ids),
    )


def built_before(cur, user_id: int, kind: str, name: str) -> dict | None:
    """The newest playlist of this kind and name the person had written to Spotify, with
    its track count: building it again offers to update that one."""
    cur.execute(
        f"""
        SELECT p.id, p.name, p.spotify_id, p.created_at,
               {ENTRY_COUNT}
        FROM playlists p
        WHERE p.user_id = %s AND p.kind = %s AND p.name = %s AND p.spotify_id IS NOT NULL
        ORDER BY p.created_at DESC, p.id DESC LIMIT 1
    """,
        (user_id, kind, name),
    )
    return fetch_one(cur)


def replace_entries(cur, user_id: int, playlist_id: int, parameters: dict, track_ids: list) -> None:
    """The playlist now holds ``track_ids`` (it was updated on Spotify); the person's only."""
    cur.execute(
        "UPDATE playlists SET parameters = %s WHERE id = %s AND user_id = %s RETURNING id",
        (Json(parameters), playlist_id, user_id),
    )
    if cur.fetchone() is None:
        raise LookupError(f"playlist {playlist_id} is not this person's")
    cur.execute("DELETE FROM playlist_tracks WHERE playlist_id = %s", (playlist_id,))
    insert_entries(cur, playlist_id, track_ids)


def user_playlists(cur, user_id: int) -> list[dict]:
    cur.execute(
        f"""
        SELECT p.id, p.kind, p.name, p.parameters, p.spotify_id, p.legacy_key, p.created_at,
               {ENTRY_COUNT}
        FROM playlists p WHERE p.user_id = %s
        ORDER BY p.created_at DESC, p.id DESC
    """,
        (user_id,),
    )
    return fetch_all(cur)


def user_playlist(cur, user_id: int, playlist_id: int) -> dict | None:
    """The playlist with its tracks in order; None unless it is the person's."""
    cur.execute(
        """
        SELECT id, kind, name, parameters, spotify_id, legacy_key, created_at
        FROM playlists WHERE id = %s AND user_id = %s
    """,
        (playlist_id, user_id),
    )
    playlist = fetch_one(cur)
    if playlist is None:
        return None
    cur.execute(
        f"""
        SELECT pt.position, {TRACK_COLUMNS}
        FROM playlist_tracks pt JOIN tracks t ON t.spotify_id = pt.track_id
        WHERE pt.playlist_id = %s ORDER BY pt.position, t.spotify_id
    """,
        (playlist_id,),
    )
    playlist["tracks"] = fetch_all(cur)
    return playlist
