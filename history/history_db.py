"""SQL for importing listening history (history/importer.py). Cursor first, never commits.

The importer COPYs rows into two temporary staging tables and resolves them here, in the
caller's one transaction:

- ``history_stage``: extended-history plays, end time to the second. Resolved a batch at a
  time (``resolve_extended``) while the next batch is being parsed.
- ``history_stage_basic``: account-data plays, end time to the minute. Resolved once, at the
  end (``resolve_basic``), against everything stored by then.

**A play's identity** is (user, played_at): the end of playback in UTC, to the second
(schema_postgres.sql). Two rows with the same end second are one play, whoever wrote them:
overlapping extended exports, the old ``endsong`` and new ``Streaming_History_Audio`` files
of the same period, or the app's capture of recently played (``source = 'polling'``, which
the export's row then completes with its facts; the export wins on conflicting facts).

A play captured from recently played and the same play in an extended export may end a
few seconds apart (Spotify's two clocks): a captured play of the same track whose end is
within ``DRIFT`` of the export's, and within the export's ``ms_played`` (two plays of one
track cannot end closer than the later one lasted), is the same play; the export's row
replaces it (``SUPERSEDE_CAPTURED``, and library_db.store_plays the other way round).

A basic row only knows its minute, so it is matched by **(user, minute, normalised track
name)** (``title_key``): the n-th such row of a minute is the same play as the n-th stored
play of that minute with that title (its stored name, or its track's for a captured
play). The artist is left out of this match on purpose: the extended export names the
ALBUM artist ("Various Artists" on a compilation), account data the track's artist,
recently played the track's artists; two different songs of one title ending in the same
minute are far rarer than those disagreements. A basic row nothing matches is stored on
the first free second of its minute (``source = 'export_basic'``) and linked to a track of
the person's own history by normalised artist + track name, the artist being ANY of the
track's artists or the name it was stored under (``named`` in INSERT_BASIC), or, for a
track known only as a compilation's ("Various Artists", not fetched yet), by its title
alone when exactly one of the person's tracks has it. When an extended export or a
capture arrives later, it supersedes the basic plays it matches the same way (the basic
ones are deleted, the precise ones stored; a capture keeps the basic row's facts).
"""

from __future__ import annotations

import io

from psycopg2.errors import InsufficientPrivilege, UniqueViolation

from database import fetch_one, fetch_single, fetch_value


def name_key(artist: str, track: str) -> str:
    """SQL for the normalised artist + track name a basic row is matched by: lower case,
    spaces trimmed and collapsed. One definition for both sides of every match."""
    return f"({title_key(artist)} || chr(31) || {title_key(track)})"


def title_key(track: str) -> str:
    """SQL for a normalised name: the track name a basic row is matched to a stored play by."""
    return rf"lower(regexp_replace(btrim(coalesce({track}, '')), '\s+', ' ', 'g'))"


# The title a stored play is known by: its own, else its track's (a captured play has none).
STORED_PLAY_TITLE = title_key("coalesce(p.track_name, t.name)")
# Every artist a track may be named by: each of its artists (a synced or enriched track),
# and the name it was stored under (an export's album artist).
TRACK_ARTISTS = """(SELECT a->>'name' FROM jsonb_array_elements(CASE WHEN jsonb_typeof(t.raw_json->'artists') = 'array'
                                                      THEN t.raw_json->'artists' ELSE '[]' END) a
                    UNION SELECT t.artist_name)"""
# A compilation's album artist, as Spotify names it.
VARIOUS_ARTISTS = "various artists"
# How far apart a captured play and the export's row of it may end (seconds).
DRIFT = 30


def create_staging(cur) -> None:
    cur.execute("""
        CREATE TEMP TABLE history_stage (
            user_id bigint, played_at timestamptz NOT NULL, track_id text, track_name text, artist_name text,
            album_name text, ms_played integer NOT NULL, reason_start text, reason_end text,
            skipped boolean, shuffle boolean, offline boolean, platform text, country text, source text
        ) ON COMMIT DROP;
        CREATE TEMP TABLE history_stage_tracks (
            spotify_id text NOT NULL, name text, artist_name text, album_name text
        ) ON COMMIT DROP;
        CREATE TEMP TABLE history_stage_basic (
            file_no integer NOT NULL, row_no integer NOT NULL, played_minute timestamptz NOT NULL,
            track_name text NOT NULL, artist_name text, ms_played integer NOT NULL
        ) ON COMMIT DROP;
    """)


