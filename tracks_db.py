"""SQL for tracks and artists. Connection-first (a cursor), never commits.

Spotify's objects go to PostgreSQL whole, as a JSONB array per chunk (through
``psycopg2.extras.Json``), and SQL pulls the clean columns out of them, so the
JSON-to-columns mapping lives here, once.

Tracks and artists are shared by every user, so two users syncing at once write the same
rows. Each transaction takes their row locks in one global order (all artists, then all
tracks, each sorted by id), which makes deadlocks between concurrent syncs impossible.
"""

from __future__ import annotations

from psycopg2.extras import Json

from database import fetch_all, fetch_one, fetch_value

CHUNK = 1000  # objects per statement: big enough for few round trips, small enough to stream

UPSERT_ARTISTS = """
WITH upserted AS (
    INSERT INTO artists AS a (spotify_id, name, raw_json)
    SELECT DISTINCT ON (artist->>'id') artist->>'id', artist->>'name', artist
    FROM jsonb_array_elements(%s) AS artist
    WHERE jsonb_typeof(artist) = 'object' AND artist->>'id' IS NOT NULL AND artist->>'name' IS NOT NULL
    ORDER BY artist->>'id'
    ON CONFLICT (spotify_id) DO UPDATE
        SET name = EXCLUDED.name, raw_json = a.raw_json || EXCLUDED.raw_json
        WHERE (a.name, a.raw_json) IS DISTINCT FROM (EXCLUDED.name, a.raw_json || EXCLUDED.raw_json)
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted FROM upserted
"""

# Rows are only rewritten when the payload changed, so re-syncing unchanged data writes
# nothing and keeps updated_at.
UPSERT_TRACKS = """
WITH incoming AS (
    SELECT DISTINCT ON (track->>'id')
           track,
           track->'album'->>'release_date' AS release_text,
           track->'album'->>'release_date_precision' AS precision_text,
           parse_release_date(track->'album'->>'release_date',
                              track->'album'->>'release_date_precision') AS release_date,
           CASE jsonb_typeof(track->'artists') WHEN 'array' THEN track->'artists' ELSE '[]' END AS artists
    FROM jsonb_array_elements(%s) AS track
    WHERE jsonb_typeof(track) = 'object' AND track->>'id' IS NOT NULL
    ORDER BY track->>'id'
),
upserted AS (
    INSERT INTO tracks AS t (spotify_id, name, artist_name, primary_artist_id, album_name, duration_ms,
                             release_date, release_date_precision, explicit, popularity, spotify_url, raw_json)
    SELECT track->>'id',
           coalesce(track->>'name', ''),
           (SELECT string_agg(artist->>'name', ', ' ORDER BY position)
              FROM jsonb_array_elements(artists) WITH ORDINALITY AS x(artist, position)),
           (SELECT spotify_id FROM artists WHERE spotify_id = incoming.artists->0->>'id'),
           track->'album'->>'name',
           (track->>'duration_ms')::integer,
           release_date,
           CASE WHEN release_date IS NOT NULL THEN release_date_precision(release_text, precision_text) END,
           (track->>'explicit')::boolean,
           (track->>'popularity')::smallint,
           track->'external_urls'->>'spotify',
           track
    FROM incoming
    ORDER BY track->>'id'
    ON CONFLICT (spotify_id) DO UPDATE SET
        name = EXCLUDED.name, artist_name = EXCLUDED.artist_name,
        primary_artist_id = EXCLUDED.primary_artist_id, album_name = EXCLUDED.album_name,
        duration_ms = EXCLUDED.duration_ms, release_date = EXCLUDED.release_date,
        release_date_precision = EXCLUDED.release_date_precision, explicit = EXCLUDED.explicit,
        popularity = EXCLUDED.popularity, spotify_url = EXCLUDED.spotify_url, raw_json = EXCLUDED.raw_json
        WHERE t.raw_json IS DISTINCT FROM EXCLUDED.raw_json
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted FROM upserted
"""


def cover_url(track: str, width: int) -> str:
    """SQL for the URL of the album cover of ``track`` (a tracks alias) closest to ``width``
    px wide, or NULL: images may be missing, not a list, or not URLs (a legacy payload).
    ``width`` is the code's own number, never input."""
    return f"""(SELECT image->>'url'
      FROM jsonb_array_elements(CASE jsonb_typeof({track}.raw_json->'album'->'images')
                                WHEN 'array' THEN {track}.raw_json->'album'->'images' ELSE '[]' END) AS image
     WHERE jsonb_typeof(image) = 'object' AND image->>'url' LIKE 'http%%'
     ORDER BY abs(coalesce(CASE WHEN image->>'width' ~ '^\\d+$' THEN (image->>'width')::int END, 300) - {int(width)})
     LIMIT 1)"""


