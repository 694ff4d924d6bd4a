"""SQL for what a person really played: listening minutes, the hour × weekday heatmap, top
tracks / artists / albums, skip rate, discoveries, streaks, "on this day" and the year in
review, all counted from ``plays``. Connection-first (a cursor), never commits.

Every chart function is a pure computation of (user, parameters): the same arguments on
the same plays give the same rows, so a cache keyed by the person's data version can keep
them. Call ``refresh_rollups`` first (the views do, once per request).

Shared rules:

- Days, hours and months are the person's own, in their time zone (``users.time_zone``,
  UTC until their browser told us). A period is ``first`` to ``last``, two local dates,
  both included (None: open ended). A play belongs to the moment its playback ended.
- A play's length is ``ms_played``; plays captured from recently played have none, and
  count the track's whole ``duration_ms`` instead (0 when even that is unknown).
- A track is its Spotify id; a play with no id (a local file) is its names. An artist is
  the track's primary artist's name, else the name the unenriched track or the play gives.
- A play is skipped when the export says ``skipped``; when it does not say (older
  exports), when it ended on the forward button (``reason_end = 'fwdbtn'``); plays that
  know neither (captured ones) are left out of the skip rate.
- Ties are broken by name in the "C" collation, so the order is the same on every server.

Speed: the charts read rollups (schema_postgres.sql, versions 8 and 14) instead of every
play: ``play_hours`` (per local day and hour), ``play_month_tracks`` and ``play_year_tracks``
(per local month / year and track, with the names the track is charted by) and
``play_tracks`` (per track, the whole history). A period is cut into whole years, whole
months and the plays of its ragged ends (``period_parts``); a part that covers most of a
month (or a year) is the month (year) less the rest of it, so no period reads more than
half a month of plays or half a year of months. Every chart can also be computed from
``plays`` alone (``from_plays=True``): the tests compare the two.
"""

from __future__ import annotations

from datetime import date, timedelta

import users_db
from database import fetch_all, fetch_one, fetch_single, fetch_value

GRAINS = ("day", "week", "month")
ORDERS = {"plays": "plays DESC, ms DESC", "minutes": "ms DESC, plays DESC"}
# pg_advisory_xact_lock(namespace, user id): one rollup refresh per person at a time
ROLLUP_LOCK = 8_000_008

MINUTES = "round(%s / 60000.0, 1)::float8"
TRACK_KEYS = "track_id, local_track, local_artist, local_album"
# COALESCE evaluates lazily: the track's length is looked up only for plays without
# their own ms_played (the few captured ones), not once per play.
PLAY_MS = "coalesce(p.ms_played, (SELECT t.duration_ms FROM tracks t WHERE t.spotify_id = p.track_id), 0)"
SKIPPED = "coalesce(p.skipped, CASE WHEN p.reason_end IS NOT NULL THEN p.reason_end = 'fwdbtn' END)"


def local_midnight(day_param: str, default: str) -> str:
    """The instant a local date starts, as SQL (``default`` when the date is NULL)."""
    return f"coalesce(%({day_param})s::date::timestamp AT TIME ZONE %(tz)s, '{default}'::timestamptz)"


START = local_midnight("first", "-infinity")
END = local_midnight("after_last", "infinity")
IN_PERIOD = "day >= coalesce(%(first)s::date, '-infinity'::date) AND day <= coalesce(%(last)s::date, 'infinity'::date)"


# -- the person's time zone ----------------------------------------------------------
def valid_time_zone(cur, name: str) -> str | None:
    """The IANA name as PostgreSQL knows it, or None when it knows no such zone."""
    cur.execute("SELECT name FROM pg_timezone_names WHERE name = %s", (name,))
    row = cur.fetchone()
    return row[0] if row else None


