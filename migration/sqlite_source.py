"""Reading a legacy SQLite install: open it safely, tell its layout, stream cleaned rows.

Two layouts exist (see ../shared/legacy-sqlite.md): v1 artists/tracks/playlist_tracks
and v2 tracks/snapshots. Each source table has a spec: which columns it needs, which it
may lack, and a cleaner that turns one raw row into one staging row (the shape
``migration_load`` copies into PostgreSQL) plus a checksum of the migrated content.
Rows are read in rowid order with ``fetchmany``, so memory stays flat whatever the size.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from hashlib import md5
from pathlib import Path

from .cleaning_rules import (
    FIELD_SEP,
    INT4_MAX,
    Invalid,
    RowIssues,
    clean_day,
    clean_int,
    clean_json_object,
    clean_release_date,
    clean_spotify_id,
    clean_text,
    clean_timestamp_text,
    has_bad_chars,
    row_checksum,
)

SQLITE_HEADER = b"SQLite format 3\x00"
TIME_RANGES = ("short_term", "medium_term", "long_term")
BIGINT_MAX = 2**63 - 1


def after_rowid(after: int | None) -> tuple[str, tuple]:
    """(condition, parameters) for the rows after a rowid; every row for None (no integer
    is below SQLite's lowest rowid, -2**63, so ``rowid > -2**63`` would leave out a row
    that has it)."""
    return ("true", ()) if after is None else ("rowid > ?", (after,))


class LegacyInputError(Exception):
    """The SQLite file cannot be migrated as it is; the message is one line for a person."""


@dataclass
class TableSpec:
    name: str  # table name in SQLite
    staging: str  # staging table it feeds
    required: tuple[str, ...]
    optional: tuple[str, ...]
    cleaner: Callable  # (row in `columns` order) -> (staging tuple, issues)
    legacy_key: Callable  # (row, rowid) -> str
    present_columns: list[str] = field(default_factory=list)

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


@dataclass
class LegacySource:
    path: Path
    conn: sqlite3.Connection
    layout: str  # "v1" or "v2"
    tables: list[TableSpec]
    missing_tables: list[str]

    shared_snapshot: bool = True  # other connections see what this one sees (not WAL)

    def count(self, spec: TableSpec) -> int:
        if spec.name in self.missing_tables:
            return 0
        with self.reading():
            return self.conn.execute(f'SELECT count(*) FROM "{spec.name}"').fetchone()[0]

    def reading(self):
        return reading(self.path)

    def selected(self, spec: TableSpec) -> str:
        """The select list of a table's columns (NULL for an optional column it lacks)."""
        return ", ".join(f'"{c}"' if c in spec.present_columns else f'NULL AS "{c}"' for c in spec.columns)

    def ranges(self, spec: TableSpec, chunk_size: int):
        """Yield (after, up to) rowid bounds of ``chunk_size`` rows each, in rowid order."""
        if spec.name in self.missing_tables:
            return
        last: int | None = None  # the first range has no lower bound: a rowid may be -2**63
        while True:
            after, params = after_rowid(last)
            with self.reading():
                row = self.conn.execute(
                    f'SELECT rowid FROM "{spec.name}" WHERE {after} ORDER BY rowid LIMIT 1 OFFSET ?',
                    (*params, chunk_size - 1),
                ).fetchone()
                if row is None:
                    row = self.conn.execute(f'SELECT max(rowid) FROM "{spec.name}" WHERE {after}', params).fetchone()
                    if row[0] is not None:
                        yield last, row[0]
                    return
            yield last, row[0]
            last = row[0]

    def stream(self, spec: TableSpec, chunk_size: int = 5000):
        """Yield lists of (rowid, *columns) in rowid order, one keyset page at a time.

        Text is decoded at C speed; a page holding invalid UTF-8 is read again with
        surrogateescape so the cleaners see (and report) the bad bytes instead of crashing.
        """
        if spec.name in self.missing_tables:
            return
        last: int | None = None
        while True:
            after, params = after_rowid(last)
            query = (
                f'SELECT rowid, {self.selected(spec)} FROM "{spec.name}" '
                f"WHERE {after} ORDER BY rowid LIMIT {int(chunk_size)}"
            )
            with self.reading():
                rows = fetch_lenient(self.conn, query, params)
            if not rows:
                return
            last = rows[-1][0]
            yield rows

    def original_row(self, table: str, rowid: int) -> dict | None:
        """The untouched source row, for report lines decided in PostgreSQL."""
        self.conn.text_factory = _lenient_text
        try:
            with self.reading():
                cursor = self.conn.execute(f'SELECT * FROM "{table}" WHERE rowid = ?', (rowid,))
                row = cursor.fetchone()
        finally:
            self.conn.text_factory = str
        return None if row is None else dict(zip([d[0] for d in cursor.description], row, strict=True))

    def close(self):
        self.conn.close()