def credited_artists(track: str) -> str:
    """SQL for the track's credited artists as a JSON array of {id, name} in credit order;
    a track an export only named (no JSON yet) is credited to its artist_name, without an id."""
    return f"""(CASE WHEN jsonb_typeof({track}.raw_json->'artists') = 'array'
                     THEN (SELECT coalesce(jsonb_agg(jsonb_build_object('id', a->>'id', 'name', a->>'name') ORDER BY n),
                                           '[]')
                             FROM jsonb_array_elements({track}.raw_json->'artists') WITH ORDINALITY AS x(a, n)
                            WHERE jsonb_typeof(a) = 'object' AND a->>'name' IS NOT NULL)
                     WHEN {track}.artist_name IS NOT NULL
                     THEN jsonb_build_array(jsonb_build_object('id', NULL, 'name', {track}.artist_name))
                     ELSE '[]' END)"""


def chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def upsert_catalogue(cur, track_objects) -> dict:
    """Upsert Spotify track objects and their artists; returns how many were new.

    Objects without an id (local files, withdrawn tracks) are skipped by the caller's
    count, not here. Sorted, de-duplicated, chunked: see the module docstring.
    """
    tracks = {t["id"]: t for t in track_objects if isinstance(t, dict) and isinstance(t.get("id"), str)}
    artists = {
        a["id"]: a
        for t in tracks.values()
        for a in (t.get("artists") or [])
        if isinstance(a, dict) and isinstance(a.get("id"), str)
    }
    new = {"artists": 0, "tracks": 0}
    for chunk in chunks([artists[k] for k in sorted(artists)]):
        cur.execute(UPSERT_ARTISTS, (Json(chunk),))
        new["artists"] += cur.fetchone()[0]
    for chunk in chunks([tracks[k] for k in sorted(tracks)]):
        cur.execute(UPSERT_TRACKS, (Json(chunk),))
        new["tracks"] += cur.fetchone()[0]
    return new


def store_audio_features(cur, features) -> int:
    """Attach audio features (a Json list of Spotify audio-feature objects) to known tracks."""
    cur.execute(
        """
        UPDATE tracks t SET audio_features = f.value
        FROM jsonb_array_elements(%s) AS f
        WHERE jsonb_typeof(f.value) = 'object' AND t.spotify_id = f.value->>'id'
          AND t.audio_features IS DISTINCT FROM f.value
    """,
        (features,),
    )
    return cur.rowcount


def tracks_without_audio_features(cur, track_ids: list) -> list:
    cur.execute("SELECT spotify_id FROM tracks WHERE spotify_id = ANY(%s) AND audio_features IS NULL", (track_ids,))
    return [row[0] for row in cur.fetchall()]


def get_track(cur, track_id: str) -> dict | None:
    cur.execute(
        """
        SELECT spotify_id, name, artist_name, album_name, duration_ms, release_date, release_date_precision,
               explicit, spotify_url, raw_json->'external_ids'->>'isrc' AS isrc
        FROM tracks WHERE spotify_id = %s
    """,
        (track_id,),
    )
    return fetch_one(cur)


# -- one person's view of a track (the track page) ------------------------------------
# A track is "theirs" when it is in any of their snapshots, their library or their plays;
# anything else is answered as if it did not exist.
USER_TRACK_IDS = """
    SELECT track_id FROM saved_tracks WHERE user_id = %(user_id)s
    UNION ALL SELECT track_id FROM snapshots WHERE user_id = %(user_id)s
    UNION ALL SELECT track_id FROM plays WHERE user_id = %(user_id)s
"""


def user_track(cur, user_id: int, track_id: str) -> dict | None:
    """The track's clean columns, the facts only raw_json holds, and what the person did
    with it; None unless the track is in their own data."""
    cur.execute(
        f"""
        SELECT t.spotify_id, t.name, t.artist_name, t.primary_artist_id, t.album_name, t.duration_ms,
               t.release_date, t.release_date_precision, t.explicit, t.popularity, t.spotify_url,
               t.raw_json->'album'->>'release_date' AS release_date_text,
               t.raw_json->'external_ids'->>'isrc' AS isrc,
               t.raw_json->'album'->>'name' AS raw_album_name,
               t.raw_json->'album'->>'album_type' AS album_type,
               t.raw_json->'album'->'external_urls'->>'spotify' AS album_url,
               {cover_url("t", 300)} AS album_image_url,
               t.raw_json->'album'->>'id' AS album_id,
               {credited_artists("t")} AS artists,
               t.audio_features IS NOT NULL AS has_audio_features,
               (t.audio_features->>'energy')::float AS energy,
               (t.audio_features->>'valence')::float AS valence,
               (t.audio_features->>'danceability')::float AS danceability,
               (SELECT added_at FROM saved_tracks WHERE user_id = %(user_id)s AND track_id = t.spotify_id) AS saved_at,
               (SELECT count(*) FROM plays WHERE user_id = %(user_id)s AND track_id = t.spotify_id) AS plays,
               (SELECT min(snapshot_date) FROM snapshots
                 WHERE user_id = %(user_id)s AND track_id = t.spotify_id) AS first_ranked_on,
               (SELECT min(rank) FROM snapshots
                 WHERE user_id = %(user_id)s AND track_id = t.spotify_id) AS best_rank
        FROM tracks t
        WHERE t.spotify_id = %(track_id)s AND t.spotify_id IN ({USER_TRACK_IDS})
    """,
        {"user_id": user_id, "track_id": track_id},
    )
    return fetch_one(cur)


