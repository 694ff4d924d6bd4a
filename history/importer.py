"""Import export files into ``plays``: stream, COPY into staging, resolve in SQL.

Two threads share the work so that both cores are busy: a parser thread reads each file
(each of Spotify's files whole through msgspec, a bigger one through ijson's C backend
one row at a time, so memory stays flat whatever the file's size) and turns rows into
COPY text in batches, one row per second of playback end; the calling thread COPYs each
batch straight into ``plays`` when the person has no play in its time span, else into a
staging table resolved into ``plays`` and ``tracks`` (history_db), while the next batch
is being parsed. Everything happens in ONE transaction: an unreadable file stops the
import with a message naming it, and the database is left as it was.

A file the user imported before (same SHA-256, looked for only among files of the same
size) is recognised before it is parsed and skipped; the plays' identity dedupes the
rest (see history_db).
"""

from __future__ import annotations

import io
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import ijson
import msgspec

from database import transaction
from history import history_db
from migration.load import ensure_owner
from wording import counted

from . import archive, formats
from .archive import BadInput, Source

BATCH_ROWS = 25_000  # rows per COPY + resolve: big enough to amortise, small enough to overlap
ANALYZE_AFTER = 10_000  # new plays after which the planner gets fresh statistics
# An extended file up to this size is decoded whole (whole_file_rows): ~6x faster than
# streaming it; Spotify's own files are ~12 MB (15,000 plays) each. Bigger ones stream
# through ijson, so memory stays flat however big a file someone hands in.
WHOLE_FILE_BYTES = 64 << 20
EXTENDED_ROWS = msgspec.json.Decoder(list[formats.ExtendedRow])
QUEUE_DEPTH = 3  # batches parsed ahead of the database (each a few MB of COPY text)

Progress = Callable[[str, int, int, int], None]  # (stage, bytes done, bytes total, rows done)


@dataclass
class FileOutcome:
    name: str
    kind: str
    rows: int = 0
    sha256: bytes = b""
    byte_size: int = 0
    already_imported: bool = False

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "kind": self.kind,
            "rows": self.rows,
            "already_imported": self.already_imported,
        }


@dataclass
class Batch:
    target: str  # formats.EXTENDED or formats.BASIC
    text: bytes  # COPY lines: formats.EXTENDED_LINE_COLUMNS or BASIC_COLUMNS
    rows: int
    duplicates: int = 0  # extended rows of a second an earlier row of the batch had (dropped)
    tracks: bytes = b""  # COPY lines (formats.TRACK_COLUMNS) of the tracks the import meets first here
    first: str = ""  # the batch's earliest and latest end of playback (UTC, to the second)
    last: str = ""


@dataclass
class ParseState:
    """What the parser thread shares with the database thread."""

    user_id: int = 0
    tally: formats.Tally = field(default_factory=formats.Tally)
    bytes_done: int = 0
    files: list = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    seen_tracks: set = field(default_factory=set)  # track ids of earlier batches (parser thread only)


class ExtendedBatch:
    """An extended batch in the making. One row per second of playback end (a play's
    identity: the first row of a second is kept, later ones of the batch are counted as
    duplicates), as a COPY line for plays itself; and the tracks the import meets for the
    first time, each named by its first row in the batch that names it (as ADD_NAMED_TRACKS
    prefers a named row)."""

    def __init__(self, state: ParseState):
        self.state = state
        self.prefix = f"{state.user_id}\t"
        self.suffix = f"\t{formats.EXTENDED_SOURCE}\n"
        self.lines: list[str] = []
        self.seconds: set[str] = set()
        self.tracks: dict[str, list[str]] = {}
        self.duplicates = 0
        self.first = self.last = ""

    def add(self, fields: list[str]) -> None:
        second = fields[0][:19]  # "YYYY-MM-DDTHH:MM:SS" in UTC, whichever way ts was written
        if second in self.seconds:
            self.duplicates += 1
            return
        self.seconds.add(second)
        if not self.first or second < self.first:
            self.first = second
        if second > self.last:
            self.last = second
        track_id = fields[1]
        if track_id is not formats.NULL and track_id not in self.state.seen_tracks:
            known = self.tracks.get(track_id)
            if known is None or (known[1] is formats.NULL and fields[2] is not formats.NULL):
                self.tracks[track_id] = fields[1:5]
        self.lines.append(self.prefix + formats.fields_line(fields) + self.suffix)

    def __len__(self) -> int:
        return len(self.lines) + self.duplicates

    def batch(self) -> Batch:
        self.state.seen_tracks.update(self.tracks)
        return Batch(
            formats.EXTENDED,
            "".join(self.lines).encode(),
            len(self.lines),
            self.duplicates,
            "".join(formats.fields_line(track) + "\n" for track in self.tracks.values()).encode(),
            self.first + "Z" if self.first else "",
            self.last + "Z" if self.last else "",
        )