def _lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


@contextlib.contextmanager
def reading(path):
    """A damaged file (a page overwritten, truncated) fails deep inside a read: say so in
    one line naming the file, whichever row it was."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise LegacyInputError(f"{path}: the SQLite file is damaged ({exc})") from None


def fetch_lenient(conn: sqlite3.Connection, query: str, parameters: tuple) -> list:
    """All rows of a query, text decoded at C speed; rows holding invalid UTF-8 are read
    again with surrogateescape so the cleaners see (and report) the bad bytes."""
    try:
        return conn.execute(query, parameters).fetchall()
    except sqlite3.OperationalError as exc:
        if "decode" not in str(exc):
            raise
    conn.text_factory = _lenient_text
    try:
        return conn.execute(query, parameters).fetchall()
    finally:
        conn.text_factory = str


def connect_read_only(path: Path, busy_timeout: float = 2.0) -> sqlite3.Connection:
    """A read-only connection inside one read transaction (a consistent snapshot)."""
    conn = sqlite3.connect(
        path.resolve().as_uri() + "?mode=ro",
        uri=True,
        timeout=busy_timeout,
        isolation_level=None,
        check_same_thread=False,
    )
    conn.execute("BEGIN")  # one snapshot for every read, released only at close
    return conn


def open_legacy(path: str | Path, busy_timeout: float = 2.0) -> LegacySource:
    """Open read-only, inside one read transaction (a consistent snapshot), and detect."""
    path = Path(path)
    header = read_header(path)
    if header != SQLITE_HEADER:
        what = "an empty file" if not header else "not a SQLite 3 database (wrong header)"
        raise LegacyInputError(f"{path}: {what}")
    try:
        conn = connect_read_only(path, busy_timeout)
        master = conn.execute("SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')").fetchall()
        # a bound name, never one spliced into the statement: names may hold any character
        columns = {
            name: [r[0] for r in conn.execute("SELECT name FROM pragma_table_info(?)", (name,))]
            for kind, name in master
            if kind == "table"
        }
    except sqlite3.DatabaseError as exc:
        message = str(exc)
        if "locked" in message or "busy" in message:
            raise LegacyInputError(
                f"{path}: the database is locked by another process (stop the old app or finish its write, then retry)"
            ) from None
        raise LegacyInputError(f"{path}: not a readable SQLite database ({message})") from None
    try:
        refuse_views({name for kind, name in master if kind == "view"})
        layout, specs, missing = detect_layout(columns)
        # in rollback-journal mode this connection's read lock keeps every writer out, so
        # the cleaning processes' own connections read the same rows; a WAL file lets
        # writers commit, and each new connection would see another snapshot
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise LegacyInputError(f"{path}: not a readable SQLite database ({exc})") from None
    except LegacyInputError as exc:
        conn.close()
        raise LegacyInputError(f"{path}: {exc}") from None
    return LegacySource(path, conn, layout, specs, missing, shared_snapshot=str(journal).lower() != "wal")


def read_header(path: Path) -> bytes:
    """The first bytes of a regular file; anything else is refused before it is read.

    Opened without blocking, and checked on the open descriptor: a FIFO would otherwise
    block the read forever (no writer), and a device would stream bytes forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise LegacyInputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise LegacyInputError(f"{path}: is a directory, not a SQLite file") from None
    except OSError as exc:
        raise LegacyInputError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise LegacyInputError(f"{path}: is a directory, not a SQLite file")
        if not stat.S_ISREG(mode):
            raise LegacyInputError(f"{path}: not a regular file (a pipe, socket or device cannot be migrated)")
        return os.read(fd, len(SQLITE_HEADER))
    except OSError as exc:
        raise LegacyInputError(f"{path}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


# Views are refused rather than read: a view has no rowid, so its rows can neither be read
# in stable pages nor named in the rejects report, and the legacy app never created one, so
# a view under an expected name means the file was edited by hand (often over the real
# rows, which would then be migrated twice or not at all). A person decides which rows are
# the data; the tool does not guess.
EXPECTED_TABLES = ("artists", "tracks", "playlist_tracks", "snapshots")


def refuse_views(views: set[str]) -> None:
    for name in EXPECTED_TABLES:
        if name in views:
            raise LegacyInputError(
                f"{name} is a view, not a table; the legacy app only wrote tables "
                f"(replace the view with a table holding its rows, then retry)"
            )


def detect_layout(columns: dict[str, list[str]]):
    """('v1'|'v2', table specs, absent tables) from {table: [columns]}."""
    tracks = columns.get("tracks", [])
    v1 = "artists" in columns or "playlist_tracks" in columns or "spotify_id" in tracks
    v2 = "snapshots" in columns or "track_id" in tracks
    found = ", ".join(sorted(columns)) or "none"
    if v1 and v2:
        raise LegacyInputError(f"ambiguous layout: both v1 and v2 tables present (tables: {found})")
    if not (v1 or v2):
        raise LegacyInputError(
            f"unknown layout: expected artists/tracks/playlist_tracks (v1) or tracks/snapshots (v2) (tables: {found})"
        )
    layout = "v1" if v1 else "v2"
    specs = v1_specs() if v1 else v2_specs()
    missing = []
    for spec in specs:
        if spec.name not in columns:
            missing.append(spec.name)
            continue
        present = columns[spec.name]
        lacking = [c for c in spec.required if c not in present]
        if lacking:
            raise LegacyInputError(f"unknown layout: {layout} table {spec.name} lacks column(s) {', '.join(lacking)}")
        spec.present_columns = present
    return layout, specs, missing


# --- cleaners: one raw row -> (staging tuple, issues) -----------------------------------
# Staging shapes (see migration_load.STAGING_DDL):
#   artists:   spotify_id, legacy_id, name, created_at, src_md5
#   tracks:    spotify_id, legacy_id, name, artist_ref, artist_name, album_name,
#              duration_ms, release_date, release_date_precision, explicit, popularity,
#              spotify_url, raw_json, audio_features, created_at, updated_at,
#              album_release_date, src_md5
#   entries:   playlist_key, track_ref, position, added_at, src_md5
#   snapshots: track_spotify_id, snapshot_date, time_range, rank, src_md5


# A track's checksum covers its target columns: every staging field except legacy_id,
# artist_ref and album_release_date, which only steer the load (verify.checksum_sql
# recomputes the same digest from the target row).
TRACK_DIGEST_FIELDS = (0, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)


def with_track_checksum(staged: tuple) -> tuple:
    """The staging tuple of a track with its checksum appended (src_md5)."""
    return (*staged, row_checksum([staged[i] for i in TRACK_DIGEST_FIELDS]))


def _legacy_id(value, issues):
    try:
        return clean_int(value, "id", issues, 0, BIGINT_MAX)
    except Invalid:
        return None


def clean_v1_artist(row):
    legacy_id, spotify_id, name, created_at = row
    issues = RowIssues()
    spotify_id = clean_spotify_id(spotify_id, "spotify_id", issues)
    name = clean_text(name, "name", issues, required=True)
    created_at = _optional(clean_timestamp_text, created_at, "created_at", issues)
    checksum = row_checksum((spotify_id, name, created_at))
    return (spotify_id, _legacy_id(legacy_id, issues), name, created_at, checksum), issues


def clean_v1_track(row):
    (
        legacy_id,
        spotify_id,
        name,
        artist_id,
        album_name,
        release_date,
        duration_ms,
        popularity,
        audio_features,
        created_at,
    ) = row
    issues = RowIssues()
    spotify_id = clean_spotify_id(spotify_id, "spotify_id", issues)
    name = clean_text(name, "name", issues, required=True)
    artist_ref = _optional(clean_int, artist_id, "artist_id", issues, 0, BIGINT_MAX)
    album_name = clean_text(album_name, "album_name", issues)
    release_date, precision = _optional_pair(clean_release_date, release_date, "release_date", issues)
    duration_ms = _optional(clean_int, duration_ms, "duration_ms", issues, 0, INT4_MAX)
    popularity = _optional(clean_int, popularity, "popularity", issues, 0, 100)
    audio_features, _ = _optional_pair(clean_json_object, audio_features, "audio_features", issues)
    created_at = _optional(clean_timestamp_text, created_at, "created_at", issues)
    staged = (
        spotify_id,
        _legacy_id(legacy_id, issues),
        name,
        artist_ref,
        None,
        album_name,
        duration_ms,
        release_date,
        precision,
        None,
        popularity,
        None,
        "{}",
        audio_features,
        created_at,
        None,
        None,
    )
    return with_track_checksum(staged), issues


def clean_v1_entry(row):
    _, playlist_id, track_id, position, created_at = row
    issues = RowIssues()
    playlist_key = clean_text(playlist_id, "playlist_id", issues, required=True)
    track_ref = clean_int(track_id, "track_id", issues, 0, BIGINT_MAX, required=True)
    position = clean_int(position, "position", issues, 0, INT4_MAX, required=True)
    added_at = _optional(clean_timestamp_text, created_at, "created_at", issues)
    checksum = row_checksum((playlist_key, position, added_at))
    return (playlist_key, track_ref, position, added_at, checksum), issues


def clean_v2_track(row):
    (track_id, name, artist_name, album_name, duration_ms, spotify_url, raw_json, created_at, updated_at) = row
    issues = RowIssues()
    spotify_id = clean_spotify_id(track_id, "track_id", issues)
    raw_json, payload = _optional_pair(clean_json_object, raw_json, "raw_json", issues)
    if (name is None or name == "") and payload and isinstance(payload.get("name"), str):
        name = payload["name"]  # lossless: the payload names the track
        issues.repairs.append("name: taken from raw_json")
    name = clean_text(name, "name", issues, required=True)
    artist_name = clean_text(artist_name, "artist_name", issues)
    album_name = clean_text(album_name, "album_name", issues)
    duration_ms = _optional(clean_int, duration_ms, "duration_ms", issues, 0, INT4_MAX)
    spotify_url = clean_text(spotify_url, "spotify_url", issues)
    created_at = _optional(clean_timestamp_text, created_at, "created_at", issues)
    updated_at = _optional(clean_timestamp_text, updated_at, "updated_at", issues)
    release_date = precision = explicit = popularity = album_release_date = None
    if payload:
        album = payload.get("album")
        if isinstance(album, dict) and isinstance(album.get("release_date"), str):
            album_release_date = album["release_date"]
            try:  # derived columns: raw_json keeps the original either way
                release_date, precision = clean_release_date(album_release_date, "release_date", RowIssues())
            except Invalid:
                pass
        if isinstance(payload.get("explicit"), bool):
            explicit = payload["explicit"]
        popularity_value = payload.get("popularity")
        if type(popularity_value) is int and 0 <= popularity_value <= 100:
            popularity = popularity_value
    raw_json = raw_json or "{}"
    staged = (
        spotify_id,
        None,
        name,
        None,
        artist_name,
        album_name,
        duration_ms,
        release_date,
        precision,
        explicit,
        popularity,
        spotify_url,
        raw_json,
        None,
        created_at,
        updated_at,
        album_release_date,
    )
    return with_track_checksum(staged), issues


def clean_v2_snapshot(row):
    track_id, snapshot_date, time_range, rank, _ = row
    issues = RowIssues()
    track = clean_spotify_id(track_id, "track_id", issues)
    day = clean_day(snapshot_date, "snapshot_date", issues)
    if time_range not in TIME_RANGES:
        time_range = clean_text(time_range, "time_range", issues, required=True)
        normalised = time_range.strip().lower().replace("-", "_").replace(" ", "_")
        if normalised not in TIME_RANGES:
            raise Invalid(f"time_range {time_range!r} is not one of {', '.join(TIME_RANGES)}")
        issues.repairs.append("time_range: case/spacing normalised")
        time_range = normalised
    if type(rank) is not int or not 0 < rank <= INT4_MAX:
        rank = clean_int(rank, "rank", issues, 1, INT4_MAX, required=True)
    checksum = md5(
        f"{track}{FIELD_SEP}{day.isoformat()}{FIELD_SEP}{time_range}{FIELD_SEP}{rank}".encode(), usedforsecurity=False
    ).hexdigest()  # row_checksum, unrolled for the biggest table
    return (track, day, time_range, rank, checksum), issues


def _optional(rule, value, name, issues, *args):
    """Apply a rule to an optional column: a value it refuses is cleared and reported."""
    try:
        return rule(value, name, issues, *args)
    except Invalid as exc:
        issues.dropped.append(str(exc) + " (value cleared)")
        return None


def _optional_pair(rule, value, name, issues):
    try:
        return rule(value, name, issues)
    except Invalid as exc:
        issues.dropped.append(str(exc) + " (value cleared)")
        return None, None


def _key(position):
    def legacy_key(row, rowid):
        value = row[position]
        if value is None:
            return f"rowid:{rowid}"
        text = value if value.__class__ is str else str(value)
        return ascii(text) if has_bad_chars(text) else text  # NUL, bad UTF-8

    return legacy_key


def v1_specs():
    return [
        TableSpec("artists", "artists", ("id", "spotify_id", "name"), ("created_at",), clean_v1_artist, _key(0)),
        TableSpec(
            "tracks",
            "tracks",
            ("id", "spotify_id", "name"),
            ("artist_id", "album_name", "release_date", "duration_ms", "popularity", "audio_features", "created_at"),
            clean_v1_track,
            _key(0),
        ),
        TableSpec(
            "playlist_tracks",
            "entries",
            ("id", "playlist_id", "track_id", "position"),
            ("created_at",),
            clean_v1_entry,
            _key(0),
        ),
    ]


def v2_specs():
    return [
        TableSpec(
            "tracks",
            "tracks",
            ("track_id", "name"),
            ("artist_name", "album_name", "duration_ms", "spotify_url", "raw_json", "created_at", "updated_at"),
            clean_v2_track,
            _key(0),
        ),
        TableSpec(
            "snapshots",
            "snapshots",
            ("track_id", "snapshot_date", "time_range", "rank"),
            ("id",),
            clean_v2_snapshot,
            _key(4),
        ),
    ]


@functools.cache
def specs_for(layout: str) -> dict[str, TableSpec]:
    """The table specs of a layout by SQLite table name (what cleaning workers look up)."""
    return {spec.name: spec for spec in (v1_specs() if layout == "v1" else v2_specs())}
