"""Staging cleaned legacy rows in PostgreSQL and resolving them (see migration_upsert).

Everything here takes a cursor and never commits: ``migrate_to_postgresql.main`` runs the
whole migration in one transaction, so a crash at any point leaves the target as it was
and a rerun after success changes nothing (every insert is ``ON CONFLICT``).

1. cleaned rows are COPYed into temporary staging tables (``stg_*``);
2. ``resolve`` decides in SQL what row-by-row code gets wrong: duplicates by Spotify id
   collapse onto the first row, references follow the survivor, orphans are rejected;
3. ``migration_upsert.load`` upserts with ``INSERT ... SELECT ... ON CONFLICT``.
"""

from __future__ import annotations

import io
import queue
import threading
from datetime import date, datetime

import users_db

# users_db.claim_legacy_placeholder hands this user to the first person who logs in
PLACEHOLDER_USER, PLACEHOLDER_NAME = users_db.LEGACY_PLACEHOLDER_USER, users_db.LEGACY_PLACEHOLDER_NAME

# columns the migration writes, with the type it relies on
EXPECTED_COLUMNS = {
    "users": {"id": "bigint", "spotify_id": "text", "display_name": "text", "is_placeholder": "boolean"},
    "artists": {"spotify_id": "text", "name": "text", "raw_json": "jsonb", "created_at": "timestamp with time zone"},
    "tracks": {
        "spotify_id": "text",
        "name": "text",
        "artist_name": "text",
        "primary_artist_id": "text",
        "album_name": "text",
        "duration_ms": "integer",
        "release_date": "date",
        "release_date_precision": "text",
        "explicit": "boolean",
        "popularity": "smallint",
        "spotify_url": "text",
        "raw_json": "jsonb",
        "audio_features": "jsonb",
        "created_at": "timestamp with time zone",
        "updated_at": "timestamp with time zone",
    },
    "playlists": {
        "id": "bigint",
        "user_id": "bigint",
        "kind": "text",
        "name": "text",
        "legacy_key": "text",
        "created_at": "timestamp with time zone",
    },
    "playlist_tracks": {
        "playlist_id": "bigint",
        "track_id": "text",
        "position": "integer",
        "added_at": "timestamp with time zone",
    },
    "snapshots": {
        "id": "bigint",
        "user_id": "bigint",
        "track_id": "text",
        "snapshot_date": "date",
        "time_range": "text",
        "rank": "integer",
    },
    "search_words": {"word": "text"},  # filled by a trigger on tracks (schema version 4)
}
# columns schema_postgres.sql adds to an older copy of its own tables
ADDABLE_COLUMNS = {("playlist_tracks", "added_at")}

_STATUS = "status text NOT NULL DEFAULT 'ok', reason text, merged_into text"
STAGING_DDL = {
    "artists": f"""CREATE TEMP TABLE stg_artists (
        seq bigint, legacy_key text, spotify_id text, legacy_id bigint, name text,
        created_at timestamptz, src_md5 text, {_STATUS}) ON COMMIT DROP""",
    "tracks": f"""CREATE TEMP TABLE stg_tracks (
        seq bigint, legacy_key text, spotify_id text, legacy_id bigint, name text,
        artist_ref bigint, artist_name text, album_name text, duration_ms integer,
        release_date date, release_date_precision text, explicit boolean, popularity smallint,
        spotify_url text, raw_json text, audio_features text, created_at timestamptz,
        updated_at timestamptz, album_release_date text, src_md5 text, {_STATUS}) ON COMMIT DROP""",
    "entries": f"""CREATE TEMP TABLE stg_entries (
        seq bigint, legacy_key text, playlist_key text, track_ref bigint, position integer,
        added_at timestamptz, src_md5 text, {_STATUS}) ON COMMIT DROP""",
    "snapshots": f"""CREATE TEMP TABLE stg_snapshots (
        seq bigint, legacy_key text, track_spotify_id text, snapshot_date date,
        time_range text, rank integer, src_md5 text, {_STATUS}) ON COMMIT DROP""",
}
STAGING_COLUMNS = {
    "artists": "seq, legacy_key, spotify_id, legacy_id, name, created_at, src_md5",
    "tracks": "seq, legacy_key, spotify_id, legacy_id, name, artist_ref, artist_name, album_name, "
    "duration_ms, release_date, release_date_precision, explicit, popularity, "
    "spotify_url, raw_json, audio_features, created_at, updated_at, "
    "album_release_date, src_md5",
    "entries": "seq, legacy_key, playlist_key, track_ref, position, added_at, src_md5",
    "snapshots": "seq, legacy_key, track_spotify_id, snapshot_date, time_range, rank, src_md5",
}


