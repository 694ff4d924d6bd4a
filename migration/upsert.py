"""Moving resolved staging rows into the app's tables, in dependency order.

Every insert is ``INSERT ... SELECT ... ON CONFLICT``: a rerun after success inserts
nothing, and rows the target already had are never overwritten (legacy data only fills
columns that are still empty). Takes a cursor, never commits.

Bulk mode: when a target table is still empty, its secondary indexes, outgoing foreign
keys and unreferenced unique constraints are dropped inside the migration's transaction
and rebuilt after the load (one sorted build instead of millions of index insertions,
one validating join instead of a trigger per row), the way pg_restore does it; data a
statement trigger derives (the search dictionary) is derived once from the finished
table. Nobody sees the table without them: the table is locked until commit, and a
failure rolls the whole thing back.
"""

from __future__ import annotations

from psycopg2 import sql

from . import parallel, swap

IDENTITY_COLUMNS = (("users", "id"), ("playlists", "id"), ("snapshots", "id"))
BULK_TABLES = ("artists", "tracks", "playlists", "playlist_tracks", "snapshots")

# how a surviving staging row finds its target row (aliases: s staging, t target)
TARGET_MATCH = {
    "artists": ("artists t", "t.spotify_id = s.spotify_id", "stg_artists s"),
    "tracks": ("tracks t", "t.spotify_id = s.spotify_id", "stg_tracks s"),
    "entries": (
        "playlist_tracks t JOIN playlists p ON p.id = t.playlist_id",
        "p.user_id = %(owner)s AND p.legacy_key = s.playlist_key AND t.track_id = m.spotify_id",
        "stg_entries s JOIN map_track m ON m.legacy_id = s.track_ref",
    ),
    "snapshots": (
        "snapshots t",
        "t.user_id = %(owner)s AND t.track_id = s.track_spotify_id AND "
        "t.snapshot_date = s.snapshot_date AND t.time_range = s.time_range",
        "stg_snapshots s",
    ),
}
STAGED_TABLES = {"v1": ("artists", "tracks", "entries"), "v2": ("tracks", "snapshots")}


def record_preexisting(cur, layout: str, owner_id: int) -> None:
    """Remember which survivors the target already had: those rows keep their values."""
    for name in STAGED_TABLES[layout]:
        target, match, source = TARGET_MATCH[name]
        cur.execute(
            f"""CREATE TEMP TABLE pre_{name} ON COMMIT DROP AS
                        SELECT s.seq FROM {source} WHERE s.status = 'ok'
                        AND EXISTS (SELECT 1 FROM {target} WHERE {match})""",
            {"owner": owner_id},
        )
        cur.execute(f"ALTER TABLE pre_{name} ADD PRIMARY KEY (seq)")


# Statement triggers that derive data from their transition table, which holds every new
# row whole (2.5 GB of raw_json for a million v2 tracks, written to disk and read back).
# For a table filled from empty, one pass over the finished table derives the same data
# from the three columns it needs: about 20% less for a million v2 tracks (two A/B runs:
# 39.0 -> 31.1 s and 32.1 -> 25.6 s).
DERIVED_BY_TRIGGER = {
    "tracks": (
        "tracks_add_search_words_after_insert",  # schema_postgres.sql: search words
        """SELECT remember_search_words(ARRAY(
                      SELECT DISTINCT w.word FROM tracks t,
                             track_words(t.name, t.artist_name, t.album_name) AS w(word)))""",
    ),
}


def _defer_derived_data(cur, table: str) -> list:
    """Disable the table's deriving trigger; return how to derive and re-enable it."""
    if table not in DERIVED_BY_TRIGGER:
        return []
    trigger, derive = DERIVED_BY_TRIGGER[table]
    cur.execute(
        "SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s AND tgenabled = 'O'", (table, trigger)
    )  # on, in the default mode
    if cur.fetchone() is None:
        return []
    cur.execute(sql.SQL("ALTER TABLE {} DISABLE TRIGGER {}").format(sql.Identifier(table), sql.Identifier(trigger)))
    return [
        sql.SQL(derive),
        sql.SQL("ALTER TABLE {} ENABLE TRIGGER {}").format(sql.Identifier(table), sql.Identifier(trigger)),
    ]