def copy_extended(cur, stream, columns) -> None:
    """COPY extended rows (COPY text lines, ``columns`` order) from a file-like ``stream``
    into the stage (its user_id and source columns are not read: resolving writes the
    importer's person and 'export')."""
    cur.copy_expert(f"COPY history_stage ({', '.join(columns)}) FROM STDIN", stream, size=1 << 18)


def copy_basic(cur, stream, columns) -> None:
    cur.copy_expert(f"COPY history_stage_basic ({', '.join(columns)}) FROM STDIN", stream, size=1 << 18)


def has_basic_plays(cur, user_id: int) -> bool:
    cur.execute("SELECT EXISTS (SELECT 1 FROM plays WHERE user_id = %s AND source = 'export_basic')", (user_id,))
    return fetch_value(cur)


def has_export_plays(cur, user_id: int) -> bool:
    """Whether any of the user's plays came from a data export (the dashboard's prompt)."""
    cur.execute(
        "SELECT EXISTS (SELECT 1 FROM plays WHERE user_id = %s AND source IN ('export', 'export_basic'))", (user_id,)
    )
    return fetch_value(cur)


def play_count(cur, user_id: int) -> int:
    cur.execute("SELECT count(*) FROM plays WHERE user_id = %s", (user_id,))
    return fetch_value(cur)


# Tracks the export names that the catalogue lacks: stored at once with the export's names,
# to be fetched whole later (history/enrichment.py). Sorted: the global lock order of tracks_db.
ADD_NAMED_TRACKS = """
WITH added AS (
    INSERT INTO tracks (spotify_id, name, artist_name, album_name, needs_enrichment)
    SELECT DISTINCT ON (s.track_id) s.track_id, coalesce(s.track_name, ''), s.artist_name, s.album_name, true
    FROM history_stage s
    WHERE s.track_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tracks t WHERE t.spotify_id = s.track_id)
    ORDER BY s.track_id, s.track_name IS NULL
    ON CONFLICT (spotify_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) FROM added
"""

# Basic plays an extended batch supersedes: per (minute, title), as many of the stored
# basic plays as the batch has new rows.
DELETE_SUPERSEDED_BASIC = f"""
WITH incoming AS (
    SELECT date_trunc('minute', s.played_at) AS minute, {title_key("s.track_name")} AS key,
           count(DISTINCT s.played_at) AS n
    FROM history_stage s
    WHERE NOT EXISTS (SELECT 1 FROM plays e WHERE e.user_id = %(user_id)s AND e.played_at = s.played_at
                                              AND e.source = 'export')
    GROUP BY 1, 2
),
basic AS (
    SELECT p.played_at, date_trunc('minute', p.played_at) AS minute,
           {title_key("p.track_name")} AS key,
           row_number() OVER (PARTITION BY date_trunc('minute', p.played_at),
                                           {title_key("p.track_name")}
                              ORDER BY p.played_at) AS nth
    FROM plays p
    WHERE p.user_id = %(user_id)s AND p.source = 'export_basic'
      AND p.played_at >= (SELECT min(minute) FROM incoming)
      AND p.played_at < (SELECT max(minute) FROM incoming) + interval '1 minute'
)
DELETE FROM plays d
USING basic b JOIN incoming i ON i.minute = b.minute AND i.key = b.key AND b.nth <= i.n
WHERE d.user_id = %(user_id)s AND d.played_at = b.played_at
"""

