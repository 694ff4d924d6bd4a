"""SQL for what a person really played: listening minutes, the hour × weekday heatmap, top
tracks / artists / albums, skip rate, discoveries, streaks, "on this day" and the year in
review, all counted from ``plays``. Connection-first (a cursor), never commits.

Every function is a pure computation of (user, parameters): the same arguments give the
same rows, so a cache keyed by the person's data version can keep them.

Shared rules:

- A period is ``first`` to ``last``, two local dates, both included (None: open ended),
  in the person's time zone ``tz`` (an IANA name already checked by ``valid_time_zone``).
  A play belongs to the moment its playback ended (``played_at``).
- A play's length is ``ms_played``; plays captured from recently played have none, and
  count the track's whole ``duration_ms`` instead (0 when even that is unknown).
- A track is its Spotify id; a play with no id (a local file) is its names. An artist is
  the track's primary artist's name, else the name the play or the unenriched track gives.
- A play is skipped when the export says ``skipped``; when it does not say (older
  exports), when it ended on the forward button (``reason_end = 'fwdbtn'``); plays that
  know neither (captured ones) are left out of the skip rate.
- Ties are broken by name in the "C" collation, so the order is the same on every server.
"""

from __future__ import annotations

from datetime import date

from database import fetch_all, fetch_one

GRAINS = ("day", "week", "month")
ORDERS = {"plays": "plays DESC, ms DESC", "minutes": "ms DESC, plays DESC"}

# Local midnight of the first day, and of the day after the last, as instants.
START = "coalesce(%(first)s::date::timestamp AT TIME ZONE %(tz)s, '-infinity'::timestamptz)"
END = "coalesce((%(last)s::date + 1)::timestamp AT TIME ZONE %(tz)s, 'infinity'::timestamptz)"

# COALESCE evaluates lazily: the track's length is looked up only for plays without
# their own ms_played (the few captured ones), not once per play.
PLAY_MS = "coalesce(p.ms_played, (SELECT t.duration_ms FROM tracks t WHERE t.spotify_id = p.track_id), 0)"
SKIPPED = "coalesce(p.skipped, CASE WHEN p.reason_end IS NOT NULL THEN p.reason_end = 'fwdbtn' END)"


def my_plays(start: str = START, end: str = END) -> str:
    """The person's plays ending in [start, end), with their length and skip flag."""
    return f"""
my_plays AS (
    SELECT p.played_at, p.track_id, p.track_name, p.artist_name, p.album_name,
           {PLAY_MS} AS ms, {SKIPPED} AS skipped
    FROM plays p
    WHERE p.user_id = %(user_id)s AND p.played_at >= {start} AND p.played_at < {end}
)"""


MY_PLAYS = my_plays()
EVER = "'-infinity'::timestamptz"

# Plays grouped by track first (a few thousand rows for a year of listening), and only
# then joined to the catalogue for names: one catalogue lookup per track, not per play.
PER_TRACK = """
per_track AS (
    SELECT track_id,
           CASE WHEN track_id IS NULL THEN track_name END AS local_track,
           CASE WHEN track_id IS NULL THEN artist_name END AS local_artist,
           CASE WHEN track_id IS NULL THEN album_name END AS local_album,
           count(*) AS plays, sum(ms) AS ms,
           count(*) FILTER (WHERE skipped) AS skips, min(played_at) AS first_at
    FROM my_plays GROUP BY 1, 2, 3, 4
),
named AS (
    SELECT pt.track_id, pt.plays, pt.ms, pt.skips, pt.first_at,
           coalesce(t.name, pt.local_track) AS track_name,
           coalesce(a.name, t.artist_name, pt.local_artist) AS artist_name,
           coalesce(t.album_name, pt.local_album) AS album_name
    FROM per_track pt
    LEFT JOIN tracks t ON t.spotify_id = pt.track_id
    LEFT JOIN artists a ON a.spotify_id = t.primary_artist_id
)"""

MINUTES = "round(%s / 60000.0, 1)::float8"


def _params(user_id: int, tz: str, first: date | None = None, last: date | None = None, **more) -> dict:
    return {"user_id": user_id, "tz": tz, "first": first, "last": last, **more}


# -- the person's time zone ----------------------------------------------------------
def valid_time_zone(cur, name: str) -> str | None:
    """The IANA name as PostgreSQL knows it, or None when it knows no such zone."""
    cur.execute("SELECT name FROM pg_timezone_names WHERE name = %s", (name,))
    row = cur.fetchone()
    return row[0] if row else None


