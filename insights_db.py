"""SQL for the dashboard's library and track-profile aggregates: catalogue growth, era,
explicit share, durations, energy and mood. Connection-first (a cursor), never commits.

"Your tracks" are the tracks in your library plus every track from your top-track
snapshots; ``since`` (a date, or None for all history) keeps those saved or seen in a
snapshot from that day on. Every number is counted by PostgreSQL; Python only receives
the finished rows.
"""

from __future__ import annotations

from datetime import date

from database import SINCE, fetch_all, fetch_single

# UNION (not UNION ALL): a track both saved and in a snapshot counts once. The tracks are
# then fetched by primary key with ``= ANY(ARRAY(...))``: the planner cannot know that a
# year of snapshots repeats the same few hundred tracks (it expects thousands) and with a
# plain join it would rather read the whole catalogue.
MY_TRACKS = f"""
mine AS (
    SELECT track_id FROM saved_tracks
    WHERE user_id = %(user_id)s AND added_at >= {SINCE}::timestamp AT TIME ZONE 'UTC'
    UNION
    SELECT track_id FROM snapshots
    WHERE user_id = %(user_id)s AND snapshot_date >= {SINCE}
),
my_tracks AS (
    SELECT * FROM tracks WHERE spotify_id = ANY (ARRAY(SELECT track_id FROM mine))
)"""

# Months without additions are filled in, so the growth line has no holes; the running
# total starts at the first saved track even when the chart starts later.
LIBRARY_GROWTH = f"""
WITH monthly AS (
    SELECT date_trunc('month', added_at AT TIME ZONE 'UTC')::date AS month, count(*) AS added
    FROM saved_tracks WHERE user_id = %(user_id)s
    GROUP BY 1
),
months AS (
    SELECT generate_series(min(month), max(month), interval '1 month')::date AS month FROM monthly
),
growth AS (
    SELECT m.month, coalesce(monthly.added, 0) AS added,
           (sum(coalesce(monthly.added, 0)) OVER (ORDER BY m.month))::bigint AS library_size
    FROM months m LEFT JOIN monthly USING (month)
)
SELECT month, added, library_size FROM growth
WHERE month >= date_trunc('month', {SINCE})::date
ORDER BY month
"""

# Every precision ('year', 'month', 'day') knows the year; NULL release dates (Spotify's
# '0000' and the like) come back as one row with year NULL.
RELEASE_YEARS = f"""
WITH {MY_TRACKS},
by_year AS (
    SELECT extract(year FROM release_date)::integer AS year, count(*) AS tracks,
           count(*) FILTER (WHERE release_date_precision = 'year') AS year_precision
    FROM my_tracks GROUP BY 1
)
SELECT y.year, coalesce(b.tracks, 0) AS tracks, coalesce(b.year_precision, 0) AS year_precision
FROM generate_series((SELECT min(year) FROM by_year), (SELECT max(year) FROM by_year)) AS y(year)
LEFT JOIN by_year b USING (year)
UNION ALL
SELECT year, tracks, year_precision FROM by_year WHERE year IS NULL
ORDER BY year NULLS LAST
"""

RELEASE_DECADES = f"""
WITH {MY_TRACKS},
by_decade AS (
    SELECT (extract(year FROM release_date)::integer / 10) * 10 AS decade, count(*) AS tracks
    FROM my_tracks WHERE release_date IS NOT NULL GROUP BY 1
)
SELECT d.decade, coalesce(b.tracks, 0) AS tracks
FROM generate_series((SELECT min(decade) FROM by_decade), (SELECT max(decade) FROM by_decade), 10) AS d(decade)
LEFT JOIN by_decade b USING (decade)
ORDER BY d.decade
"""

# Containment on the provider payload (the book's query); a legacy track without the
# key counts as unknown rather than clean.
EXPLICIT_SHARE = f"""
WITH {MY_TRACKS}
SELECT count(*) AS tracks,
       count(*) FILTER (WHERE raw_json @> '{{"explicit": true}}') AS explicit,
       count(*) FILTER (WHERE raw_json @> '{{"explicit": false}}') AS clean,
       count(*) FILTER (WHERE raw_json @> '{{"explicit": true}}' OR raw_json @> '{{"explicit": false}}') AS known,
       count(*) FILTER (WHERE NOT raw_json @> '{{"explicit": true}}'
                          AND NOT raw_json @> '{{"explicit": false}}') AS unknown,
       round(100.0 * count(*) FILTER (WHERE raw_json @> '{{"explicit": true}}')
             / nullif(count(*) FILTER (WHERE raw_json @> '{{"explicit": true}}'
                                          OR raw_json @> '{{"explicit": false}}'), 0), 1)::float8 AS explicit_pct
FROM my_tracks
"""

# Whole minutes; ten minutes and longer share the last bucket.
DURATIONS = f"""
WITH {MY_TRACKS},
by_minute AS (
    SELECT least(duration_ms / 60000, 10) AS minute, count(*) AS tracks
    FROM my_tracks WHERE duration_ms IS NOT NULL GROUP BY 1
),
median AS (
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS median_ms
    FROM my_tracks WHERE duration_ms IS NOT NULL
)
SELECT m.minute, coalesce(b.tracks, 0) AS tracks, round(median.median_ms)::integer AS median_ms
FROM generate_series((SELECT min(minute) FROM by_minute), (SELECT max(minute) FROM by_minute)) AS m(minute)
LEFT JOIN by_minute b USING (minute)
CROSS JOIN median
ORDER BY m.minute
"""