def stored_time_zone(cur, user_id: int) -> str | None:
    """The time zone the person's browser told us, None until it has."""
    cur.execute("SELECT time_zone FROM users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    return row[0] if row else None


def time_zone(cur, user_id: int) -> str:
    """The zone their days and hours are counted in: the stored one, else UTC."""
    return stored_time_zone(cur, user_id) or "UTC"


def local_today(cur, user_id: int) -> date:
    """Today where the person is (their stored time zone)."""
    cur.execute(
        "SELECT (now() AT TIME ZONE coalesce(time_zone, 'UTC'))::date AS today FROM users WHERE id = %s", (user_id,)
    )
    return fetch_value(cur)


def set_time_zone(cur, user_id: int, tz: str) -> bool:
    """Store a (checked) time zone; when it changed, every rollup of the person is rebuilt
    on the next read. Returns whether it changed."""
    cur.execute("UPDATE users SET time_zone = %s WHERE id = %s AND time_zone IS DISTINCT FROM %s", (tz, user_id, tz))
    if not cur.rowcount:
        return False
    cur.execute("INSERT INTO play_rollup_dirty (user_id, month) VALUES (%s, NULL)", (user_id,))
    users_db.bump_data_version(cur, user_id)  # every cached chart of theirs is in the old zone
    return True


# -- the rollups ---------------------------------------------------------------------
def _rollup_sources(months: list | None) -> str:
    """The person's plays, with length and skip flag, in the given local months (None: all)."""
    where = ""
    if months is not None:
        where = """
        JOIN unnest(%(months)s::date[]) AS m(month)
          ON p.played_at >= m.month::timestamp AT TIME ZONE %(tz)s
         AND p.played_at < (m.month + interval '1 month')::timestamp AT TIME ZONE %(tz)s"""
    return f"""
    SELECT p.played_at, p.played_at AT TIME ZONE %(tz)s AS local, p.track_id, p.track_name, p.artist_name,
           p.album_name, {PLAY_MS} AS ms, {SKIPPED} AS skipped
    FROM plays p {where}
    WHERE p.user_id = %(user_id)s"""


FORGET_HOURS = """
DELETE FROM play_hours WHERE user_id = %(user_id)s
  AND (%(month_days)s::date[] IS NULL OR day = ANY (%(month_days)s::date[]))
"""
FORGET_MONTH_TRACKS = """
DELETE FROM play_month_tracks WHERE user_id = %(user_id)s
  AND (%(months)s::date[] IS NULL OR month = ANY (%(months)s::date[]))
"""
BUILD_HOURS = """
INSERT INTO play_hours (user_id, day, hour, plays, ms, skipped, skip_known)
SELECT %(user_id)s, local::date, extract(hour FROM local)::smallint, count(*), sum(ms),
       count(*) FILTER (WHERE skipped), count(skipped)
FROM ({sources}) AS played
GROUP BY local::date, extract(hour FROM local)
"""
# What a track is charted by: the catalogue's track and primary artist, else the export's
# names (``local_*``, kept only for plays without a track id).
NAMES = "track_name, artist_name, album_name"
NAMING = """coalesce(t.name, g.local_track) AS track_name,
       coalesce(a.name, t.artist_name, g.local_artist) AS artist_name,
       coalesce(t.album_name, g.local_album) AS album_name
FROM ({grouped}) AS g
LEFT JOIN tracks t ON t.spotify_id = g.track_id
LEFT JOIN artists a ON a.spotify_id = t.primary_artist_id"""
BUILD_MONTH_TRACKS = f"""
INSERT INTO play_month_tracks (user_id, month, {TRACK_KEYS}, plays, ms, skips, first_at, {NAMES})
SELECT %(user_id)s, g.month, g.track_id, g.local_track, g.local_artist, g.local_album,
       g.plays, g.ms, g.skips, g.first_at,
       {
    NAMING.format(
        grouped='''
    SELECT date_trunc('month', local)::date AS month, track_id,
           CASE WHEN track_id IS NULL THEN track_name END AS local_track,
           CASE WHEN track_id IS NULL THEN artist_name END AS local_artist,
           CASE WHEN track_id IS NULL THEN album_name END AS local_album,
           count(*) AS plays, sum(ms) AS ms, count(*) FILTER (WHERE skipped) AS skips, min(played_at) AS first_at
    FROM ({sources}) AS played
    GROUP BY 1, 2, 3, 4, 5'''
    )
}
"""
# The years of the recomputed months, summed again from their months.
FORGET_YEARS = """
DELETE FROM play_year_tracks WHERE user_id = %(user_id)s
  AND (%(years)s::date[] IS NULL OR year = ANY (%(years)s::date[]))
"""
BUILD_YEARS = f"""
INSERT INTO play_year_tracks (user_id, year, {TRACK_KEYS}, {NAMES}, plays, ms, skips)
SELECT %(user_id)s, date_trunc('year', month)::date, {TRACK_KEYS},
       max(track_name), max(artist_name), max(album_name), sum(plays), sum(ms), sum(skips)
FROM play_month_tracks m
WHERE user_id = %(user_id)s
  AND (%(year_months)s::date[] IS NULL OR m.month = ANY (%(year_months)s::date[]))
GROUP BY 2, {TRACK_KEYS}
"""


# The whole-history sums (play_tracks) of the tracks the recomputed months had before or
# have now, summed again from all their months. A local file's key has NULLs: compared
# coalesced, so that the comparison is a plain equality the planner can hash (a Spotify id
# is never empty, so no track is taken for a local file).
def track_key(alias: str) -> str:
    return ", ".join(f"coalesce({alias}.{key}, '')" for key in TRACK_KEYS.split(", "))


NOTE_TOUCHED_TRACKS = f"""
INSERT INTO touched_tracks SELECT DISTINCT {TRACK_KEYS} FROM play_month_tracks
WHERE user_id = %(user_id)s AND month = ANY (%(months)s::date[])
"""
FORGET_TOUCHED_TRACKS = f"""
DELETE FROM play_tracks pt WHERE user_id = %(user_id)s
  AND ({track_key("pt")}) IN (SELECT {track_key("tt")} FROM touched_tracks tt)
"""
BUILD_TRACKS = f"""
INSERT INTO play_tracks (user_id, {TRACK_KEYS}, {NAMES}, plays, ms, skips, first_at)
SELECT %(user_id)s, {TRACK_KEYS}, max(track_name), max(artist_name), max(album_name),
       sum(plays), sum(ms), sum(skips), min(first_at)
FROM (
    SELECT * FROM play_month_tracks m
    WHERE user_id = %(user_id)s {{touched}}
) AS m
GROUP BY {TRACK_KEYS}
"""
# Only the touched tracks' month rows: a Spotify track's by its id (play_month_tracks_track_idx,
# a few hundred rows after a capture instead of every month row of the person's history), a
# local file's by its names.
ONLY_TOUCHED = f"""AND m.track_id IN (SELECT track_id FROM touched_tracks WHERE track_id IS NOT NULL)
UNION ALL
SELECT * FROM play_month_tracks m
WHERE user_id = %(user_id)s AND m.track_id IS NULL
  AND ({track_key("m")}) IN (SELECT {track_key("tt")} FROM touched_tracks tt WHERE tt.track_id IS NULL)"""
# The whole-history rollups per group of tracks, summed from play_tracks: table -> the
# columns a group is known by (its first one never NULL). A refresh notes the groups of the
# touched tracks before they are summed again (the names they had) and after (the names
# they have now), then sums just those groups again.
GROUP_ROLLUPS = {"play_artists": ("artist_name",), "play_albums": ("album_name", "artist_name")}


def _group_key(alias: str, columns: tuple) -> str:
    return ", ".join(f"coalesce({alias}.{column}, '')" for column in columns)


def _start_touched_tables(cur) -> None:
    """Empty session tables of the tracks and groups a refresh re-sums (dropped at commit)."""
    cur.execute(
        "CREATE TEMP TABLE IF NOT EXISTS touched_tracks "
        "(track_id text, local_track text, local_artist text, local_album text) ON COMMIT DROP"
    )
    for table, columns in GROUP_ROLLUPS.items():
        typed = ", ".join(f"{column} text" for column in columns)
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS touched_{table} ({typed}) ON COMMIT DROP")
        cur.execute(f"TRUNCATE touched_{table}")
    cur.execute("TRUNCATE touched_tracks")


def _note_touched_groups(cur, params: dict) -> None:
    for table, columns in GROUP_ROLLUPS.items():
        cur.execute(
            f"""INSERT INTO touched_{table} SELECT DISTINCT {", ".join(columns)} FROM play_tracks pt
            WHERE user_id = %(user_id)s AND {columns[0]} IS NOT NULL
              AND ({track_key("pt")}) IN (SELECT {track_key("tt")} FROM touched_tracks tt)""",
            params,
        )


def _sum_groups(cur, params: dict, only_touched: bool) -> None:
    """Every group's rows of the person again (or only the touched groups'), from play_tracks."""
    for table, columns in GROUP_ROLLUPS.items():
        keys = ", ".join(columns)
        only = ""
        if only_touched:
            only = f"AND ({_group_key('g', columns)}) IN (SELECT {_group_key('t', columns)} FROM touched_{table} t)"
        cur.execute(f"DELETE FROM {table} g WHERE user_id = %(user_id)s {only}", params)
        cur.execute(
            f"""INSERT INTO {table} (user_id, {keys}, plays, ms, skips, first_at)
            SELECT %(user_id)s, {keys}, sum(plays), sum(ms), sum(skips), min(first_at) FROM play_tracks g
            WHERE user_id = %(user_id)s AND {columns[0]} IS NOT NULL {only}
            GROUP BY {keys}""",
            params,
        )


def _days_of(month: date) -> list[date]:
    return [month + timedelta(days=n) for n in range(_days(month, _first_of_next_month(month)))]


def refresh_rollups(cur, user_id: int) -> bool:
    """Recompute the person's rollups for the local months whose plays (or whose tracks'
    names) changed since the last refresh (the plays_note_months_* and *_note_renamed_*
    triggers). Cheap when nothing changed: one probe. Returns whether anything was
    recomputed."""
    cur.execute("SELECT EXISTS (SELECT 1 FROM play_rollup_dirty WHERE user_id = %s) AS dirty", (user_id,))
    if not fetch_value(cur):
        return False
    cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ROLLUP_LOCK, user_id))
    # Only notes already committed are taken; a writer still running leaves its own for
    # the next refresh, so no change is ever missed.
    cur.execute("DELETE FROM play_rollup_dirty WHERE user_id = %s RETURNING month", (user_id,))
    noted = {row[0] for row in cur.fetchall()}
    if not noted:
        return False
    months = None if None in noted else sorted(noted)
    years = None if months is None else sorted({month.replace(month=1, day=1) for month in months})
    # the months' days and the years' months by name, so that forgetting a month and
    # re-summing a year read their rows by index (an "inside this year" test read every
    # month row of the person's history: 0.56 s of a 0.65 s refresh)
    params: dict = {
        "user_id": user_id,
        "months": months,
        "years": years,
        "month_days": None if months is None else [day for month in months for day in _days_of(month)],
        "year_months": None if years is None else [year.replace(month=n) for year in years for n in range(1, 13)],
        "tz": time_zone(cur, user_id),
    }
    cur.execute(FORGET_HOURS, params)
    cur.execute(BUILD_HOURS.format(sources=_rollup_sources(months)), params)
    if months is None:
        cur.execute("DELETE FROM play_tracks WHERE user_id = %(user_id)s", params)
    else:
        _start_touched_tables(cur)
        cur.execute(NOTE_TOUCHED_TRACKS, params)  # before
    cur.execute(FORGET_MONTH_TRACKS, params)
    cur.execute(BUILD_MONTH_TRACKS.format(sources=_rollup_sources(months)), params)
    if months is not None:
        cur.execute(NOTE_TOUCHED_TRACKS, params)  # after
        _note_touched_groups(cur, params)  # the names they had
        cur.execute(FORGET_TOUCHED_TRACKS, params)
    cur.execute(BUILD_TRACKS.format(touched="" if months is None else ONLY_TOUCHED), params)
    if months is not None:
        _note_touched_groups(cur, params)  # the names they have now
    _sum_groups(cur, params, only_touched=months is not None)
    cur.execute(FORGET_YEARS, params)
    cur.execute(BUILD_YEARS, params)
    return True