def set_time_zone(cur, user_id: int, tz: str) -> None:
    cur.execute("UPDATE users SET time_zone = %s WHERE id = %s", (tz, user_id))


def time_zone(cur, user_id: int) -> str:
    """The person's stored time zone; UTC until their browser has told us theirs."""
    cur.execute("SELECT coalesce(time_zone, 'UTC') FROM users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    return row[0] if row else "UTC"


# -- what there is -------------------------------------------------------------------
def play_span(cur, user_id: int, tz: str) -> dict:
    """How many plays, and the local days of the first and the last (None without plays).
    Reads the two ends of the primary key and a count of it."""
    cur.execute(
        """
        SELECT count(*) AS plays,
               (min(played_at) AT TIME ZONE %(tz)s)::date AS first_day,
               (max(played_at) AT TIME ZONE %(tz)s)::date AS last_day
        FROM plays WHERE user_id = %(user_id)s
    """,
        _params(user_id, tz),
    )
    return fetch_one(cur)


def has_plays(cur, user_id: int) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM plays WHERE user_id = %s)", (user_id,))
    return cur.fetchone()[0]


# -- charts --------------------------------------------------------------------------
LISTENING_MINUTES = f"""
WITH {MY_PLAYS},
buckets AS (
    SELECT date_trunc(%(grain)s, played_at AT TIME ZONE %(tz)s)::date AS period, count(*) AS plays, sum(ms) AS ms
    FROM my_plays GROUP BY 1
),
periods AS (
    SELECT generate_series(min(period), max(period), ('1 ' || %(grain)s)::interval)::date AS period FROM buckets
)
SELECT period, coalesce(b.plays, 0) AS plays, {MINUTES % "coalesce(b.ms, 0)"} AS minutes
FROM periods LEFT JOIN buckets b USING (period)
ORDER BY period
"""


def listening_minutes(cur, user_id: int, tz: str, first: date | None, last: date | None, grain: str) -> list[dict]:
    """Plays and minutes per local day, week (from Monday) or month, from the first to
    the last period with a play, empty periods filled with 0."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}")
    cur.execute(LISTENING_MINUTES, _params(user_id, tz, first, last, grain=grain))
    return fetch_all(cur)


HEATMAP = f"""
WITH {MY_PLAYS},
cells AS (
    SELECT extract(isodow FROM local)::int AS weekday, extract(hour FROM local)::int AS hour,
           count(*) AS plays, sum(ms) AS ms
    FROM (SELECT played_at AT TIME ZONE %(tz)s AS local, ms FROM my_plays) AS located
    GROUP BY 1, 2
)
SELECT d.weekday, h.hour, coalesce(c.plays, 0) AS plays, {MINUTES % "coalesce(c.ms, 0)"} AS minutes
FROM generate_series(1, 7) AS d(weekday)
CROSS JOIN generate_series(0, 23) AS h(hour)
LEFT JOIN cells c USING (weekday, hour)
ORDER BY d.weekday, h.hour
"""


def hour_weekday_heatmap(cur, user_id: int, tz: str, first: date | None, last: date | None) -> list[dict]:
    """168 rows, Monday (1) to Sunday (7) by hour 0-23 of the local end of each play."""
    cur.execute(HEATMAP, _params(user_id, tz, first, last))
    return fetch_all(cur)


TOP_KEYS = {
    "tracks": ("track_id, track_name, artist_name", "track_name"),
    "artists": ("artist_name", "artist_name"),
    "albums": ("album_name, artist_name", "album_name"),
}


def top_items(
    cur,
    user_id: int,
    tz: str,
    first: date | None,
    last: date | None,
    kind: str,
    by: str = "plays",
    limit: int = 10,
) -> list[dict]:
    """The period's top ``kind`` (tracks, artists or albums) by ``by`` (plays or minutes),
    each with plays, minutes and skips. Plays with no artist or album name do not count
    for that list."""
    keys, name = TOP_KEYS[kind]
    cur.execute(
        f"""
        WITH {MY_PLAYS}, {PER_TRACK},
        grouped AS (
            SELECT {keys}, sum(plays)::bigint AS plays, sum(ms)::bigint AS ms, sum(skips)::bigint AS skips
            FROM named WHERE {name} IS NOT NULL GROUP BY {keys}
        )
        SELECT {keys}, plays, {MINUTES % "ms"} AS minutes, skips FROM grouped
        ORDER BY {ORDERS[by]}, {name} COLLATE "C", artist_name COLLATE "C" NULLS LAST
        LIMIT %(limit)s
    """,
        _params(user_id, tz, first, last, limit=limit),
    )
    return fetch_all(cur)


SKIP_RATE = f"""
WITH {MY_PLAYS}
SELECT count(*) AS plays, count(skipped) AS known, count(*) FILTER (WHERE skipped) AS skipped,
       round(100.0 * count(*) FILTER (WHERE skipped) / nullif(count(skipped), 0), 1)::float8 AS skip_pct