# Captured plays of a staged track ending within DRIFT s of the export's row, and within its
# ms_played: the same play (see the docstring); they go, and the export's row is stored.
# Only the batch's time range of the person's captured plays is read.
SUPERSEDE_CAPTURED = f"""
WITH captured AS (
    SELECT p.played_at, p.track_id FROM plays p
    WHERE p.user_id = %(user_id)s AND p.source = 'polling'
      AND p.played_at >= (SELECT min(played_at) FROM history_stage) - interval '{DRIFT} seconds'
      AND p.played_at <= (SELECT max(played_at) FROM history_stage) + interval '{DRIFT} seconds'
),
matched AS (
    SELECT DISTINCT c.played_at FROM captured c
    JOIN history_stage s ON s.track_id = c.track_id
         AND abs(extract(epoch FROM c.played_at - s.played_at)) <= least({DRIFT}, s.ms_played / 1000.0)
    WHERE NOT EXISTS (SELECT 1 FROM history_stage same WHERE same.played_at = c.played_at)
)
DELETE FROM plays d USING matched m WHERE d.user_id = %(user_id)s AND d.played_at = m.played_at
"""

# A play already known at the same second is the same play: a captured one ('polling') or a
# basic one of other names is completed with the export's facts; an export's is left alone.
INSERT_EXTENDED = """
WITH written AS (
    INSERT INTO plays AS p (user_id, played_at, track_id, track_name, artist_name, album_name, ms_played,
                            reason_start, reason_end, skipped, shuffle, offline, platform, country, source)
    SELECT DISTINCT ON (played_at) %(user_id)s, played_at, track_id, track_name, artist_name, album_name,
           ms_played, reason_start, reason_end, skipped, shuffle, offline, platform, country, 'export'
    FROM history_stage
    ORDER BY played_at
    ON CONFLICT (user_id, played_at) DO UPDATE SET
        track_id = coalesce(EXCLUDED.track_id, p.track_id), track_name = EXCLUDED.track_name,
        artist_name = EXCLUDED.artist_name, album_name = EXCLUDED.album_name, ms_played = EXCLUDED.ms_played,
        reason_start = EXCLUDED.reason_start, reason_end = EXCLUDED.reason_end, skipped = EXCLUDED.skipped,
        shuffle = EXCLUDED.shuffle, offline = EXCLUDED.offline, platform = EXCLUDED.platform,
        country = EXCLUDED.country, source = 'export'
        WHERE p.source <> 'export'
    RETURNING (xmax = 0) AS inserted
)
SELECT count(*) FILTER (WHERE inserted) AS inserted, count(*) FILTER (WHERE NOT inserted) AS completed,
       (SELECT count(DISTINCT played_at) FROM history_stage) AS distinct_rows,
       (SELECT count(*) FROM history_stage) AS rows
FROM written
"""


def resolve_extended(cur, user_id: int, supersede_basic: bool, fast: bool = False, held: dict | None = None) -> dict:
    """Move the staged extended rows into plays (and their new tracks into the catalogue),
    then empty the stage. Returns counts: new_tracks, new_plays, completed (known plays the
    export completed or replaced: basic ones, captured ones a few seconds off),
    already_known, duplicates (twice in the stage).
    ``fast``: the set-based path (``fast_path_possible`` said yes for this transaction and
    ``hold_tracks`` held every track the batch meets first: ``held``, its counts)."""
    if not fast or held is None:
        cur.execute(ADD_NAMED_TRACKS)  # (or another writer added one of them meanwhile)
        new_tracks = fetch_value(cur) + (held["added"] if held else 0)
        fast = False
    else:
        new_tracks = held["added"]
    superseded = 0
    if supersede_basic:
        cur.execute(DELETE_SUPERSEDED_BASIC, {"user_id": user_id})
        superseded = cur.rowcount
    cur.execute(SUPERSEDE_CAPTURED, {"user_id": user_id})
    superseded += cur.rowcount
    counts = write_plays_set_based(cur, user_id) if fast else None
    if counts is None:
        cur.execute(INSERT_EXTENDED, {"user_id": user_id})
        counts = fetch_single(cur)
    cur.execute("TRUNCATE history_stage")
    return {
        "new_tracks": new_tracks,
        "new_plays": counts["inserted"] - superseded,
        "completed": counts["completed"] + superseded,
        "already_known": counts["distinct_rows"] - counts["inserted"] - counts["completed"],
        "duplicates": counts["rows"] - counts["distinct_rows"],
    }