# -- periods -------------------------------------------------------------------------
def _first_of_next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _next_year(day: date) -> date:
    return date(day.year + 1, 1, 1)


def _days(first: date, end: date) -> int:
    return (end - first).days


def _edge(first: date, end: date) -> list[tuple]:
    """Local days [first, end) inside one month: its plays, or when they are most of the
    month, the month less the plays of its other days."""
    month, next_month = first.replace(day=1), _first_of_next_month(first)
    if 2 * _days(first, end) <= _days(month, next_month):
        return [("plays", 1, first, end)]
    parts = [("months", 1, month, next_month)]
    parts += [("plays", -1, month, first)] if first > month else []
    return parts + ([("plays", -1, end, next_month)] if end < next_month else [])


def _month_run(first: date | None, end: date | None) -> list[tuple]:
    """Whole months [first, end) inside one year (or open ended): the months, or when they
    are more than half the year, the year less its other months."""
    if first == end:
        return []
    if first is None or end is None or (first.month == 1 and end == _next_year(first)):
        return [("months", 1, first, end)]
    year, next_year = first.replace(month=1), _next_year(first)
    if 2 * (end.year * 12 + end.month - first.year * 12 - first.month) <= 12:
        return [("months", 1, first, end)]
    parts = [("years", 1, year, next_year)]
    parts += [("months", -1, year, first)] if first > year else []
    return parts + ([("months", -1, end, next_year)] if end < next_year else [])


