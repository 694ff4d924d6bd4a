"""Proving a migration: reconciliation, per-row checksums, JSONB shape, foreign keys.

Each staging row carries an MD5 that Python computed over the cleaned source values
(``legacy_cleaning.row_checksum``). Here PostgreSQL recomputes the same digest from the
row it actually stored, so a value that was truncated, re-typed, double-encoded or
dropped anywhere between SQLite and the target shows up as a mismatch. JSON columns are
also compared as JSONB values, and nested fields are read back through ``->``/``->>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .upsert import TARGET_MATCH

FOUND = {"artists": "spotify_id", "tracks": "spotify_id", "entries": "playlist_id", "snapshots": "id"}
SOURCE_TABLE = {"artists": "artists", "tracks": "tracks", "entries": "playlist_tracks", "snapshots": "snapshots"}
TARGET_TABLE = SOURCE_TABLE  # the legacy tables and the app's share their names


def _utc_text(column: str) -> str:
    """Target timestamp ``t.column`` as legacy_cleaning.canonical writes a UTC datetime."""
    return f"to_char(t.{column} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00:00'"


def _ts(column: str, source_column: str) -> str:
    """Row by row: NULL where the staged source row had none."""
    return f"CASE WHEN s.{source_column} IS NULL THEN NULL ELSE {_utc_text(column)} END"


def _landed_ts(column: str) -> str:
    """Whole table (no staging row at hand): the load writes the run's clock (upsert's
    ``clock``: one timestamp for the whole run) where the source had no timestamp, so that
    value stands for NULL (no legacy row was written at that very microsecond)."""
    return f"CASE WHEN t.{column} = %(clock)s THEN NULL ELSE {_utc_text(column)} END"


def _md5(*fields: str) -> str:
    """The SQL twin of legacy_cleaning.row_checksum over target columns.

    A date renders as YYYY-MM-DD because ``migration_load.prepare_session`` fixes DateStyle
    to ISO for the whole transaction (``::text`` is cheaper than ``to_char``)."""
    return "md5(concat_ws(chr(31), " + ", ".join(f"coalesce(({f})::text, chr(30))" for f in fields) + "))"


def _artist_digest(created_at: str) -> str:
    return _md5("t.spotify_id", "t.name", created_at)


def _entry_digest(added_at: str) -> str:
    return _md5("p.legacy_key", "t.position", added_at)


SNAPSHOT_DIGEST = _md5("t.track_id", "t.snapshot_date", "t.time_range", "t.rank")


def checksum_sql(name: str, layout: str) -> str:
    """A boolean SQL expression: does target row t hold exactly staging row s?"""
    if name == "artists":
        return f"s.src_md5 = {_artist_digest(_ts('created_at', 'created_at'))}"
    if name == "tracks":
        artist_name = "NULL" if layout == "v1" else "t.artist_name"
        digest = _md5(
            "t.spotify_id",
            "t.name",
            artist_name,
            "t.album_name",
            "t.duration_ms",
            "t.release_date",
            "t.release_date_precision",
            "t.explicit",
            "t.popularity",
            "t.spotify_url",
            "s.raw_json",
            "s.audio_features",
            _ts("created_at", "created_at"),
            _ts("updated_at", "updated_at"),
        )
        return (
            f"s.src_md5 = {digest} AND t.raw_json = s.raw_json::jsonb "
            "AND t.audio_features IS NOT DISTINCT FROM s.audio_features::jsonb"
        )
    if name == "entries":
        return f"s.src_md5 = {_entry_digest(_ts('added_at', 'added_at'))}"
    return f"s.src_md5 = {SNAPSHOT_DIGEST}"


@dataclass
class TableCheck:
    staged_ok: int = 0  # surviving rows that must be in the target
    missing: int = 0  # ... and are not
    mismatched: int = 0  # new rows whose content differs from the source
    kept_existing: int = 0  # rows the target already had, with other values
    reference_errors: int = 0  # references that do not follow the surviving row
    nested_errors: int = 0  # raw_json->'album'->>'release_date' differs from the source
    preexisting: int = 0  # surviving rows the target had before this run
    # a table filled from empty whose checksum totals differ with no row missing or
    # different: target rows beyond the source's (None: same count, other content)
    unaccounted: int | None = 0
    examples: list = field(default_factory=list)


# Tables a run filled from empty are checked as a whole first: the multiset of checksums
# Python computed from the source must equal the one recomputed from every target row
# (count, and the sum of a 64-bit hash of each digest). Two aggregates, no staging-to-target
# join; any missing, extra or altered row changes the sum (a miss has odds of 2^-64). Only
# when they differ does the row-by-row join below run, to name the rows.
# name: ((staging digest, staging rows), (target digest, target rows))
_WHOLE_TABLE = {
    "artists": (
        ("s.src_md5", "stg_artists s WHERE s.status = 'ok'"),
        (_artist_digest(_landed_ts("created_at")), "artists t"),
    ),
    # the entry's checksum leaves out its track (the row-by-row check joins on it): add it
    "entries": (
        (
            "md5(s.src_md5 || chr(31) || m.spotify_id)",
            "stg_entries s JOIN map_track m ON m.legacy_id = s.track_ref WHERE s.status = 'ok'",
        ),
        (
            f"md5({_entry_digest(_landed_ts('added_at'))} || chr(31) || t.track_id)",
            "playlist_tracks t JOIN playlists p ON p.id = t.playlist_id WHERE p.user_id = %(owner)s",
        ),
    ),
    "snapshots": (
        ("s.src_md5", "stg_snapshots s WHERE s.status = 'ok'"),
        (SNAPSHOT_DIGEST, "snapshots t WHERE t.user_id = %(owner)s"),
    ),
}


def _checksum_total(digest: str) -> str:
    # a 64-bit hash of each row's digest, summed (int8 sums are exact: numeric results)
    return f"coalesce(sum(hashtextextended({digest}, 0)), 0)"


def whole_table_totals(cur, name: str, owner_id: int | None, clock) -> tuple[tuple, tuple]:
    """((rows, checksum total) staged, (rows, checksum total) landed)."""
    (staged, staged_from), (landed, landed_from) = _WHOLE_TABLE[name]
    cur.execute(f"SELECT count(*), {_checksum_total(staged)} FROM {staged_from}")
    staged_total = cur.fetchone()
    cur.execute(
        f"SELECT count(*), {_checksum_total(landed)} FROM {landed_from}",
        {"owner": owner_id, "clock": clock},
    )
    return staged_total, cur.fetchone()


def check_table(
    cur, name: str, layout: str, owner_id: int | None, filled_from_empty: bool = False, clock=None
) -> TableCheck:
    """Does every surviving staging row hold the same content in the target? ``clock``: the
    timestamp the load wrote where the source had none."""
    if not (filled_from_empty and name in _WHOLE_TABLE):
        return check_rows(cur, name, layout, owner_id)
    staged, landed = whole_table_totals(cur, name, owner_id, clock)
    if staged == landed:
        return TableCheck(staged_ok=staged[0])
    check = check_rows(cur, name, layout, owner_id)  # name the rows that differ
    if not (check.missing or check.mismatched):
        # nothing the row-by-row join can see: rows the source does not account for
        check.unaccounted = landed[0] - staged[0] or None
    return check


def check_rows(cur, name: str, layout: str, owner_id: int | None) -> TableCheck:
    """Row by row: each surviving staging row joined to its target row."""
    target, match, source = TARGET_MATCH[name]
    cur.execute(f"SELECT to_regclass('pg_temp.pre_{name}') IS NOT NULL")
    pre = "pre.seq IS NOT NULL" if cur.fetchone()[0] else "false"
    pre_join = f"LEFT JOIN pre_{name} pre ON pre.seq = s.seq" if pre != "false" else ""
    extra_select, extra_join = "0, 0", ""
    if name == "tracks" and layout == "v1":
        extra_join = "LEFT JOIN map_artist ma ON ma.legacy_id = s.artist_ref"
        extra_select = (
            "count(*) FILTER (WHERE found AND NOT is_pre AND ma.spotify_id IS NOT NULL "
            "AND primary_artist_id IS DISTINCT FROM ma.spotify_id), 0"
        )
    elif name == "tracks":
        extra_select = (
            "0, count(*) FILTER (WHERE found AND NOT is_pre AND album_release_date "
            "IS NOT NULL AND nested IS DISTINCT FROM album_release_date)"
        )
    nested = "t.raw_json->'album'->>'release_date'" if name == "tracks" else "NULL::text"
    artist_col = "t.primary_artist_id" if name == "tracks" else "NULL::text"
    album_col = "s.album_release_date" if name == "tracks" else "NULL::text"
    artist_ref = "s.artist_ref" if name == "tracks" else "NULL::bigint"
    target_columns = (
        f"CASE WHEN t.{FOUND[name]} IS NOT NULL THEN true END AS found, "
        f"({checksum_sql(name, layout)}) AS same, {nested} AS nested, "
        f"{artist_col} AS primary_artist_id"
    )
    if name in ("artists", "tracks"):  # wide rows: one primary-key probe each, nothing spilled
        lookup = f"LEFT JOIN LATERAL (SELECT {target_columns} FROM {target} WHERE {match}) c ON true"
        target_columns = "c.found, c.same, c.nested, c.primary_artist_id"
    else:  # narrow rows: one hash or merge join
        lookup = f"LEFT JOIN {f'({target})' if ' JOIN ' in target else target} ON {match}"
    # a missing target row still counts: found is NULL then
    cur.execute(
        f"""
        WITH joined AS (
            SELECT s.legacy_key, {artist_ref} AS artist_ref, {album_col} AS album_release_date,
                   {pre} AS is_pre, {target_columns}
            FROM {source} {pre_join} {lookup}
            WHERE s.status = 'ok')
        SELECT count(*), count(*) FILTER (WHERE found IS NULL),
               count(*) FILTER (WHERE found AND NOT same AND NOT is_pre),
               count(*) FILTER (WHERE found AND NOT same AND is_pre),
               {extra_select},
               (array_agg(legacy_key) FILTER (WHERE found IS NULL OR (NOT same AND NOT is_pre)))[1:5],
               count(*) FILTER (WHERE is_pre)
        FROM joined s {extra_join}""",
        {"owner": owner_id},
    )
    row = cur.fetchone()
    return TableCheck(
        staged_ok=row[0],
        missing=row[1],
        mismatched=row[2],
        kept_existing=row[3],
        reference_errors=row[4],
        nested_errors=row[5],
        examples=list(row[6] or []),
        preexisting=row[7],
    )


# (what, table, the column(s) a constraint guards, the condition of a bad row)
FOREIGN_KEYS = (
    (
        "tracks.primary_artist_id",
        "tracks",
        "primary_artist_id",
        "c.primary_artist_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM artists p WHERE p.spotify_id = c.primary_artist_id)",
    ),
    (
        "snapshots.track_id",
        "snapshots",
        "track_id",
        "NOT EXISTS (SELECT 1 FROM tracks p WHERE p.spotify_id = c.track_id)",
    ),
    ("snapshots.user_id", "snapshots", "user_id", "NOT EXISTS (SELECT 1 FROM users p WHERE p.id = c.user_id)"),
    (
        "playlist_tracks.track_id",
        "playlist_tracks",
        "track_id",
        "NOT EXISTS (SELECT 1 FROM tracks p WHERE p.spotify_id = c.track_id)",
    ),
    (
        "playlist_tracks.playlist_id",
        "playlist_tracks",
        "playlist_id",
        "NOT EXISTS (SELECT 1 FROM playlists p WHERE p.id = c.playlist_id)",
    ),
    ("playlists.user_id", "playlists", "user_id", "NOT EXISTS (SELECT 1 FROM users p WHERE p.id = c.user_id)"),
)
JSON_OBJECTS = (
    ("tracks.raw_json", "tracks", "raw_json", "jsonb_typeof(c.raw_json) <> 'object'"),
    ("tracks.audio_features", "tracks", "audio_features", "jsonb_typeof(c.audio_features) <> 'object'"),
    ("artists.raw_json", "artists", "raw_json", "jsonb_typeof(c.raw_json) <> 'object'"),
    ("playlists.parameters", "playlists", "parameters", "jsonb_typeof(c.parameters) <> 'object'"),
)


def _enforced(cur, table: str, column: str, kind: str) -> bool:
    """Does a validated constraint (with live triggers, for a foreign key) guard the column?

    Then PostgreSQL itself guarantees the invariant and scanning millions of rows again
    proves nothing more; otherwise the rows are checked one by one.
    """
    cur.execute(
        """
        SELECT EXISTS (
            SELECT 1 FROM pg_constraint c JOIN pg_attribute a
                 ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.conrelid = to_regclass(%(table)s) AND c.contype = %(kind)s
              AND c.convalidated AND a.attname = %(column)s
              AND (c.contype <> 'f' OR NOT EXISTS (
                  SELECT 1 FROM pg_trigger t WHERE t.tgconstraint = c.oid AND t.tgenabled = 'D'))
              AND (c.contype <> 'c' OR pg_get_constraintdef(c.oid) LIKE '%%jsonb_typeof%%object%%'))
          AND current_setting('session_replication_role') <> 'replica'""",
        {"table": table, "column": column, "kind": kind},
    )
    return cur.fetchone()[0]


def check_database(cur, enforced_at_swap=frozenset()) -> tuple[list[str], list[str]]:
    """Whole-database invariants: (problems, how each was established). ``enforced_at_swap``:
    foreign keys a private build's swap adds, validated, when their rows exist."""
    problems, notes = [], []
    for checks, kind, failure in ((JSON_OBJECTS, "c", "are not JSON objects"), (FOREIGN_KEYS, "f", "point at nothing")):
        for label, table, column, bad in checks:
            if label in enforced_at_swap:
                notes.append(f"{label}: enforced by a validated constraint the swap adds")
                continue
            if _enforced(cur, table, column, kind):
                notes.append(f"{label}: enforced by a validated constraint")
                continue
            cur.execute(f"SELECT count(*) FROM {table} c WHERE {bad}")
            count = cur.fetchone()[0]
            notes.append(f"{label}: every row checked")
            if count:
                problems.append(f"{count} {label} value(s) {failure}")
    return problems, notes