# -- the set-based path into plays ----------------------------------------------------
# Row by row, PostgreSQL checks each new play's two foreign keys with a query of its own
# (one per key per row, each locking the referenced row FOR KEY SHARE), and both statement
# triggers of plays copy every row into a transition table: two thirds of the time of a
# first import. The fast path does that work once per track and batch: it locks the
# person and the tracks FOR KEY SHARE (or adds the tracks) in one statement each and
# counts that every track is there (HOLD_TRACKS), writes the batch with session_replication_role = replica (the setting
# pg_restore and logical replication use, so the per-row checks and triggers stay quiet
# for this one statement), and does what the triggers of plays would have done: note the
# changed months for the rollups and move the person's data version. It is used only when
# plays has exactly the triggers and foreign keys listed here, all enabled the ordinary
# way (a trigger someone adds later turns it off until it is taught that trigger's work:
# tests/test_history_import.py checks the list against the schema), and only when the
# role may change the setting (a superuser, or GRANT SET ON PARAMETER
# session_replication_role). Otherwise every play goes the row-by-row way.
FAST_PATH_TRIGGERS = (
    "plays_bump_data_version_after_delete",
    "plays_bump_data_version_after_insert",
    "plays_bump_data_version_after_update",
    "plays_note_months_after_delete",
    "plays_note_months_after_insert",
    "plays_note_new_months_after_update",
    "plays_note_old_months_after_update",
)
FAST_PATH_FOREIGN_KEYS = ("plays_track_id_fkey", "plays_user_id_fkey")

PLAYS_TRIGGERS = """
SELECT coalesce(array_agg(tg.tgname::text ORDER BY tg.tgname::text) FILTER (WHERE NOT tg.tgisinternal), '{}')
           AS triggers,
       coalesce(array_agg(DISTINCT c.conname::text) FILTER (WHERE tg.tgisinternal), '{}') AS checked_keys,
       (SELECT coalesce(array_agg(k.conname::text ORDER BY k.conname::text), '{}') FROM pg_constraint k
        WHERE k.conrelid = 'plays'::regclass AND k.contype = 'f') AS foreign_keys,
       bool_and(tg.tgenabled = 'O') AS all_ordinary,
       bool_and(NOT tg.tgisinternal OR c.conrelid = 'plays'::regclass) AS internal_are_own_keys
FROM pg_trigger tg LEFT JOIN pg_constraint c ON c.oid = tg.tgconstraint
WHERE tg.tgrelid = 'plays'::regclass
"""


def fast_path_possible(cur) -> bool:
    """Whether this transaction may write plays the set-based way (see above). Tries the
    setting in a savepoint: a role without the right keeps the row-by-row path."""
    cur.execute(PLAYS_TRIGGERS)
    found = fetch_single(cur)
    if not (
        tuple(found["triggers"]) == FAST_PATH_TRIGGERS
        and tuple(sorted(found["foreign_keys"])) == FAST_PATH_FOREIGN_KEYS
        and tuple(sorted(found["checked_keys"])) == FAST_PATH_FOREIGN_KEYS
        and found["all_ordinary"]
        and found["internal_are_own_keys"]
    ):
        return False
    cur.execute("SAVEPOINT history_fast_path")
    try:
        cur.execute("SET LOCAL session_replication_role = replica")
    except InsufficientPrivilege:
        cur.execute("ROLLBACK TO SAVEPOINT history_fast_path")
        return False
    cur.execute("SET LOCAL session_replication_role = origin")
    cur.execute("RELEASE SAVEPOINT history_fast_path")
    return True