MIGRATION_LOCK_KEY = 7_214_052_020  # one migration per target database at a time
ANALYZED_COLUMNS = {
    "artists": "seq, spotify_id, legacy_id, status",
    "tracks": "seq, spotify_id, legacy_id, artist_ref, status",
    "entries": "seq, playlist_key, track_ref, status",
    "snapshots": "seq, track_spotify_id, snapshot_date, time_range, rank, status",
}


class TargetError(Exception):
    """The target database cannot take this migration; one line for a person."""


# --- session and schema ----------------------------------------------------------------


def prepare_session(cur) -> None:
    cur.execute("SHOW server_encoding")
    encoding = cur.fetchone()[0]
    if encoding.upper() not in ("UTF8", "UTF-8"):
        raise TargetError(f"target database encoding is {encoding}; the app needs UTF8")
    # staging lives in temp tables: give them more than the default 8MB of local buffers
    # (only possible before the session's first temp table)
    cur.execute("SET temp_buffers = '256MB'")
    # held by the session, not a transaction: a private build commits as it goes
    cur.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
    if not cur.fetchone()[0]:
        raise TargetError("another migrate_to_postgresql.py is running against this database")
    for setting in SESSION_SETTINGS:
        cur.execute(setting)


# every session of a migration (the helpers of a private build too): checksums render
# timestamps in UTC and dates as ISO
SESSION_SETTINGS = (
    "SET TIME ZONE 'UTC'",
    "SET datestyle = 'ISO, YMD'",
    "SET work_mem = '64MB'",
    "SET maintenance_work_mem = '256MB'",
)


def schema_problems(cur) -> tuple[list[str], list[str]]:
    """(conflicts nothing can fix, pieces schema_postgres.sql would add)."""
    cur.execute(
        """SELECT table_name, column_name, data_type FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = ANY(%s)""",
        (list(EXPECTED_COLUMNS),),
    )
    found: dict[str, dict[str, str]] = {}
    for table, column, data_type in cur.fetchall():
        found.setdefault(table, {})[column] = data_type
    conflicts, missing = [], []
    for table, columns in EXPECTED_COLUMNS.items():
        if table not in found:
            missing.append(table)
            continue
        for column, data_type in columns.items():
            actual = found[table].get(column)
            if actual is None and (table, column) in ADDABLE_COLUMNS:
                missing.append(f"{table}.{column}")
            elif actual is None:
                conflicts.append(f"{table} has no column {column}")
            elif actual != data_type:
                conflicts.append(f"{table}.{column} is {actual}, expected {data_type}")
    return conflicts, missing


def ensure_schema(cur) -> list[str]:
    """Apply schema_postgres.sql when anything is missing; refuse a conflicting schema."""
    conflicts, missing = schema_problems(cur)
    if conflicts:
        raise TargetError(
            f"target database has a conflicting schema (not the app's schema_postgres.sql): {'; '.join(conflicts[:4])}"
        )
    if missing:
        apply_schema(cur)
    return missing


def apply_schema(cur) -> None:
    # the app's own routine: same file, same advisory lock, no Flask needed to call it
    import database

    database.apply_schema(cur.connection)