def rank_history(cur, user_id: int, track_id: str) -> list[dict]:
    """Every snapshot of the person's that ranked the track, oldest first."""
    cur.execute(
        """
        SELECT snapshot_date, time_range, rank FROM snapshots
        WHERE user_id = %s AND track_id = %s
        ORDER BY snapshot_date, time_range
    """,
        (user_id, track_id),
    )
    return fetch_all(cur)


# Audio features on a common 0..1 scale (tempo divided by 250 bpm) for a plain distance.
FEATURE_DISTANCE = """
    sqrt(power(coalesce((o.audio_features->>'energy')::float, 0.5)
               - coalesce((me.audio_features->>'energy')::float, 0.5), 2)
       + power(coalesce((o.audio_features->>'valence')::float, 0.5)
               - coalesce((me.audio_features->>'valence')::float, 0.5), 2)
       + power(coalesce((o.audio_features->>'danceability')::float, 0.5)
               - coalesce((me.audio_features->>'danceability')::float, 0.5), 2)
       + power(coalesce((o.audio_features->>'acousticness')::float, 0.5)
               - coalesce((me.audio_features->>'acousticness')::float, 0.5), 2)
       + power(least(coalesce((o.audio_features->>'tempo')::float, 120), 250) / 250
               - least(coalesce((me.audio_features->>'tempo')::float, 120), 250) / 250, 2))
"""


def similar_tracks(cur, user_id: int, track_id: str, limit: int = 8) -> dict:
    """Tracks of the person's that sound closest (audio features), or, without features,
    the same artist first, then the same era (release year within 3) closest in time.

    Returns {"method": "audio_features" | "artist_and_era", "rows": [...]}.
    """
    params = {"user_id": user_id, "track_id": track_id, "limit": limit}
    cur.execute(
        f"""
        SELECT o.spotify_id, o.name, o.artist_name, o.album_name, o.release_date, {cover_url("o", 64)} AS cover_url,
               {FEATURE_DISTANCE} AS distance
        FROM tracks me JOIN tracks o ON o.spotify_id <> me.spotify_id AND o.audio_features IS NOT NULL
        WHERE me.spotify_id = %(track_id)s AND me.audio_features IS NOT NULL
          AND o.spotify_id IN ({USER_TRACK_IDS})
        ORDER BY distance, o.name, o.spotify_id
        LIMIT %(limit)s
    """,
        params,
    )
    rows = fetch_all(cur)
    if rows:
        return {"method": "audio_features", "rows": rows}
    cur.execute(
        f"""
        SELECT o.spotify_id, o.name, o.artist_name, o.album_name, o.release_date, {cover_url("o", 64)} AS cover_url,
               (o.primary_artist_id = me.primary_artist_id OR o.artist_name = me.artist_name) AS same_artist
        FROM tracks me JOIN tracks o ON o.spotify_id <> me.spotify_id
        WHERE me.spotify_id = %(track_id)s
          AND o.spotify_id IN ({USER_TRACK_IDS})
          AND (o.primary_artist_id = me.primary_artist_id OR o.artist_name = me.artist_name
               OR abs(extract(year FROM o.release_date) - extract(year FROM me.release_date)) <= 3)
        ORDER BY (o.primary_artist_id = me.primary_artist_id OR o.artist_name = me.artist_name) DESC NULLS LAST,
                 abs(o.release_date - me.release_date) NULLS LAST, o.name, o.spotify_id
        LIMIT %(limit)s
    """,
        params,
    )
    return {"method": "artist_and_era", "rows": fetch_all(cur)}


# -- enrichment: tracks an export named, fetched whole later (history/enrichment.py) -----
def tracks_needing_enrichment(cur, after: str = "", limit: int = 50) -> list[str]:
    """Ids of tracks stored with an export's names only, in id order from ``after``."""
    cur.execute(
        """
        SELECT spotify_id FROM tracks WHERE needs_enrichment AND spotify_id > %s ORDER BY spotify_id LIMIT %s
    """,
        (after, limit),
    )
    return [row[0] for row in cur.fetchall()]


def count_needing_enrichment(cur) -> int:
    cur.execute("SELECT count(*) FROM tracks WHERE needs_enrichment")
    return fetch_value(cur)


def mark_enriched(cur, track_ids: list) -> int:
    """The tracks are whole now (or Spotify has none to give): stop asking for them."""
    cur.execute(
        "UPDATE tracks SET needs_enrichment = false WHERE spotify_id = ANY(%s) AND needs_enrichment", (track_ids,)
    )
    return cur.rowcount