def pg_report_rows(cur, layout: str):
    """Yield (staging name, rowid, legacy key, action, reason, merged_into, target key)."""
    keys = {"artists": "spotify_id", "tracks": "spotify_id", "entries": "playlist_key", "snapshots": "track_spotify_id"}
    for name in ("artists", "tracks", "entries") if layout == "v1" else ("tracks", "snapshots"):
        with cur.connection.cursor(name=f"report_{name}") as rows:
            rows.itersize = 2000
            rows.execute(f"""SELECT seq, legacy_key, status, reason, merged_into, {keys[name]}
                             FROM stg_{name} WHERE status <> 'ok' ORDER BY seq""")
            for seq, key, status, reason, merged_into, target_key in rows:
                if status == "merged":
                    reason = f"duplicate of {SOURCE_TABLE[name]} {merged_into} ({target_key})"
                yield name, seq, key, status, reason, merged_into, target_key
    if layout == "v1":
        with cur.connection.cursor(name="report_refs") as rows:
            rows.itersize = 2000
            rows.execute("""
                SELECT s.seq, s.legacy_key, s.artist_ref, (SELECT r.reason FROM stg_rejected_refs r
                       WHERE r.tbl = 'artists' AND r.ref = s.artist_ref::text LIMIT 1)
                FROM stg_tracks s WHERE s.artist_ref IS NOT NULL AND s.status = 'ok'
                  AND NOT EXISTS (SELECT 1 FROM map_artist m WHERE m.legacy_id = s.artist_ref)
                ORDER BY s.seq""")
            for seq, key, artist_ref, why in rows:
                reason = (
                    f"artist {artist_ref} was rejected ({why}); reference cleared"
                    if why
                    else f"artist_id {artist_ref} does not exist in artists; reference cleared"
                )
                yield "tracks", seq, key, "repaired", reason, None, None