def suspend_for_bulk_load(cur, table: str) -> list | None:
    """If ``table`` is empty: drop what a bulk build restores faster; return how to restore."""
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")
    if cur.fetchone()[0]:
        return None
    cur.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
    cur.execute(f"SELECT EXISTS (SELECT 1 FROM {table})")  # someone may have won the race
    if cur.fetchone()[0]:
        return None
    restore_constraints: list[sql.Composable] = []
    restore_indexes: list[sql.Composable] = []
    restore_keys: list[sql.Composable] = []
    cur.execute(
        """
        SELECT c.conname, c.contype, pg_get_constraintdef(c.oid) FROM pg_constraint c
        WHERE c.conrelid = %s::regclass AND c.contype IN ('f', 'u', 'p')
          AND NOT EXISTS (SELECT 1 FROM pg_constraint r WHERE r.contype = 'f'
                          AND r.confrelid = c.conrelid AND r.conindid = c.conindid)
        ORDER BY c.contype""",
        (table,),
    )
    for name, kind, definition in cur.fetchall():
        restore = sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} ").format(
            sql.Identifier(table), sql.Identifier(name)
        ) + sql.SQL(definition)
        (restore_keys if kind == "f" else restore_constraints).append(restore)
        cur.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
    cur.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
                   WHERE i.indrelid = %s::regclass AND NOT EXISTS (
                       SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)""",
        (table,),
    )
    for name, definition in cur.fetchall():
        restore_indexes.append(sql.SQL(definition))
        cur.execute(f"DROP INDEX {name}")
    return _defer_derived_data(cur, table) + restore_constraints + restore_indexes + restore_keys


def _fill(column: str) -> str:
    return f"{column} = coalesce(t.{column}, excluded.{column})"


TRACK_FILL = (
    "artist_name",
    "primary_artist_id",
    "album_name",
    "duration_ms",
    "explicit",
    "popularity",
    "spotify_url",
    "audio_features",
)
TRACK_CONFLICT = f"""
    ON CONFLICT (spotify_id) DO UPDATE SET {", ".join(_fill(c) for c in TRACK_FILL)},
        release_date = coalesce(t.release_date, excluded.release_date),
        release_date_precision = CASE WHEN t.release_date IS NULL
            THEN excluded.release_date_precision ELSE t.release_date_precision END,
        raw_json = CASE WHEN t.raw_json = '{{}}' THEN excluded.raw_json ELSE t.raw_json END
    WHERE {" OR ".join(f"(t.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in TRACK_FILL + ("release_date",))}
       OR (t.raw_json = '{{}}' AND excluded.raw_json <> '{{}}')"""


def insert_statements(layout: str, owner_id: int, empty: set[str], clock: str, private: bool) -> dict[str, str]:
    """The upserts by target table, in dependency order. ``clock`` stands in for the
    timestamps the source lacks (one value for the whole run, which verification knows)."""

    def on_conflict(table: str, clause: str) -> str:
        return "" if table in empty else clause  # an empty table has nothing to conflict with

    owner = int(owner_id)
    statements = {}
    if layout == "v1":
        statements["artists"] = f"""INSERT INTO artists (spotify_id, name, created_at)
                        SELECT spotify_id, name, coalesce(created_at, {clock}) FROM stg_artists
                        WHERE status = 'ok'
                        {on_conflict("artists", "ON CONFLICT (spotify_id) DO NOTHING")}"""
        # a private build loads artists and tracks at once: the surviving staged artist is
        # the row the artists table gets
        artists = "stg_artists a ON a.status = 'ok' AND" if private else "artists a ON"
        artist_join = f"""LEFT JOIN map_artist m ON m.legacy_id = s.artist_ref
                         LEFT JOIN {artists} a.spotify_id = m.spotify_id"""
        artist_name, artist_id = "coalesce(s.artist_name, a.name)", "a.spotify_id"
    else:
        artist_join, artist_name, artist_id = "", "s.artist_name", "NULL::text"
    statements["tracks"] = f"""
        INSERT INTO tracks AS t (spotify_id, name, artist_name, primary_artist_id, album_name,
            duration_ms, release_date, release_date_precision, explicit, popularity, spotify_url,
            raw_json, audio_features, created_at, updated_at)
        SELECT s.spotify_id, s.name, {artist_name}, {artist_id}, s.album_name, s.duration_ms,
               s.release_date, s.release_date_precision, s.explicit, s.popularity, s.spotify_url,
               s.raw_json::jsonb, s.audio_features::jsonb, coalesce(s.created_at, {clock}),
               coalesce(s.updated_at, s.created_at, {clock})
        FROM stg_tracks s {artist_join} WHERE s.status = 'ok' {on_conflict("tracks", TRACK_CONFLICT)}"""
    if layout == "v1":
        statements["playlists"] = f"""INSERT INTO playlists (user_id, kind, name, legacy_key, created_at)
                        SELECT {owner}, 'legacy', playlist_key, playlist_key, coalesce(min(added_at), {clock})
                        FROM stg_entries GROUP BY playlist_key ORDER BY playlist_key
                        {on_conflict("playlists", "ON CONFLICT (user_id, legacy_key) DO NOTHING")}"""
        statements["playlist_tracks"] = f"""INSERT INTO playlist_tracks (playlist_id, track_id, position, added_at)
                        SELECT p.id, m.spotify_id, s.position, s.added_at
                        FROM stg_entries s JOIN map_track m ON m.legacy_id = s.track_ref
                        JOIN playlists p ON p.user_id = {owner} AND p.legacy_key = s.playlist_key
                        WHERE s.status = 'ok'
                        {on_conflict("playlist_tracks", "ON CONFLICT (playlist_id, track_id) DO NOTHING")}"""
    else:
        conflict = "ON CONFLICT (user_id, track_id, snapshot_date, time_range) DO NOTHING"
        statements["snapshots"] = f"""INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank)
                        SELECT {owner}, track_spotify_id, snapshot_date, time_range, rank
                        FROM stg_snapshots WHERE status = 'ok'
                        {on_conflict("snapshots", conflict)}"""
    return statements


def load(
    cur,
    layout: str,
    owner_id: int,
    bulk: bool = True,
    private: swap.Plan | None = None,
    sessions: parallel.Sessions | None = None,
    clock: str = "now()",
) -> set[str]:
    """Upsert survivors in dependency order; returns the tables it filled from empty.

    With ``private`` (and its ``sessions``), the tables are the empty private copies of
    ``migration.swap``, filled and indexed by several sessions at once (build_private)."""
    if private is not None and sessions is not None:
        return build_private(sessions, layout, owner_id, private, clock)
    restore: list = []
    empty: set[str] = set()
    record_preexisting(cur, layout, owner_id)
    if bulk:
        tables = BULK_TABLES if layout == "v1" else ("tracks", "snapshots")
        for table in tables:
            steps = suspend_for_bulk_load(cur, table)
            if steps is not None:
                empty.add(table)
                restore += steps
    for statement in insert_statements(layout, owner_id, empty, clock, private=False).values():
        cur.execute(statement)
    for statement in restore:
        cur.execute(statement)
    reset_identity_sequences(cur)
    return empty


def build_private(sessions: parallel.Sessions, layout: str, owner_id: int, plan: swap.Plan, clock: str) -> set[str]:
    """Fill the private tables, then their keys, indexes, foreign keys and search dictionary,
    each statement on whichever session is free once what it needs is there."""
    inserts = insert_statements(layout, owner_id, set(plan.tables), clock, private=True)
    tasks: dict[str, tuple[parallel.Task, list[str]]] = {}
    for table, statement in inserts.items():
        after = ["load:playlists"] if table == "playlist_tracks" else []
        tasks[f"load:{table}"] = (parallel.statement(statement), after)
    tasks["derive:search_words"] = (parallel.statement(DERIVED_BY_TRIGGER["tracks"][1]), ["load:tracks"])
    keys_of: dict[str, list[str]] = {}
    for n, (table, key) in enumerate(plan.keys):
        keys_of.setdefault(table, []).append(f"key:{n}")
        tasks[f"key:{n}"] = (parallel.statement(key), [f"load:{table}"])
    for n, (table, index) in enumerate(plan.indexes):
        filled_by = "derive:search_words" if table in swap.DICTIONARY_TABLES else f"load:{table}"
        tasks[f"index:{n}"] = (parallel.statement(index), [filled_by])
    for n, (table, referenced, foreign_key) in enumerate(plan.foreign_keys):
        tasks[f"foreign key:{n}"] = (
            parallel.statement(foreign_key),
            keys_of.get(table, []) + keys_of.get(referenced, []) + [f"load:{table}", f"load:{referenced}"],
        )
    tasks["sequences"] = (reset_identity_sequences, [f"load:{table}" for table in inserts])
    parallel.run_graph(sessions, tasks)
    return set(plan.tables)


def reset_identity_sequences(cur) -> None:
    """Never behind the largest id, never moved backwards, untouched on empty tables.

    Ids are generated, not copied from SQLite, so this only repairs a sequence someone
    else left behind; ``setval(seq, max(id))`` alone fails on an empty table.
    """
    for table, column in IDENTITY_COLUMNS:
        cur.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column))
        sequence = cur.fetchone()[0]
        cur.execute(f"SELECT max({column}) FROM {table}")
        largest = cur.fetchone()[0]
        if sequence is None or largest is None:
            continue
        cur.execute(f"SELECT last_value, is_called FROM {sequence}")
        last_value, is_called = cur.fetchone()
        if last_value < largest or (last_value == largest and not is_called):
            cur.execute("SELECT setval(%s, %s, true)", (sequence, largest))