FROM my_plays
"""


def skip_rate(cur, user_id: int, tz: str, first: date | None, last: date | None) -> dict:
    """Plays, how many say whether they were skipped (``known``), how many were, and the
    share of the known ones (None when none is known)."""
    cur.execute(SKIP_RATE, _params(user_id, tz, first, last))
    return fetch_one(cur)


SKIP_RATE_BY_MONTH = f"""
WITH {MY_PLAYS}
SELECT date_trunc('month', played_at AT TIME ZONE %(tz)s)::date AS month,
       count(skipped) AS known, count(*) FILTER (WHERE skipped) AS skipped,
       round(100.0 * count(*) FILTER (WHERE skipped) / nullif(count(skipped), 0), 1)::float8 AS skip_pct
FROM my_plays GROUP BY 1 HAVING count(skipped) > 0 ORDER BY 1
"""


def skip_rate_by_month(cur, user_id: int, tz: str, first: date | None, last: date | None) -> list[dict]:
    """The skip rate of each local month that has plays known to be skipped or not."""
    cur.execute(SKIP_RATE_BY_MONTH, _params(user_id, tz, first, last))
    return fetch_all(cur)


# A discovery is the first play ever of a track (or an artist), whatever the period asked
# for: the period only chooses which months are shown.
DISCOVERIES = f"""
WITH {my_plays(EVER, "'infinity'::timestamptz")}, {PER_TRACK},
artist_firsts AS (
    SELECT min(first_at) AS first_at FROM named WHERE artist_name IS NOT NULL GROUP BY artist_name
),
months AS (
    SELECT date_trunc('month', first_at AT TIME ZONE %(tz)s)::date AS month, 1 AS tracks, 0 AS artists FROM named
    UNION ALL
    SELECT date_trunc('month', first_at AT TIME ZONE %(tz)s)::date, 0, 1 FROM artist_firsts
),
counted AS (
    SELECT month, sum(tracks)::int AS new_tracks, sum(artists)::int AS new_artists FROM months GROUP BY month
),
span AS (
    SELECT greatest(date_trunc('month', %(first)s::date)::date, min(month)) AS first_month,
           least(date_trunc('month', %(last)s::date)::date,
                 (SELECT date_trunc('month', max(played_at) AT TIME ZONE %(tz)s)::date FROM my_plays)) AS last_month
    FROM counted
),
shown AS (
    SELECT generate_series(first_month, last_month, interval '1 month')::date AS month FROM span
)
SELECT month, coalesce(c.new_tracks, 0) AS new_tracks, coalesce(c.new_artists, 0) AS new_artists
FROM shown LEFT JOIN counted c USING (month)
ORDER BY month
"""


def discoveries(cur, user_id: int, tz: str, first: date | None, last: date | None) -> list[dict]:
    """Per local month of the period: tracks and artists played for the first time ever."""
    cur.execute(DISCOVERIES, _params(user_id, tz, first, last))
    return fetch_all(cur)


# Gaps and islands: consecutive days minus their row number are constant along a streak.
LONGEST_STREAK = f"""
WITH {MY_PLAYS},
days AS (SELECT DISTINCT (played_at AT TIME ZONE %(tz)s)::date AS day FROM my_plays),
islands AS (SELECT day, day - (row_number() OVER (ORDER BY day))::int AS island FROM days)
SELECT count(*)::int AS days, min(day) AS first_day, max(day) AS last_day
FROM islands GROUP BY island
ORDER BY count(*) DESC, min(day) DESC
LIMIT 1
"""


def longest_streak(cur, user_id: int, tz: str, first: date | None, last: date | None) -> dict | None:
    """The longest run of consecutive local days with at least one play (the latest of
    equally long ones): days, first_day, last_day; None without plays."""
    cur.execute(LONGEST_STREAK, _params(user_id, tz, first, last))
    return fetch_one(cur)


ON_THIS_DAY = f"""
WITH asked AS (
    SELECT years_ago, (%(today)s::date - make_interval(years => years_ago))::date AS day
    FROM unnest(%(years)s::int[]) AS y(years_ago)
),
day_plays AS (
    SELECT a.years_ago, p.track_id, p.track_name, p.artist_name, {PLAY_MS} AS ms, p.played_at
    FROM asked a
    JOIN plays p ON p.user_id = %(user_id)s
                AND p.played_at >= a.day::timestamp AT TIME ZONE %(tz)s
                AND p.played_at < (a.day + 1)::timestamp AT TIME ZONE %(tz)s
),
per_track AS (
    SELECT d.years_ago, coalesce(t.name, d.track_name) AS track_name,
           coalesce(ar.name, t.artist_name, d.artist_name) AS artist_name,
           count(*) AS plays, sum(d.ms) AS ms, min(d.played_at) AS first_at
    FROM day_plays d
    LEFT JOIN tracks t ON t.spotify_id = d.track_id
    LEFT JOIN artists ar ON ar.spotify_id = t.primary_artist_id
    GROUP BY d.years_ago, d.track_id, 2, 3
)
SELECT a.years_ago, a.day, coalesce(sum(pt.plays), 0)::int AS plays, {MINUTES % "coalesce(sum(pt.ms), 0)"} AS minutes,
       coalesce(json_agg(json_build_object('track_name', pt.track_name, 'artist_name', pt.artist_name,
                                           'plays', pt.plays)
                         ORDER BY pt.plays DESC, pt.ms DESC, pt.first_at) FILTER (WHERE pt.plays IS NOT NULL),
                '[]') AS tracks