def period_parts(first: date | None, last: date | None) -> list[tuple]:
    """The local period [first, last] as signed parts whose sums are the period's:
    (table, sign, from, to) with ``table`` "years", "months" (rollups) or "plays", ``from``
    included and ``to`` excluded, None open ended. Whole years come from the year rollup,
    the other whole months from the month rollup, the ragged ends from plays."""
    start, end = first, None if last is None else last + timedelta(days=1)
    parts: list[tuple] = []
    if start is not None and start.day != 1:
        edge_end = _first_of_next_month(start)
        edge_end = edge_end if end is None or end > edge_end else end
        parts += _edge(start, edge_end)
        start = edge_end
    if end is not None and end.day != 1 and (start is None or start < end):
        edge_start = end.replace(day=1) if start is None else max(start, end.replace(day=1))
        parts += _edge(edge_start, end)
        end = edge_start
    if start is not None and end is not None and start >= end:
        return parts
    years_start = start if start is None or start.month == 1 else _next_year(start)
    years_end = end if end is None or end.month == 1 else end.replace(month=1)
    if years_start is None and years_end is None:
        return [*parts, ("years", 1, None, None)]
    if years_start is not None and years_end is not None and years_start >= years_end:
        if start is not None and end is not None and start.year != (end - timedelta(days=1)).year:
            return parts + _month_run(start, end.replace(month=1)) + _month_run(end.replace(month=1), end)
        return parts + _month_run(start, end)
    return parts + _month_run(start, years_start) + [("years", 1, years_start, years_end)] + _month_run(years_end, end)


def _params(cur, user_id: int, first: date | None = None, last: date | None = None, **more) -> dict:
    return {
        "user_id": user_id,
        "tz": time_zone(cur, user_id),
        "first": first,
        "last": last,
        "after_last": None if last is None else last + timedelta(days=1),
        **more,
    }


ROLLUP_PART = f"""
SELECT {TRACK_KEYS}, {NAMES}, {{sign}}plays AS plays, {{sign}}ms AS ms, {{sign}}skips AS skips
FROM {{table}} WHERE user_id = %(user_id)s
  AND {{column}} >= coalesce(%({{lo}})s::date, '-infinity'::date)
  AND {{column}} < coalesce(%({{hi}})s::date, 'infinity'::date)"""
# A ragged end's plays per track, named by their month's rollup row (every play's track
# has one: the views refresh the rollups first).
PLAYS_PART = f"""
SELECT m.track_id, m.local_track, m.local_artist, m.local_album, m.track_name, m.artist_name, m.album_name,
       {{sign}}e.plays AS plays, {{sign}}e.ms AS ms, {{sign}}e.skips AS skips
FROM (
    SELECT p.track_id, CASE WHEN p.track_id IS NULL THEN p.track_name END AS local_track,
           CASE WHEN p.track_id IS NULL THEN p.artist_name END AS local_artist,
           CASE WHEN p.track_id IS NULL THEN p.album_name END AS local_album,
           count(*) AS plays, sum({PLAY_MS}) AS ms, count(*) FILTER (WHERE {SKIPPED}) AS skips
    FROM plays p
    WHERE p.user_id = %(user_id)s AND p.played_at >= %({{lo}})s::date::timestamp AT TIME ZONE %(tz)s
      AND p.played_at < %({{hi}})s::date::timestamp AT TIME ZONE %(tz)s
    GROUP BY 1, 2, 3, 4
) AS e
JOIN play_month_tracks m ON m.user_id = %(user_id)s AND m.month = date_trunc('month', %({{lo}})s::date)::date
 AND ({track_key("m")}) = ({track_key("e")})"""
PART_TABLES = {"years": ("play_year_tracks", "year"), "months": ("play_month_tracks", "month")}