# The track foreign key's work for a batch, once per track and import: the tracks this
# import meets first in the batch (the parser lists each once per import, with the names
# of its first row that has them) are looked up together; those the catalogue has are
# locked FOR KEY SHARE (as each row's check would: nobody deletes them before we commit),
# sorted like every other writer of tracks; the others are added with the export's names
# (as ADD_NAMED_TRACKS). A track of an earlier batch was held then, or, when that batch
# went the row-by-row way, locked by its rows' checks. added + existing < wanted: another
# writer added one of them meanwhile, and the batch goes the row-by-row way.
HOLD_TRACKS = """
WITH existing AS (
    SELECT t.spotify_id FROM tracks t WHERE t.spotify_id IN (SELECT spotify_id FROM history_stage_tracks)
    ORDER BY t.spotify_id FOR KEY SHARE
),
added AS (
    INSERT INTO tracks (spotify_id, name, artist_name, album_name, needs_enrichment)
    SELECT w.spotify_id, coalesce(w.name, ''), w.artist_name, w.album_name, true
    FROM history_stage_tracks w WHERE w.spotify_id NOT IN (SELECT spotify_id FROM existing)
    ORDER BY w.spotify_id
    ON CONFLICT (spotify_id) DO NOTHING
    RETURNING spotify_id
)
SELECT (SELECT count(*) FROM history_stage_tracks) AS wanted, (SELECT count(*) FROM existing) AS existing,
       (SELECT count(*) FROM added) AS added
"""


def hold_tracks(cur, lines: bytes, columns) -> dict:
    """Lock or add the tracks a batch meets first (COPY ``lines`` of ``columns``, one per
    track); the counts of HOLD_TRACKS."""
    if not lines:
        return {"wanted": 0, "existing": 0, "added": 0}
    cur.execute("TRUNCATE history_stage_tracks")
    cur.copy_expert(f"COPY history_stage_tracks ({', '.join(columns)}) FROM STDIN", io.BytesIO(lines))
    cur.execute(HOLD_TRACKS)
    return fetch_single(cur)


# -- a batch straight into plays --------------------------------------------------------
# When the person has no play within a minute of a batch's time span, nothing of it can be
# known already: no play of the same second, no captured play DRIFT seconds off, no basic
# play of the same minute. The batch (one row per second, the parser saw to that) is then
# COPYed into plays itself, page by page, instead of into the stage and through an INSERT
# that writes row by row: the set-based path's settings and its work for the triggers
# (the months noted for the rollups, the data version moved), its tracks held before. A
# play another writer stored in the span after the look (or is storing) makes the COPY
# collide on the primary key: the batch is rolled back to its savepoint and staged.
SPAN_MARGIN = "interval '1 minute'"  # at least DRIFT, and a basic play's minute
SPAN_HAS_PLAYS = f"""
SELECT EXISTS (SELECT FROM plays WHERE user_id = %(user_id)s
                                   AND played_at >= %(first)s::timestamptz - {SPAN_MARGIN}
                                   AND played_at <= %(last)s::timestamptz + {SPAN_MARGIN})
"""


def span_has_plays(cur, user_id: int, first: str, last: str) -> bool:
    """Whether the person has a play within a minute of [first, last] (UTC end times)."""
    cur.execute(SPAN_HAS_PLAYS, {"user_id": user_id, "first": first, "last": last})
    return fetch_value(cur)


# What plays_note_months_after_insert does for a COPYed batch: each local month of the span
# that has a play of it (one index probe per month; the span had none before the COPY).
NOTE_SPAN_MONTHS = """
WITH person AS (SELECT coalesce(time_zone, 'UTC') AS tz FROM users WHERE id = %(user_id)s)
INSERT INTO play_rollup_dirty (user_id, month)
SELECT %(user_id)s, m.month::date
FROM person,
     generate_series(date_trunc('month', %(first)s::timestamptz AT TIME ZONE person.tz),
                     date_trunc('month', %(last)s::timestamptz AT TIME ZONE person.tz), interval '1 month') AS m(month)
WHERE EXISTS (SELECT FROM plays p WHERE p.user_id = %(user_id)s
                                    AND p.played_at >= greatest(%(first)s::timestamptz, m.month AT TIME ZONE person.tz)
                                    AND p.played_at <= %(last)s::timestamptz
                                    AND p.played_at < (m.month + interval '1 month') AT TIME ZONE person.tz)
"""