FROM asked a LEFT JOIN per_track pt USING (years_ago)
GROUP BY a.years_ago, a.day
ORDER BY a.years_ago
"""


def on_this_day(cur, user_id: int, tz: str, today: date, years=(1, 5, 10)) -> list[dict]:
    """For each of ``years`` ago: the local day (29 February falls back to the 28th),
    its plays and minutes, and the tracks played that day, most played first."""
    cur.execute(ON_THIS_DAY, _params(user_id, tz, today=today, years=list(years)))
    return fetch_all(cur)


TOTALS = f"""
WITH {MY_PLAYS}, {PER_TRACK}
SELECT coalesce(sum(plays), 0)::bigint AS plays, {MINUTES % "coalesce(sum(ms), 0)"} AS minutes,
       count(*) AS tracks, count(DISTINCT artist_name) AS artists,
       (SELECT count(DISTINCT (played_at AT TIME ZONE %(tz)s)::date) FROM my_plays) AS days
FROM named
"""


def totals(cur, user_id: int, tz: str, first: date | None, last: date | None) -> dict:
    """Plays, minutes, distinct tracks and artists, and days with a play, in the period."""
    cur.execute(TOTALS, _params(user_id, tz, first, last))
    return fetch_one(cur)


# First plays ever: every play up to the period's end counts for "first", so a track
# heard before the period is no first play in it.
FIRST_PLAYS = f"""
WITH {my_plays(EVER, END)}, {PER_TRACK}
SELECT track_id, track_name, artist_name, first_at, plays
FROM named
WHERE first_at >= {START}
ORDER BY first_at, track_name COLLATE "C"
LIMIT %(limit)s
"""


def first_plays(cur, user_id: int, tz: str, first: date | None, last: date | None, limit: int = 5) -> list[dict]:
    """The first ``limit`` tracks heard for the first time ever in the period, in the
    order they were first played, with how often they were played up to its end."""
    cur.execute(FIRST_PLAYS, _params(user_id, tz, first, last, limit=limit))
    return fetch_all(cur)


MOST_SKIPPED = f"""
WITH {MY_PLAYS}, {PER_TRACK}
SELECT track_id, track_name, artist_name, skips, plays
FROM named WHERE skips > 0
ORDER BY skips DESC, plays DESC, track_name COLLATE "C", artist_name COLLATE "C" NULLS LAST
LIMIT %(limit)s
"""


def most_skipped(cur, user_id: int, tz: str, first: date | None, last: date | None, limit: int = 5) -> list[dict]:
    """The tracks skipped most often in the period, with how often they were played."""
    cur.execute(MOST_SKIPPED, _params(user_id, tz, first, last, limit=limit))
    return fetch_all(cur)