def _period_tracks(parts: list[tuple], params: dict) -> str:
    """The ``per_track`` and ``named`` CTEs of a period's parts (their bounds go into
    ``params``): plays, ms and skips per track, with its names."""
    selects = []
    for n, (table, sign, lo, hi) in enumerate(parts):
        params[f"lo_{n}"], params[f"hi_{n}"] = lo, hi
        names = {"sign": "" if sign > 0 else "-", "lo": f"lo_{n}", "hi": f"hi_{n}"}
        if table == "plays":
            selects.append(PLAYS_PART.format(**names))
        else:
            selects.append(ROLLUP_PART.format(table=PART_TABLES[table][0], column=PART_TABLES[table][1], **names))
    return f"""
parts AS ({" UNION ALL ".join(selects)}
),
per_track AS (
    SELECT {TRACK_KEYS}, {NAMES}, sum(plays)::bigint AS plays, sum(ms)::bigint AS ms, sum(skips)::bigint AS skips
    FROM parts
    GROUP BY {TRACK_KEYS}, {NAMES}
    HAVING sum(plays) > 0
),
named AS (SELECT * FROM per_track)"""


# The whole history, track by track (also every track's first play ever).
# NOT MATERIALIZED: each query reads play_tracks itself, only the columns it needs (first
# plays read the first_at index alone); a materialized CTE read every whole row first.
EVER_TRACKS = f"""
per_track AS NOT MATERIALIZED (
    SELECT {TRACK_KEYS}, {NAMES}, plays::bigint, ms, skips::bigint, first_at FROM play_tracks
    WHERE user_id = %(user_id)s
),
parts AS NOT MATERIALIZED (SELECT * FROM per_track),
named AS NOT MATERIALIZED (SELECT * FROM per_track)"""
# The same from plays alone, named from the catalogue: what the rollups must agree with.
PLAYS_TRACKS = f"""
per_track AS (
    SELECT p.track_id, CASE WHEN p.track_id IS NULL THEN p.track_name END AS local_track,
           CASE WHEN p.track_id IS NULL THEN p.artist_name END AS local_artist,
           CASE WHEN p.track_id IS NULL THEN p.album_name END AS local_album,
           count(*)::bigint AS plays, sum({PLAY_MS})::bigint AS ms,
           count(*) FILTER (WHERE {SKIPPED})::bigint AS skips, min(p.played_at) AS first_at
    FROM plays p WHERE p.user_id = %(user_id)s AND p.played_at >= {{start}} AND p.played_at < {{end}}
    GROUP BY 1, 2, 3, 4
),
named AS (
    SELECT g.track_id, g.local_track, g.local_artist, g.local_album, g.plays, g.ms, g.skips, g.first_at,
           {NAMING.format(grouped="SELECT * FROM per_track")}
),
parts AS (SELECT * FROM named)"""
PLAYS_PERIOD_TRACKS = PLAYS_TRACKS.format(start=START, end=END)
PLAYS_EVER_TRACKS = PLAYS_TRACKS.format(start="'-infinity'", end="'infinity'")


def _group_ctes(ever_rollups: bool, first_at: bool) -> str:
    """``artists`` and ``albums`` (one CTE per GROUP_ROLLUPS table, named without its
    ``play_``): plays, ms and skips per group, and ``first_at`` when asked. The whole
    history's come from their rollups, a period's (or plays alone's) from ``parts``."""
    ctes = []
    for table, columns in GROUP_ROLLUPS.items():
        keys, name = ", ".join(columns), table.removeprefix("play_")
        if ever_rollups:
            select = f"""SELECT {keys}, plays::bigint AS plays, ms, skips::bigint AS skips, first_at
    FROM {table} WHERE user_id = %(user_id)s"""
        else:
            select = f"""SELECT {keys}, sum(plays)::bigint AS plays, sum(ms)::bigint AS ms, sum(skips)::bigint AS skips
           {", min(first_at) AS first_at" if first_at else ""}
    FROM parts WHERE {columns[0]} IS NOT NULL GROUP BY {keys} HAVING sum(plays) > 0"""
        ctes.append(f",\n{name} AS (\n    {select}\n)")
    return "".join(ctes)


LAST_PLAYED = "(SELECT max(month) FROM play_month_tracks WHERE user_id = %(user_id)s)"
PLAYS_LAST_PLAYED = """(
    SELECT date_trunc('month', max(p.played_at) AT TIME ZONE %(tz)s)::date FROM plays p WHERE p.user_id = %(user_id)s
)"""


def with_tracks(sql: str, params: dict, from_plays: bool = False, ever: bool = False) -> str:
    """``sql`` with its CTEs and subqueries filled in: ``{tracks}`` (``named``: plays, ms
    and skips per track with its names; ``parts``: rows whose sums per name are the same,
    for grouping without grouping by track first; ``artists`` and ``albums``: the sums per
    artist and per album) for the period in ``params`` or for the whole history (``ever``, which also
    gives every track's and artist's ``first_at``), ``{hours}`` and ``{last_played}``;
    from the rollups, or from plays alone."""
    if from_plays:
        tracks = (PLAYS_EVER_TRACKS if ever else PLAYS_PERIOD_TRACKS) + _group_ctes(False, first_at=ever)
        return sql.format(tracks=tracks, hours=PLAYS_HOURS, last_played=PLAYS_LAST_PLAYED)
    if ever or (params["first"] is None and params["last"] is None):
        tracks = EVER_TRACKS + _group_ctes(True, first_at=True)
    else:
        tracks = _period_tracks(period_parts(params["first"], params["last"]), params) + _group_ctes(False, False)
    return sql.format(tracks=tracks, hours=HOURS, last_played=LAST_PLAYED)


def _execute(cur, sql: str, params: dict, from_plays: bool, ever: bool = False) -> None:
    cur.execute(with_tracks(sql, params, from_plays, ever), params)