def one_line(exc: Exception) -> str:
    """ijson's messages draw a picture over several lines; a person gets the first."""
    return (str(exc).strip().splitlines() or ["unknown error"])[0]


def streamed_rows(stream) -> Iterator:
    """A JSON list's items one at a time (ijson's C backend): flat memory, any size."""
    return ijson.items(stream, "item", use_float=True)


def whole_file_rows(reader: archive.MeteredReader) -> Iterator:
    """An extended file read whole and decoded at once by msgspec into ExtendedRow, which
    skips every field the import does not read.

    A file that does not decode that way (not valid JSON, a row that is not an object, a
    number past 64 bits) is handed on, from the bytes already read, to ijson, which finds
    the same rows and fails at the same place it always has: the fast way changes speed,
    never an outcome."""
    data = reader.read_rest()
    try:
        return iter(EXTENDED_ROWS.decode(data))
    except msgspec.DecodeError:  # ValidationError included
        return streamed_rows(io.BytesIO(data))


def rows_of(reader: archive.MeteredReader, source: Source) -> tuple[str, Iterator]:
    """The file's kind and an iterator over its rows, after checking its shape."""
    first = reader.first_byte()
    if first != b"[":
        what = "empty" if not first else "not a JSON list of plays (another kind of JSON file)"
        raise BadInput(f"{source.name}: {what}")
    if source.kind == formats.EXTENDED and source.size <= WHOLE_FILE_BYTES:
        items = whole_file_rows(reader)
    else:
        items = streamed_rows(reader)
    try:
        head = next(items, None)
    except ijson.JSONError as exc:
        raise BadInput(f"{source.name}: not valid JSON ({one_line(exc)})") from None
    if head is None:
        return source.kind or formats.EXTENDED, iter(())
    row_kind = formats.kind_by_row(head)
    if source.kind is not None and not formats.compatible(source.kind, row_kind):
        raise BadInput(f"{source.name}: its rows are not the shape its name promises (another kind of JSON file)")
    kind = source.kind or row_kind
    if kind is None:
        raise BadInput(f"{source.name}: not Spotify streaming history (its rows have no ts or endTime)")

    def chained():
        yield head
        yield from items

    return kind, chained()


def parse_source(source: Source, file_no: int, state: ParseState, put: Callable[[Batch], None]) -> FileOutcome:
    """Parse one file into batches of COPY text handed to ``put``."""

    def count(n: int) -> None:
        state.bytes_done += n

    reader = archive.MeteredReader(source.open(), source.name, source.size, count)
    try:
        kind, rows = rows_of(reader, source)
        outcome = FileOutcome(source.name, kind)
        tally, lines, extended = state.tally, [], ExtendedBatch(state)
        try:
            for number, row in enumerate(rows, 1):
                tally.rows += 1
                if kind == formats.EXTENDED:
                    fields = formats.extended_fields(row, tally, source.name, number)
                    if fields is not None:
                        extended.add(fields)
                        if len(extended) >= BATCH_ROWS:
                            put(extended.batch())
                            extended = ExtendedBatch(state)
                elif kind == formats.BASIC:
                    line = formats.basic_line(row, tally, source.name, file_no, number)
                    if line is not None:
                        lines.append(line)
                        if len(lines) >= BATCH_ROWS:
                            put(Batch(formats.BASIC, "".join(lines).encode(), len(lines)))
                            lines = []
                else:
                    formats.count_only(kind, row, tally, source.name, number)
                outcome.rows = number
        except ijson.JSONError as exc:
            raise BadInput(f"{source.name}: not valid JSON after row {outcome.rows} ({one_line(exc)})") from None
        if len(extended):
            put(extended.batch())
        if lines:
            put(Batch(formats.BASIC, "".join(lines).encode(), len(lines)))
        outcome.sha256, outcome.byte_size = reader.sha256.digest(), reader.bytes
        return outcome
    finally:
        reader.close()


def fingerprint(source: Source) -> bytes:
    """SHA-256 of a file's bytes, without parsing it."""
    reader = archive.MeteredReader(source.open(), source.name, source.size)
    try:
        while reader.read(archive.READ_SIZE):
            pass
        return reader.sha256.digest()
    finally:
        reader.close()