def hold_person(cur, user_id: int) -> bool:
    """The user key's work for a batch written the set-based way: the person's row locked
    FOR KEY SHARE, as each row's check would. False: the person is gone."""
    cur.execute("SELECT count(*) FROM (SELECT FROM users WHERE id = %s FOR KEY SHARE) person", (user_id,))
    return fetch_value(cur) == 1


def copy_new_plays(cur, user_id: int, stream, columns, first: str, last: str) -> int | None:
    """COPY a batch (lines of ``columns``, one per second, its tracks held, the span
    [first, last] free of the person's plays: ``span_has_plays``) straight into plays.
    Returns the plays stored, or None when nothing was: the person is gone, or another
    writer stored a play of the batch's meanwhile."""
    params = {"user_id": user_id, "first": first, "last": last}
    if not hold_person(cur, user_id):
        return None
    cur.execute("SAVEPOINT history_batch")
    try:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.copy_expert(f"COPY plays ({', '.join(columns)}) FROM STDIN", stream, size=1 << 18)
        copied = cur.rowcount
        cur.execute("SET LOCAL session_replication_role = origin")
    except UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT history_batch")
        return None
    cur.execute("RELEASE SAVEPOINT history_batch")
    if copied:
        cur.execute(NOTE_SPAN_MONTHS, params)
        cur.execute("SELECT bump_data_versions(ARRAY[%s]::bigint[])", (user_id,))
    return copied


# What plays_note_months_after_* do (schema_postgres.sql, version 8), for the written rows.
NOTE_WRITTEN_MONTHS = """
noted AS (
    INSERT INTO play_rollup_dirty (user_id, month)
    SELECT DISTINCT %(user_id)s::bigint,
           date_trunc('month', w.played_at AT TIME ZONE coalesce(u.time_zone, 'UTC'))::date
    FROM written w JOIN users u ON u.id = %(user_id)s
)
"""

# Known plays of another source at the same second are completed with the export's facts
# (as INSERT_EXTENDED's DO UPDATE does); then the batch's new seconds are inserted.
COMPLETE_KNOWN = f"""
WITH incoming AS (SELECT DISTINCT ON (played_at) * FROM history_stage ORDER BY played_at),
written AS (
    UPDATE plays p SET
        track_id = coalesce(s.track_id, p.track_id), track_name = s.track_name, artist_name = s.artist_name,
        album_name = s.album_name, ms_played = s.ms_played, reason_start = s.reason_start,
        reason_end = s.reason_end, skipped = s.skipped, shuffle = s.shuffle, offline = s.offline,
        platform = s.platform, country = s.country, source = 'export'
    FROM incoming s
    WHERE p.user_id = %(user_id)s AND p.played_at = s.played_at AND p.source <> 'export'
      AND p.played_at BETWEEN (SELECT min(played_at) FROM history_stage) AND (SELECT max(played_at) FROM history_stage)
    RETURNING p.played_at
),
{NOTE_WRITTEN_MONTHS}
SELECT count(*) FROM written
"""
INSERT_NEW = f"""
WITH written AS (
    INSERT INTO plays (user_id, played_at, track_id, track_name, artist_name, album_name, ms_played,
                       reason_start, reason_end, skipped, shuffle, offline, platform, country, source)
    SELECT DISTINCT ON (played_at) %(user_id)s, played_at, track_id, track_name, artist_name, album_name,
           ms_played, reason_start, reason_end, skipped, shuffle, offline, platform, country, 'export'
    FROM history_stage s
    WHERE NOT EXISTS (SELECT FROM plays e WHERE e.user_id = %(user_id)s AND e.played_at = s.played_at
                      -- the batch's span (files are in time order): never a hash of all their plays
                      AND e.played_at BETWEEN (SELECT min(played_at) FROM history_stage)
                                          AND (SELECT max(played_at) FROM history_stage))
    ORDER BY played_at
    RETURNING played_at
),
{NOTE_WRITTEN_MONTHS}
SELECT count(*) AS inserted, (SELECT count(DISTINCT played_at) FROM history_stage) AS distinct_rows,
       (SELECT count(*) FROM history_stage) AS rows
FROM written
"""