HOURS = f"SELECT * FROM play_hours WHERE user_id = %(user_id)s AND {IN_PERIOD}"
PLAYS_HOURS = f"""
SELECT (p.played_at AT TIME ZONE %(tz)s)::date AS day, extract(hour FROM p.played_at AT TIME ZONE %(tz)s) AS hour,
       count(*) AS plays, sum({PLAY_MS}) AS ms, count(*) FILTER (WHERE {SKIPPED}) AS skipped,
       count({SKIPPED}) AS skip_known
FROM plays p WHERE p.user_id = %(user_id)s AND p.played_at >= {START} AND p.played_at < {END}
GROUP BY 1, 2"""


# -- what there is -------------------------------------------------------------------
def play_span(cur, user_id: int) -> dict:
    """How many plays, and the local days of the first and the last (None without plays)."""
    cur.execute(
        "SELECT coalesce(sum(plays), 0)::bigint AS plays, min(day) AS first_day, max(day) AS last_day "
        "FROM play_hours WHERE user_id = %(user_id)s",
        {"user_id": user_id},
    )
    return fetch_single(cur)


def has_plays(cur, user_id: int) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM plays WHERE user_id = %s) AS any", (user_id,))
    return fetch_value(cur)


# -- charts --------------------------------------------------------------------------
LISTENING_MINUTES = f"""
WITH buckets AS (
    SELECT date_trunc(%(grain)s, day)::date AS period, sum(plays) AS plays, sum(ms) AS ms
    FROM ({{hours}}) AS h GROUP BY 1
),
periods AS (
    SELECT generate_series(min(period), max(period), ('1 ' || %(grain)s)::interval)::date AS period FROM buckets
)
SELECT period, coalesce(b.plays, 0)::bigint AS plays, {MINUTES % "coalesce(b.ms, 0)"} AS minutes
FROM periods LEFT JOIN buckets b USING (period)
ORDER BY period
"""


def listening_minutes(
    cur, user_id: int, first: date | None, last: date | None, grain: str, from_plays: bool = False
) -> list[dict]:
    """Plays and minutes per local day, week (from Monday) or month, from the first to
    the last period with a play, empty periods filled with 0."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}")
    _execute(cur, LISTENING_MINUTES, _params(cur, user_id, first, last, grain=grain), from_plays)
    return fetch_all(cur)


HEATMAP = f"""
WITH cells AS (
    SELECT extract(isodow FROM day)::int AS weekday, hour::int AS hour, sum(plays) AS plays, sum(ms) AS ms
    FROM ({{hours}}) AS h GROUP BY 1, 2
)
SELECT d.weekday, h.hour, coalesce(c.plays, 0)::bigint AS plays, {MINUTES % "coalesce(c.ms, 0)"} AS minutes
FROM generate_series(1, 7) AS d(weekday)
CROSS JOIN generate_series(0, 23) AS h(hour)
LEFT JOIN cells c USING (weekday, hour)
ORDER BY d.weekday, h.hour
"""


def hour_weekday_heatmap(
    cur, user_id: int, first: date | None, last: date | None, from_plays: bool = False
) -> list[dict]:
    """168 rows, Monday (1) to Sunday (7) by hour 0-23 of the local end of each play."""
    _execute(cur, HEATMAP, _params(cur, user_id, first, last), from_plays)
    return fetch_all(cur)


TOP_KEYS = {
    "tracks": ("track_id, track_name, artist_name", "track_name"),
    "artists": ("artist_name", "artist_name"),
    "albums": ("album_name, artist_name", "album_name"),
}


# The whole history's top tracks: a Spotify track is one play_tracks row, so its best
# ``limit`` come straight off play_tracks_top_*_idx; local files (no id) group by their
# names across albums, as every period's list does, and join them before the final cut.
EVER_TOP_TRACKS = """
    (SELECT track_id, track_name, artist_name, plays, ms, skips  -- uncast: ordered as the index is
     FROM play_tracks WHERE user_id = %(user_id)s AND track_id IS NOT NULL AND track_name IS NOT NULL
     ORDER BY {order}, track_name COLLATE "C", artist_name COLLATE "C" NULLS LAST LIMIT %(limit)s)
    UNION ALL
    SELECT NULL, track_name, artist_name, sum(plays)::bigint, sum(ms)::bigint, sum(skips)::bigint
    FROM play_tracks WHERE user_id = %(user_id)s AND track_id IS NULL AND track_name IS NOT NULL
    GROUP BY track_name, artist_name"""


def top_items(
    cur,
    user_id: int,
    first: date | None,
    last: date | None,
    kind: str,
    by: str = "plays",
    limit: int = 10,
    from_plays: bool = False,
) -> list[dict]:
    """The period's top ``kind`` (tracks, artists or albums) by ``by`` (plays or minutes),
    each with plays, minutes and skips. Plays with no artist or album name do not count
    for that list."""
    keys, name = TOP_KEYS[kind]
    grouped = f"""
            SELECT {keys}, sum(plays)::bigint AS plays, sum(ms)::bigint AS ms, sum(skips)::bigint AS skips
            FROM parts WHERE {name} IS NOT NULL GROUP BY {keys}
            HAVING sum(plays) > 0"""
    if kind in ("artists", "albums"):
        grouped = f"SELECT {keys}, plays, ms, skips FROM {kind}"  # with_tracks' group CTEs
    elif first is None and last is None and not from_plays:
        grouped = EVER_TOP_TRACKS.format(order=ORDERS[by])
    _execute(
        cur,
        f"""
        WITH {{tracks}},
        grouped AS ({grouped})
        SELECT {keys}, plays, {MINUTES % "ms"} AS minutes, skips FROM grouped
        ORDER BY {ORDERS[by]}, {name} COLLATE "C", artist_name COLLATE "C" NULLS LAST
        LIMIT %(limit)s
    """,
        _params(cur, user_id, first, last, limit=limit),
        from_plays,
    )
    return fetch_all(cur)


SKIP_RATE = """
SELECT coalesce(sum(plays), 0)::bigint AS plays, coalesce(sum(skip_known), 0)::bigint AS known,
       coalesce(sum(skipped), 0)::bigint AS skipped,
       round(100.0 * sum(skipped) / nullif(sum(skip_known), 0), 1)::float8 AS skip_pct