def owner_for_private_build(cur, spotify_user: str | None) -> tuple[int, bool]:
    """(the owner's id, whether the swap must create it): an existing user, or an id drawn
    now from the users' identity, for a user row the swap inserts with it."""
    spotify_id = spotify_user or PLACEHOLDER_USER
    cur.execute("SELECT id FROM users WHERE spotify_id = %s", (spotify_id,))
    row = cur.fetchone()
    if row:
        return row[0], False
    cur.execute("SELECT nextval(pg_get_serial_sequence('users', 'id'))")
    return cur.fetchone()[0], True


def create_owner(cur, spotify_user: str | None, owner_id: int) -> None:
    """The swap's half of owner_for_private_build: the user row, with the id drawn then."""
    spotify_id = spotify_user or PLACEHOLDER_USER
    cur.execute(
        """INSERT INTO users (id, spotify_id, display_name, is_placeholder) OVERRIDING SYSTEM VALUE
           VALUES (%s, %s, %s, %s) ON CONFLICT (spotify_id) DO NOTHING""",
        (owner_id, spotify_id, None if spotify_user else PLACEHOLDER_NAME, not spotify_user),
    )
    if cur.rowcount != 1:
        raise TargetError(f"the owner user {spotify_id!r} was created by someone else during the migration; rerun it")


def ensure_owner(cur, spotify_user: str | None, create: bool = True) -> int | None:
    """The user every legacy row belongs to: --user, or the claimable placeholder."""
    spotify_id = spotify_user or PLACEHOLDER_USER
    if create:
        cur.execute(
            """INSERT INTO users (spotify_id, display_name, is_placeholder)
                       VALUES (%s, %s, %s) ON CONFLICT (spotify_id) DO NOTHING""",
            (spotify_id, None if spotify_user else PLACEHOLDER_NAME, not spotify_user),
        )
    cur.execute("SELECT id FROM users WHERE spotify_id = %s", (spotify_id,))
    row = cur.fetchone()
    return row[0] if row else None


# --- staging ---------------------------------------------------------------------------


def scratch(private: bool, ddl: str) -> str:
    """A session's temp table, or (private build: other sessions read it) an unlogged table
    in the private schema, which is first on the search path."""
    if not private:
        return ddl
    return ddl.replace("CREATE TEMP TABLE", "CREATE UNLOGGED TABLE", 1).replace(" ON COMMIT DROP", "")


def create_staging(cur, staging_names, private: bool = False) -> None:
    for name in staging_names:
        cur.execute(scratch(private, STAGING_DDL[name]))
    # rows rejected while reading, so an orphan's reason can name why its parent went
    rejected_refs = "CREATE TEMP TABLE stg_rejected_refs (tbl text, ref text, reason text) ON COMMIT DROP"
    cur.execute(scratch(private, rejected_refs))