def write_plays_set_based(cur, user_id: int) -> dict | None:
    """The staged batch into plays the set-based way; None when it must go row by row
    instead: the person is gone, or another writer stored one of the batch's
    plays after this statement's snapshot (the plain INSERT would collide; the row-by-row
    INSERT ... ON CONFLICT resolves it). Nothing of the batch is kept then."""
    params = {"user_id": user_id}
    if not hold_person(cur, user_id):
        return None
    cur.execute("SAVEPOINT history_batch")
    try:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute(COMPLETE_KNOWN, params)
        completed = fetch_value(cur)
        cur.execute(INSERT_NEW, params)
        counts = fetch_single(cur)
        cur.execute("SET LOCAL session_replication_role = origin")
    except UniqueViolation:
        cur.execute("ROLLBACK TO SAVEPOINT history_batch")
        return None
    cur.execute("RELEASE SAVEPOINT history_batch")
    if counts["inserted"] or completed:
        cur.execute("SELECT bump_data_versions(ARRAY[%s]::bigint[])", (user_id,))
    return {**counts, "completed": completed}


# The basic rows of the upload, once each: the same row in two overlapping account-data
# exports is the same (minute, names, n-th such row of that minute) in both.
COLLECT_BASIC = f"""
CREATE TEMP TABLE history_basic ON COMMIT DROP AS
SELECT DISTINCT ON (minute, key, nth) minute, key, nth, track_name, artist_name, ms_played, file_no, row_no
FROM (
    SELECT played_minute AS minute, {name_key("artist_name", "track_name")} AS key,
           row_number() OVER (PARTITION BY file_no, played_minute, {name_key("artist_name", "track_name")}
                              ORDER BY row_no) AS nth,
           track_name, artist_name, ms_played, file_no, row_no
    FROM history_stage_basic
) numbered
ORDER BY minute, key, nth, file_no
"""

# Drop the basic rows a stored play already accounts for (any source: see the docstring).
DROP_KNOWN_BASIC = f"""
WITH minutes AS (SELECT DISTINCT minute FROM history_basic),
known AS (
    SELECT m.minute, {STORED_PLAY_TITLE} AS title, count(*) AS n
    FROM minutes m
    JOIN plays p ON p.user_id = %(user_id)s AND p.played_at >= m.minute AND p.played_at < m.minute + interval '1 minute'
    LEFT JOIN tracks t ON t.spotify_id = p.track_id
    GROUP BY 1, 2
),
numbered AS (
    SELECT b.ctid AS row, b.minute, {title_key("b.track_name")} AS title,
           row_number() OVER (PARTITION BY b.minute, {title_key("b.track_name")} ORDER BY b.file_no, b.row_no) AS nth
    FROM history_basic b
)
DELETE FROM history_basic b USING numbered n JOIN known k ON k.minute = n.minute AND k.title = n.title AND n.nth <= k.n
WHERE b.ctid = n.row
"""