# Audio features are optional enrichment: only numeric values count. The planner cannot
# estimate the jsonb_typeof() test (it guesses "1 row" and then re-runs the user's track
# list once per catalogue track: seconds on a big catalogue), so the user's features are
# fetched first, in a CTE of their own, and tested afterwards.
USABLE_FEATURES = (
    "jsonb_typeof(audio_features->'energy') = 'number' AND jsonb_typeof(audio_features->'valence') = 'number'"
)
FEATURES = f"""
{MY_TRACKS},
my_features AS MATERIALIZED (
    SELECT audio_features FROM my_tracks
),
features AS (
    SELECT (audio_features->>'energy')::numeric AS energy, (audio_features->>'valence')::numeric AS valence
    FROM my_features WHERE {USABLE_FEATURES}
)"""

AUDIO_FEATURE_COVERAGE = f"""
WITH {MY_TRACKS},
my_features AS MATERIALIZED (
    SELECT audio_features FROM my_tracks
)
SELECT count(*) AS tracks, count(*) FILTER (WHERE {USABLE_FEATURES}) AS with_features FROM my_features
"""

# Ten buckets of 0.1; an energy of exactly 1.0 belongs to the last one.
ENERGY = f"""
WITH {FEATURES},
by_bucket AS (
    SELECT least(greatest(width_bucket(energy, 0, 1, 10), 1), 10) AS bucket, count(*) AS tracks
    FROM features GROUP BY 1
)
SELECT b.bucket, ((b.bucket - 1) / 10.0)::float8 AS low, (b.bucket / 10.0)::float8 AS high,
       coalesce(t.tracks, 0) AS tracks
FROM generate_series(1, 10) AS b(bucket)
LEFT JOIN by_bucket t USING (bucket)
ORDER BY b.bucket
"""

# Russell's circumplex, halved at 0.5 on both axes.
MOOD_QUADRANTS = f"""
WITH {FEATURES},
quadrants (position, quadrant, high_energy, high_valence) AS (VALUES
    (1, 'Upbeat', true, true), (2, 'Intense', true, false),
    (3, 'Peaceful', false, true), (4, 'Melancholic', false, false)
)
SELECT q.quadrant, q.high_energy, q.high_valence, count(f.energy) AS tracks,
       round(100.0 * count(f.energy) / nullif((SELECT count(*) FROM features), 0), 1)::float8 AS share_pct
FROM quadrants q
LEFT JOIN features f ON (f.energy >= 0.5) = q.high_energy AND (f.valence >= 0.5) = q.high_valence
GROUP BY q.position, q.quadrant, q.high_energy, q.high_valence
ORDER BY q.position
"""


def _params(user_id: int, since: date | None) -> dict:
    return {"user_id": user_id, "since": since}


def library_growth(cur, user_id: int, since: date | None) -> list[dict]:
    """Per month from ``since``: tracks saved that month and the library's size at its end
    (counted from ``saved_tracks.added_at``; tracks since removed are not known)."""
    cur.execute(LIBRARY_GROWTH, _params(user_id, since))
    return fetch_all(cur)


def release_years(cur, user_id: int, since: date | None) -> list[dict]:
    """Your tracks per release year, gaps filled with 0, then a ``year`` None row for
    tracks without a usable release date. ``year_precision`` counts dates known only to
    the year."""
    cur.execute(RELEASE_YEARS, _params(user_id, since))
    return fetch_all(cur)


def release_decades(cur, user_id: int, since: date | None) -> list[dict]:
    cur.execute(RELEASE_DECADES, _params(user_id, since))
    return fetch_all(cur)


def explicit_share(cur, user_id: int, since: date | None) -> dict:
    """Counts of explicit, clean and unknown tracks; ``explicit_pct`` of those known."""
    cur.execute(EXPLICIT_SHARE, _params(user_id, since))
    return fetch_single(cur)


def durations(cur, user_id: int, since: date | None) -> list[dict]:
    """Your tracks per whole minute of length (10 = ten minutes or more), each row also
    carrying the median length."""
    cur.execute(DURATIONS, _params(user_id, since))
    return fetch_all(cur)


def audio_feature_coverage(cur, user_id: int, since: date | None) -> dict:
    """How many of your tracks have usable energy and valence."""
    cur.execute(AUDIO_FEATURE_COVERAGE, _params(user_id, since))
    return fetch_single(cur)


def energy_distribution(cur, user_id: int, since: date | None) -> list[dict]:
    cur.execute(ENERGY, _params(user_id, since))
    return fetch_all(cur)


def mood_quadrants(cur, user_id: int, since: date | None) -> list[dict]:
    """Energy × valence quadrants, always four rows in a fixed order."""
    cur.execute(MOOD_QUADRANTS, _params(user_id, since))
    return fetch_all(cur)