def _copy_field(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
            value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return value
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def copy_line(row) -> str:
    """One line of COPY text format (``_copy_field`` inlined for the common types)."""
    out = []
    for value in row:
        kind = value.__class__
        if kind is str:
            if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
                value = _copy_field(value)
            out.append(value)
        elif value is None:
            out.append("\\N")
        elif kind is int:
            out.append(str(value))
        else:
            out.append(_copy_field(value))
    return "\t".join(out) + "\n"


class CopyPipe:
    """One COPY per staging table, fed from the reading thread through a small queue.

    A helper thread sits inside ``copy_expert`` pulling chunks while the caller cleans the
    next ones, so PostgreSQL parses rows while Python reads SQLite (two cores, both busy).
    The caller must not use the connection until ``close``.
    """

    _ABORT = object()

    def __init__(self, conn, staging: str):
        self._queue: queue.Queue = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        statement = f"COPY stg_{staging} ({STAGING_COLUMNS[staging]}) FROM STDIN"
        self._thread = threading.Thread(target=self._run, args=(conn, statement), daemon=True, name=f"copy-{staging}")
        self._thread.start()

    def _run(self, conn, statement: str) -> None:
        try:
            with conn.cursor() as cur:
                cur.copy_expert(statement, self, size=1 << 20)
        except BaseException as exc:  # re-raised in the caller's thread
            self._error = exc

    def read(self, size: int = -1) -> str:  # called by psycopg2 inside copy_expert
        item = self._queue.get()
        if item is CopyPipe._ABORT:
            raise RuntimeError("staging copy aborted")
        return item

    def send(self, text: str) -> None:
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(text, timeout=0.5)
                return
            except queue.Full:
                pass  # a slow copy or a dead one: the check below tells which
            if not self._thread.is_alive():
                raise self._error or RuntimeError("staging copy stopped")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.send("")  # end of data
            self._thread.join()
            if self._error is not None:
                raise self._error
        else:
            try:
                self._queue.put_nowait(CopyPipe._ABORT)
            except queue.Full:
                pass
            self._thread.join(timeout=5)
        return False


def copy_rejected_refs(cur, table: str, rejected: list[tuple[str, str]]) -> None:
    if rejected:
        buffer = io.StringIO(
            "".join(f"{table}\t{_copy_field(ref)}\t{_copy_field(reason)}\n" for ref, reason in rejected)
        )
        cur.copy_expert("COPY stg_rejected_refs (tbl, ref, reason) FROM STDIN", buffer)


# --- resolution ------------------------------------------------------------------------


def _merge_duplicates(cur, table: str, keys: tuple[str, ...], source: str | None = None) -> int:
    """Mark every row but the first (lowest seq) of each key as merged into that first row."""
    source = source or f"stg_{table} s"
    names = [f"k{i}" for i in range(len(keys))]
    keyed = ", ".join(f"{expr} AS {name}" for expr, name in zip(keys, names, strict=True))
    key_list = ", ".join(names)
    cur.execute(f"""
        WITH keyed AS NOT MATERIALIZED (
                 SELECT s.seq, s.legacy_key, {keyed} FROM {source} WHERE s.status = 'ok'),
             dup AS (SELECT {key_list} FROM keyed GROUP BY {key_list} HAVING count(*) > 1),
             ranked AS (SELECT keyed.seq, row_number() OVER w AS n,
                               first_value(keyed.legacy_key) OVER w AS survivor
                        FROM keyed JOIN dup USING ({key_list})
                        WINDOW w AS (PARTITION BY {key_list} ORDER BY keyed.seq))
        UPDATE stg_{table} t SET status = 'merged', merged_into = ranked.survivor
        FROM ranked WHERE t.seq = ranked.seq AND ranked.n > 1""")
    return cur.rowcount


def resolve(cur, layout: str, owner_id: int | None, private: bool = False) -> dict[str, dict[str, int]]:
    """Collapse duplicates, follow references, reject orphans. Returns counts per table."""
    for name, columns in ANALYZED_COLUMNS.items():
        cur.execute(f"SELECT to_regclass('stg_{name}') IS NOT NULL")
        if cur.fetchone()[0]:  # autovacuum never analyzes temp tables; skip the wide columns
            cur.execute(f"ANALYZE stg_{name} ({columns})")
    counts: dict[str, dict[str, int]] = {}
    if layout == "v1":
        counts["artists"] = {"merged": _merge_duplicates(cur, "artists", ("s.spotify_id",))}
        # legacy integer ids -> Spotify ids; a merged row's id points at its survivor's key
        cur.execute(
            scratch(
                private,
                """CREATE TEMP TABLE map_artist ON COMMIT DROP AS
                       SELECT DISTINCT ON (legacy_id) legacy_id, spotify_id FROM stg_artists
                       WHERE legacy_id IS NOT NULL ORDER BY legacy_id, seq""",
            )
        )
        cur.execute("ALTER TABLE map_artist ADD PRIMARY KEY (legacy_id)")
        counts["tracks"] = {"merged": _merge_duplicates(cur, "tracks", ("s.spotify_id",))}
        cur.execute("""SELECT count(*) FROM stg_tracks s WHERE s.artist_ref IS NOT NULL
                       AND s.status = 'ok'
                       AND NOT EXISTS (SELECT 1 FROM map_artist m WHERE m.legacy_id = s.artist_ref)""")
        counts["tracks"]["cleared_refs"] = cur.fetchone()[0]
        cur.execute(
            scratch(
                private,
                """CREATE TEMP TABLE map_track ON COMMIT DROP AS
                       SELECT DISTINCT ON (legacy_id) legacy_id, spotify_id FROM stg_tracks
                       WHERE legacy_id IS NOT NULL ORDER BY legacy_id, seq""",
            )
        )
        cur.execute("ALTER TABLE map_track ADD PRIMARY KEY (legacy_id)")
        cur.execute("ANALYZE map_artist; ANALYZE map_track")
        cur.execute("""
            UPDATE stg_entries s SET status = 'rejected', reason = coalesce(
                (SELECT 'orphan: track ' || r.ref || ' was rejected (' || r.reason || ')'
                 FROM stg_rejected_refs r WHERE r.tbl = 'tracks' AND r.ref = s.track_ref::text
                 LIMIT 1),
                'orphan: track_id ' || s.track_ref || ' does not exist in tracks')
            WHERE NOT EXISTS (SELECT 1 FROM map_track m WHERE m.legacy_id = s.track_ref)""")
        rejected = cur.rowcount
        merged = _merge_duplicates(
            cur,
            "entries",
            ("s.playlist_key", "m.spotify_id"),
            "stg_entries s JOIN map_track m ON m.legacy_id = s.track_ref",
        )
        counts["entries"] = {"merged": merged, "rejected": rejected}
    else:
        counts["tracks"] = {"merged": _merge_duplicates(cur, "tracks", ("s.spotify_id",))}
        cur.execute("""
            UPDATE stg_snapshots s SET status = 'rejected', reason = coalesce(
                (SELECT 'orphan: track ' || r.ref || ' was rejected (' || r.reason || ')'
                 FROM stg_rejected_refs r WHERE r.tbl = 'tracks' AND r.ref = s.track_spotify_id
                 LIMIT 1),
                'orphan: track ' || s.track_spotify_id || ' does not exist in tracks')
            WHERE NOT EXISTS (SELECT 1 FROM stg_tracks t WHERE t.spotify_id = s.track_spotify_id)""")
        rejected = cur.rowcount
        merged = _merge_duplicates(cur, "snapshots", ("s.track_spotify_id", "s.snapshot_date", "s.time_range"))
        rejected += _reject_rank_collisions(cur, owner_id)
        counts["snapshots"] = {"merged": merged, "rejected": rejected}
    return counts


def _reject_rank_collisions(cur, owner_id: int | None) -> int:
    """Two tracks cannot share a rank on one day and range (the deferred unique key)."""
    cur.execute("""
        WITH dup AS (SELECT time_range, snapshot_date, rank FROM stg_snapshots WHERE status = 'ok'
                     GROUP BY 1, 2, 3 HAVING count(*) > 1),
             ranked AS (SELECT s.seq, row_number() OVER w AS n, first_value(s.legacy_key) OVER w AS holder,
                               first_value(s.track_spotify_id) OVER w AS holder_track
                        FROM stg_snapshots s JOIN dup USING (time_range, snapshot_date, rank)
                        WHERE s.status = 'ok'
                        WINDOW w AS (PARTITION BY s.time_range, s.snapshot_date, s.rank ORDER BY s.seq))
        UPDATE stg_snapshots s SET status = 'rejected',
            reason = format('rank %s on %s (%s) is already held by snapshot %s (track %s)',
                            s.rank, s.snapshot_date, s.time_range, ranked.holder, ranked.holder_track)
        FROM ranked WHERE s.seq = ranked.seq AND ranked.n > 1""")
    rejected = cur.rowcount
    if owner_id is not None:
        cur.execute(
            """
            UPDATE stg_snapshots s SET status = 'rejected',
                reason = format('rank %%s on %%s (%%s) is already held in the target by track %%s',
                                s.rank, s.snapshot_date, s.time_range, t.track_id)
            FROM snapshots t
            WHERE s.status = 'ok' AND t.user_id = %s AND t.time_range = s.time_range
              AND t.snapshot_date = s.snapshot_date AND t.rank = s.rank
              AND t.track_id <> s.track_spotify_id""",
            (owner_id,),
        )
        rejected += cur.rowcount
    return rejected