class Importer:
    """One import for one user on one connection; ``run()`` returns the summary."""

    def __init__(self, conn, user_id: int, sources: list[Source], progress: Progress | None = None, force=False):
        self.conn, self.user_id, self.sources = conn, user_id, sources
        self.progress = progress or (lambda stage, done, total, rows: None)
        self.force = force  # parse files even when their fingerprint is known (the benchmark)
        self.state = ParseState(user_id)
        self.bytes_total = sum(s.size for s in sources)
        self.counts: dict = {
            "new_plays": 0,
            "new_tracks": 0,
            "completed": 0,
            "already_known": 0,
            "duplicates": 0,
            "superseded_basic": 0,
        }
        self._last_report = 0.0
        self.fast = False  # plays written the set-based way (history_db.fast_path_possible)
        # extended batches COPYed straight into plays, and those resolved through staging
        # (copy_collided: tried straight into plays, rolled back and staged)
        self.batches = {"copied": 0, "staged": 0, "copy_collided": 0}

    def report(self, stage: str, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_report >= 0.5:
            self._last_report = now
            self.progress(stage, self.state.bytes_done, self.bytes_total, self.state.tally.rows)

    def run(self) -> dict:
        started = time.monotonic()
        with transaction(self.conn) as cur:
            known_sizes = set() if self.force else history_db.imported_sizes(cur, self.user_id)
            to_parse = self.skip_known(cur, known_sizes)
            history_db.create_staging(cur)
            self.fast = history_db.fast_path_possible(cur)
            supersede = history_db.has_basic_plays(cur, self.user_id)
            had_plays = history_db.play_count(cur, self.user_id) > 0
            self.pipeline(cur, to_parse, supersede)
            self.report("Matching account-data plays to known ones", force=True)
            basic = history_db.resolve_basic(cur, self.user_id)
            self.counts["new_plays"] += basic["new_plays"]
            self.counts["already_known"] += basic["already_known"]
            self.counts["duplicates"] += basic["duplicates"]
            parsed = [f for f in self.state.files if not f.already_imported]
            history_db.remember_files(
                cur,
                self.user_id,
                None,
                [{"sha256": f.sha256, "byte_size": f.byte_size, "kind": f.kind, "rows": f.rows} for f in parsed],
            )
            if self.counts["new_plays"] >= ANALYZE_AFTER and not had_plays:
                self.report("Updating statistics", force=True)
                history_db.analyze_plays(cur)
        return self.summary(basic, time.monotonic() - started)

    def skip_known(self, cur, known_sizes: set) -> list[tuple[int, Source]]:
        """Sources to parse; a file of a known size is hashed first and skipped if known."""
        to_parse = []
        for file_no, source in enumerate(self.sources, 1):
            if source.size in known_sizes:
                self.report(f"Checking {source.name}")
                digest = fingerprint(source)
                before = history_db.imported_file(cur, self.user_id, digest)
                if before is not None:
                    self.state.bytes_done += source.size
                    self.state.files.append(
                        FileOutcome(source.name, before["kind"], before["rows"], digest, source.size, True)
                    )
                    continue
            to_parse.append((file_no, source))
        return to_parse

    def pipeline(self, cur, to_parse: list[tuple[int, Source]], supersede_basic: bool) -> None:
        batches: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        state = self.state

        def put(item) -> None:
            while not state.stop.is_set():
                try:
                    batches.put(item, timeout=0.2)
                    return
                except queue.Full:
                    continue
            raise _Stopped

        def parse_all() -> None:
            try:
                for file_no, source in to_parse:
                    put(("file", source.name))
                    state.files.append(parse_source(source, file_no, state, put))
                put(None)
            except _Stopped:
                pass
            except BaseException as exc:  # handed to the database thread, which raises it
                try:
                    put(exc)
                except _Stopped:
                    pass

        parser = threading.Thread(target=parse_all, name="history-parser", daemon=True)
        parser.start()
        stage = "Reading"
        try:
            while True:
                item = batches.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                if isinstance(item, tuple):
                    stage = f"Reading {item[1]}"
                    self.report(stage)
                    continue
                self.store(cur, item, supersede_basic)
                self.report(stage)
        finally:
            state.stop.set()
            parser.join(timeout=30)

    def store(self, cur, batch: Batch, supersede_basic: bool) -> None:
        """One batch into the database. An extended batch goes straight into plays (one
        COPY) when the set-based path is possible, its tracks are held, and the person has
        no play in or near its time span (nothing to complete, supersede or dedupe against);
        otherwise, or when the COPY collides with a play another writer stored meanwhile
        (rolled back to its savepoint), it is staged and resolved (history_db)."""
        if batch.target == formats.BASIC:
            history_db.copy_basic(cur, io.BytesIO(batch.text), formats.BASIC_COLUMNS)
            return
        fast, held = self.fast, None
        if fast:
            held = history_db.hold_tracks(cur, batch.tracks, formats.TRACK_COLUMNS)
            fast = held["added"] + held["existing"] == held["wanted"]
        copied = None
        if fast and held is not None and not history_db.span_has_plays(cur, self.user_id, batch.first, batch.last):
            copied = history_db.copy_new_plays(
                cur, self.user_id, io.BytesIO(batch.text), formats.EXTENDED_LINE_COLUMNS, batch.first, batch.last
            )
            if copied is None:
                self.batches["copy_collided"] += 1
        if copied is not None and held is not None:
            counts = {"new_plays": copied, "new_tracks": held["added"], "completed": 0, "already_known": 0}
            self.batches["copied"] += 1
        else:
            history_db.copy_extended(cur, io.BytesIO(batch.text), formats.EXTENDED_LINE_COLUMNS)
            counts = history_db.resolve_extended(cur, self.user_id, supersede_basic, fast, held)
            self.batches["staged"] += 1
        counts["duplicates"] = counts.get("duplicates", 0) + batch.duplicates
        for key in ("new_plays", "new_tracks", "completed", "already_known", "duplicates"):
            self.counts[key] += counts[key]

    def summary(self, basic: dict, seconds: float) -> dict:
        tally = self.state.tally.as_dict()
        files = [f.as_dict() for f in self.state.files]
        return {
            **self.counts,
            "linked_by_name": basic["linked"],
            "no_free_second": basic["no_free_second"],
            "files": files,
            "files_already_imported": sum(1 for f in files if f["already_imported"]),
            "rows": tally["rows"],
            "not_plays": {k: tally[k] for k in ("zero_ms", "podcast", "audiobook", "video", "unnamed")},
            "bad_rows": sum(tally["bad"].values()),
            "bad": tally["bad"],
            "bad_examples": tally["bad_examples"],
            "nothing_new": self.counts["new_plays"] == 0 and self.counts["completed"] == 0,
            "batches": dict(self.batches),
            "seconds": round(seconds, 2),
        }


class _Stopped(Exception):
    """The database thread gave up; the parser stops quietly."""


def owner(cur, spotify_id: str) -> int:
    """The user a history belongs to, created if unknown, as the migration's ``--user`` does."""
    user_id = ensure_owner(cur, spotify_id)
    if user_id is None:
        raise BadInput(f"the user {spotify_id!r} could not be created")
    return user_id


def import_files(
    conn,
    user_id: int,
    paths: Sequence[tuple[str, str | None]],
    progress: Progress | None = None,
    max_unpacked: int = archive.MAX_UNPACKED,
    force: bool = False,
) -> dict:
    """Import every history file in ``paths`` ((path, label) pairs: zips or JSON files)
    for the user, in one transaction on ``conn``. Raises BadInput (nothing changed)."""
    sources = list(archive.all_sources(paths, max_unpacked))
    return Importer(conn, user_id, sources, progress, force).run()


def describe(summary: dict) -> str:
    """The summary in one or two sentences, for the CLI and the page."""
    files = len(summary["files"])
    if summary["files_already_imported"] == files and files:
        return f"Nothing new: {'this file was' if files == 1 else f'all {files} history files were'} imported before."
    not_plays = summary["not_plays"]
    spoken = not_plays["podcast"] + not_plays["audiobook"] + not_plays["video"]
    parts = [
        counted(summary["new_plays"], "new play") if not summary["nothing_new"] else "Nothing new",
        f"{summary['already_known']:,} already known",
    ]
    if summary["completed"]:
        parts.append(f"{counted(summary['completed'], 'known play')} completed with the export's details")
    if summary["new_tracks"]:
        parts.append(f"{counted(summary['new_tracks'], 'track')} new to the catalogue")
    skipped = [
        counted(spoken, "podcast, audiobook or video row") if spoken else "",
        f"{counted(not_plays['zero_ms'], 'row')} that never played (0 ms)" if not_plays["zero_ms"] else "",
        f"{counted(not_plays['unnamed'], 'row')} without a track" if not_plays["unnamed"] else "",
        counted(summary["bad_rows"], "bad row") if summary["bad_rows"] else "",
    ]
    text = f"{', '.join(parts)} from {counted(summary['rows'], 'row')} in {counted(files, 'file')}."
    skipped = [s for s in skipped if s]
    if skipped:
        text += " Not stored as plays: " + ", ".join(skipped) + "."
    return text