FROM ({hours}) AS h
"""
SKIP_RATE_BY_MONTH = """
SELECT date_trunc('month', day)::date AS month, sum(skip_known)::bigint AS known, sum(skipped)::bigint AS skipped,
       round(100.0 * sum(skipped) / sum(skip_known), 1)::float8 AS skip_pct
FROM ({hours}) AS h GROUP BY 1 HAVING sum(skip_known) > 0 ORDER BY 1
"""


def skip_rate(cur, user_id: int, first: date | None, last: date | None, from_plays: bool = False) -> dict:
    """Plays, how many say whether they were skipped (``known``), how many were, and the
    share of the known ones (None when none is known)."""
    _execute(cur, SKIP_RATE, _params(cur, user_id, first, last), from_plays)
    return fetch_single(cur)


def skip_rate_by_month(
    cur, user_id: int, first: date | None, last: date | None, from_plays: bool = False
) -> list[dict]:
    """The skip rate of each local month that has plays known to be skipped or not."""
    _execute(cur, SKIP_RATE_BY_MONTH, _params(cur, user_id, first, last), from_plays)
    return fetch_all(cur)


# A discovery is the first play ever of a track (or an artist): a period counts those that
# fall inside it, per month, from the month of the first play ever on. Only the firsts
# inside the period are read (play_tracks and play_artists by first_at).
DISCOVERIES = f"""
WITH {{tracks}},
firsts AS (
    SELECT first_at, 1 AS tracks, 0 AS artists FROM named WHERE first_at >= {START} AND first_at < {END}
    UNION ALL
    SELECT first_at, 0, 1 FROM artists WHERE first_at >= {START} AND first_at < {END}
),
counted AS (
    SELECT date_trunc('month', first_at AT TIME ZONE %(tz)s)::date AS month,
           sum(tracks)::int AS new_tracks, sum(artists)::int AS new_artists
    FROM firsts GROUP BY 1
),
span AS (
    SELECT greatest(date_trunc('month', %(first)s::date)::date,
                    (SELECT date_trunc('month', min(first_at) AT TIME ZONE %(tz)s)::date FROM named)) AS first_month,
           least(date_trunc('month', %(last)s::date)::date,
                 {{last_played}}) AS last_month
),
shown AS (
    SELECT generate_series(first_month, last_month, interval '1 month')::date AS month FROM span
)
SELECT month, coalesce(c.new_tracks, 0) AS new_tracks, coalesce(c.new_artists, 0) AS new_artists
FROM shown LEFT JOIN counted c USING (month)
ORDER BY month
"""


def discoveries(cur, user_id: int, first: date | None, last: date | None, from_plays: bool = False) -> list[dict]:
    """Per local month of the period: tracks and artists played for the first time ever."""
    _execute(cur, DISCOVERIES, _params(cur, user_id, first, last), from_plays, ever=True)
    return fetch_all(cur)


# Gaps and islands: consecutive days minus their row number are constant along a streak.
LONGEST_STREAK = """
WITH days AS (SELECT DISTINCT day FROM ({hours}) AS h),
islands AS (SELECT day, day - (row_number() OVER (ORDER BY day))::int AS island FROM days)
SELECT count(*)::int AS days, min(day) AS first_day, max(day) AS last_day
FROM islands GROUP BY island
ORDER BY count(*) DESC, min(day) DESC
LIMIT 1
"""


def longest_streak(cur, user_id: int, first: date | None, last: date | None, from_plays: bool = False) -> dict | None:
    """The longest run of consecutive local days with at least one play (the latest of
    equally long ones): days, first_day, last_day; None without plays."""
    _execute(cur, LONGEST_STREAK, _params(cur, user_id, first, last), from_plays)
    return fetch_one(cur)


# Each day is a range of the primary key given as constants (the planner then expects a
# day's few plays, not thousands, and names them track by track).
ON_THIS_DAY_PLAYS = f"""
    SELECT %(years_ago_{{n}})s::int AS years_ago, p.track_id, p.track_name, p.artist_name, {PLAY_MS} AS ms, p.played_at
    FROM plays p
    WHERE p.user_id = %(user_id)s AND p.played_at >= %(day_{{n}})s::date::timestamp AT TIME ZONE %(tz)s
      AND p.played_at < (%(day_{{n}})s::date + 1)::timestamp AT TIME ZONE %(tz)s"""
ON_THIS_DAY = f"""
WITH asked AS (
    SELECT * FROM unnest(%(years)s::int[], %(days)s::date[]) AS a(years_ago, day)
),
day_plays AS ({{day_plays}}
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
SELECT a.years_ago, a.day, coalesce(sum(pt.plays), 0)::int AS plays,
       {MINUTES % "coalesce(sum(pt.ms), 0)"} AS minutes,
       coalesce(json_agg(json_build_object('track_name', pt.track_name, 'artist_name', pt.artist_name,
                                           'plays', pt.plays)
                         ORDER BY pt.plays DESC, pt.ms DESC, pt.first_at) FILTER (WHERE pt.plays IS NOT NULL),
                '[]') AS tracks
FROM asked a LEFT JOIN per_track pt USING (years_ago)
GROUP BY a.years_ago, a.day
ORDER BY a.years_ago
"""


def years_before(day: date, years: int) -> date:
    """The same date ``years`` earlier; 29 February falls back to the 28th (as PostgreSQL's
    date - interval does)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def on_this_day(cur, user_id: int, today: date, years=(1, 5, 10)) -> list[dict]:
    """For each of ``years`` ago: the local day (29 February falls back to the 28th),
    its plays and minutes, and the tracks played that day, most played first."""
    years = sorted(set(years))
    if not years:
        return []
    days = [years_before(today, n) for n in years]
    params = _params(cur, user_id, years=years, days=days)
    for n, (ago, day) in enumerate(zip(years, days, strict=True)):
        params[f"years_ago_{n}"], params[f"day_{n}"] = ago, day
    day_plays = " UNION ALL ".join(ON_THIS_DAY_PLAYS.format(n=n) for n in range(len(years)))
    cur.execute(ON_THIS_DAY.format(day_plays=day_plays), params)
    return fetch_all(cur)


# Tracks and artists counted from the parts directly (grouped by one key each, not by
# track and names first); a track or artist counts when the period has a play of it.
TOTALS = f"""
WITH {{tracks}},
track_sums AS (
    SELECT 1 FROM parts GROUP BY {TRACK_KEYS} HAVING sum(plays) > 0
)
SELECT coalesce(sum(plays), 0)::bigint AS plays, {MINUTES % "coalesce(sum(ms), 0)"} AS minutes,
       (SELECT count(*) FROM track_sums) AS tracks, (SELECT count(*) FROM artists) AS artists,
       (SELECT count(DISTINCT day) FROM ({{hours}}) AS h) AS days
FROM parts
"""


# The whole history's totals straight from the rollups (play_tracks has a row per
# track, play_artists one per artist): no per-track grouping, and their indexes can answer.
TOTALS_EVER = f"""
SELECT coalesce(sum(plays), 0)::bigint AS plays, {MINUTES % "coalesce(sum(ms), 0)"} AS minutes,
       count(*) AS tracks, (SELECT count(*) FROM play_artists WHERE user_id = %(user_id)s) AS artists,
       (SELECT count(DISTINCT day) FROM play_hours WHERE user_id = %(user_id)s) AS days
FROM play_tracks WHERE user_id = %(user_id)s
"""


def totals(cur, user_id: int, first: date | None, last: date | None, from_plays: bool = False) -> dict:
    """Plays, minutes, distinct tracks and artists, and days with a play, in the period."""
    if first is None and last is None and not from_plays:
        cur.execute(TOTALS_EVER, _params(cur, user_id))
    else:
        _execute(cur, TOTALS, _params(cur, user_id, first, last), from_plays)
    return fetch_single(cur)


FIRST_PLAYS = f"""
WITH {{tracks}}
SELECT track_id, track_name, artist_name, first_at
FROM named
WHERE first_at >= {START} AND first_at < {END}
ORDER BY first_at, track_name COLLATE "C"
LIMIT %(limit)s
"""


def first_plays(
    cur, user_id: int, first: date | None, last: date | None, limit: int = 5, from_plays: bool = False
) -> list[dict]:
    """The first ``limit`` tracks heard for the first time ever in the period, in the
    order they were first played."""
    _execute(cur, FIRST_PLAYS, _params(cur, user_id, first, last, limit=limit), from_plays, ever=True)
    return fetch_all(cur)


MOST_SKIPPED = """
WITH {tracks}
SELECT track_id, track_name, artist_name, skips, plays
FROM named WHERE skips > 0
ORDER BY skips DESC, plays DESC, track_name COLLATE "C", artist_name COLLATE "C" NULLS LAST
LIMIT %(limit)s
"""


def most_skipped(
    cur, user_id: int, first: date | None, last: date | None, limit: int = 5, from_plays: bool = False
) -> list[dict]:
    """The tracks skipped most often in the period, with how often they were played."""
    _execute(cur, MOST_SKIPPED, _params(cur, user_id, first, last, limit=limit), from_plays)
    return fetch_all(cur)


PLAYED_TRACKS = f"""
WITH {{tracks}},
chosen AS (
    SELECT track_id, plays, ms, skips, track_name FROM named
    WHERE track_id IS NOT NULL AND plays > skips
    ORDER BY plays - skips DESC, ms DESC, track_name COLLATE "C", track_id
    LIMIT %(limit)s
)
SELECT t.spotify_id, t.name, t.artist_name, t.album_name, t.release_date, t.duration_ms,
       n.plays, {MINUTES % "n.ms"} AS minutes, n.skips
FROM chosen n JOIN tracks t ON t.spotify_id = n.track_id
ORDER BY n.plays - n.skips DESC, n.ms DESC, n.track_name COLLATE "C", t.spotify_id
"""


def played_tracks(
    cur, user_id: int, first: date | None, last: date | None, limit: int = 150, from_plays: bool = False
) -> list[dict]:
    """The catalogue tracks played in the period, the ones played through most often
    first (plays less skips, then minutes); a track only ever skipped is left out, and so
    are local files (no Spotify id to add to a playlist)."""
    _execute(cur, PLAYED_TRACKS, _params(cur, user_id, first, last, limit=limit), from_plays)
    return fetch_all(cur)