# New basic plays on the free seconds of their minute, linked to a track of the person's
# own history with the same names when there is one.
INSERT_BASIC = f"""
WITH needed AS (
    SELECT b.*, row_number() OVER (PARTITION BY minute ORDER BY file_no, row_no) AS slot FROM history_basic b
),
free AS (
    SELECT m.minute, m.minute + make_interval(secs => s) AS played_at,
           row_number() OVER (PARTITION BY m.minute ORDER BY s) AS slot
    FROM (SELECT DISTINCT minute FROM history_basic) m
    CROSS JOIN generate_series(0, 59) AS s
    WHERE NOT EXISTS (SELECT 1 FROM plays p
                      WHERE p.user_id = %(user_id)s AND p.played_at = m.minute + make_interval(secs => s))
),
theirs AS (
    SELECT track_id FROM plays WHERE user_id = %(user_id)s AND track_id IS NOT NULL
    UNION SELECT track_id FROM saved_tracks WHERE user_id = %(user_id)s
    UNION SELECT track_id FROM snapshots WHERE user_id = %(user_id)s
),
named AS (
    SELECT DISTINCT ON (key) key, spotify_id
    FROM (SELECT {name_key("artist", "t.name")} AS key, t.spotify_id
          FROM tracks t JOIN theirs ON theirs.track_id = t.spotify_id
          CROSS JOIN LATERAL {TRACK_ARTISTS} AS names(artist)) k
    WHERE key IN (SELECT key FROM history_basic)
    ORDER BY key, spotify_id
),
-- a compilation's track not fetched yet knows only "Various Artists": its title, if unique among theirs
compiled AS (
    SELECT {title_key("t.name")} AS title, min(t.spotify_id) AS spotify_id
    FROM tracks t JOIN theirs ON theirs.track_id = t.spotify_id
    GROUP BY 1
    HAVING count(*) = 1 AND bool_and(t.needs_enrichment AND {title_key("t.artist_name")} = '{VARIOUS_ARTISTS}')
),
written AS (
    INSERT INTO plays (user_id, played_at, track_id, track_name, artist_name, ms_played, source)
    SELECT %(user_id)s, f.played_at, coalesce(named.spotify_id, compiled.spotify_id), n.track_name, n.artist_name,
           n.ms_played, 'export_basic'
    FROM needed n
    JOIN free f ON f.minute = n.minute AND f.slot = n.slot
    LEFT JOIN named ON named.key = n.key
    LEFT JOIN compiled ON compiled.title = {title_key("n.track_name")}
    ORDER BY f.played_at
    RETURNING track_id
)
SELECT count(*) AS inserted, count(track_id) AS linked, (SELECT count(*) FROM history_basic) AS needed FROM written
"""


def resolve_basic(cur, user_id: int) -> dict:
    """Store the staged basic rows nothing known accounts for. Returns counts: new_plays,
    linked (of them, matched to a known track by names), already_known, duplicates (the
    same row twice in the upload) and no_free_second (more than 60 plays in one minute)."""
    cur.execute("SELECT count(*) FROM history_stage_basic")
    staged = fetch_value(cur)
    if not staged:
        return {"new_plays": 0, "linked": 0, "already_known": 0, "duplicates": 0, "no_free_second": 0}
    cur.execute(COLLECT_BASIC)
    distinct = cur.rowcount
    cur.execute(DROP_KNOWN_BASIC, {"user_id": user_id})
    known = cur.rowcount
    cur.execute(INSERT_BASIC, {"user_id": user_id})
    counts = fetch_single(cur)
    return {
        "new_plays": counts["inserted"],
        "linked": counts["linked"],
        "already_known": known,
        "duplicates": staged - distinct,
        "no_free_second": counts["needed"] - counts["inserted"],
    }


def analyze_plays(cur) -> None:
    """Fresh planner statistics after a big first import (the dashboards read plays)."""
    cur.execute("ANALYZE plays")


# -- fingerprints of imported files ---------------------------------------------------
def imported_sizes(cur, user_id: int) -> set:
    """Byte sizes of the files the user imported before: a file of another size is new."""
    cur.execute("SELECT DISTINCT byte_size FROM history_import_files WHERE user_id = %s", (user_id,))
    return {row[0] for row in cur.fetchall()}


def imported_file(cur, user_id: int, sha256: bytes) -> dict | None:
    cur.execute(
        "SELECT kind, rows, imported_at FROM history_import_files WHERE user_id = %s AND sha256 = %s",
        (user_id, sha256),
    )
    return fetch_one(cur)


def remember_files(cur, user_id: int, import_id: int | None, files: list) -> None:
    """Record imported files: dicts with sha256 (bytes), byte_size, kind, rows."""
    for item in files:
        cur.execute(
            """
            INSERT INTO history_import_files (user_id, sha256, byte_size, kind, rows, import_id)
            VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (user_id, sha256) DO NOTHING
        """,
            (user_id, item["sha256"], item["byte_size"], item["kind"], item["rows"], import_id),
        )
