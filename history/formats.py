"""The files of a Spotify data export and what each row of them becomes.

Two packages carry listening history (Spotify's "Understanding my data" page,
https://support.spotify.com/us/article/understanding-my-data/):

- **Extended streaming history** (weeks to arrive): ``Streaming_History_Audio_<years>_<n>.json``
  (older exports: ``endsong_<n>.json``) and ``Streaming_History_Video_<years>.json``, each a
  JSON array of flat objects: ``ts`` (when playback ENDED, UTC), ``ms_played``,
  ``spotify_track_uri``, ``master_metadata_track_name`` / ``_album_artist_name`` /
  ``_album_album_name``, ``episode_*`` and ``audiobook_*`` for spoken word, ``reason_start``,
  ``reason_end``, ``shuffle``, ``skipped``, ``offline``, ``offline_timestamp``,
  ``incognito_mode``, ``platform``, ``conn_country``, and private fields under two
  generations of names (``username``, ``ip_addr`` or ``ip_addr_decrypted``,
  ``user_agent_decrypted``).
- **Account data** (days to arrive): ``StreamingHistory_music_<n>.json`` (older:
  ``StreamingHistory<n>.json``) with ``endTime`` ("YYYY-MM-DD HH:MM", UTC), ``artistName``,
  ``trackName``, ``msPlayed`` for the last year; ``StreamingHistory_podcast_<n>.json`` with
  ``podcastName`` and ``episodeName``.

A row becomes the fields of one line of COPY text (for plays or the importer's staging
table), or a counted reason why it is not a play. An extended row is read through
``ExtendedRow``, which names the only fields the import ever looks at: the private ones
are skipped by the decoder without becoming Python strings, so they cannot be stored or
logged.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

EXTENDED = "extended"  # Streaming_History_Audio_*, endsong_*: plays with URIs and facts
EXTENDED_VIDEO = "extended_video"  # Streaming_History_Video_*: counted, not stored
BASIC = "basic"  # StreamingHistory_music_*: names and minutes only
BASIC_PODCAST = "basic_podcast"  # StreamingHistory_podcast_*: counted, not stored
KINDS = (EXTENDED, EXTENDED_VIDEO, BASIC, BASIC_PODCAST)

NAME_PATTERNS = (
    (re.compile(r"^streaming_history_audio_.*\.json$", re.I), EXTENDED),
    (re.compile(r"^endsong(_\d+)?\.json$", re.I), EXTENDED),
    (re.compile(r"^streaming_history_video_.*\.json$", re.I), EXTENDED_VIDEO),
    (re.compile(r"^streaminghistory_music_\d+\.json$", re.I), BASIC),
    (re.compile(r"^streaminghistory\d*\.json$", re.I), BASIC),
    (re.compile(r"^streaminghistory_podcast_\d+\.json$", re.I), BASIC_PODCAST),
)


class ExtendedRow(msgspec.Struct, gc=False):
    """The fields of an extended-history row that the import reads, and nothing else.

    Values stay untyped (``Any``): a bad value is one rejected row (``extended_fields``),
    not a failed file. The two fields a row is recognised by are ``UNSET`` when absent,
    so ``kind_by_row`` can tell a missing key from a null, as it does for a dict."""

    ts: Any = msgspec.UNSET
    ms_played: Any = msgspec.UNSET
    spotify_track_uri: Any = None
    master_metadata_track_name: Any = None
    master_metadata_album_artist_name: Any = None
    master_metadata_album_album_name: Any = None
    reason_start: Any = None
    reason_end: Any = None
    skipped: Any = None
    shuffle: Any = None
    offline: Any = None
    platform: Any = None
    conn_country: Any = None
    spotify_episode_uri: Any = None
    episode_name: Any = None
    episode_show_name: Any = None
    audiobook_uri: Any = None
    audiobook_title: Any = None
    audiobook_chapter_uri: Any = None


# The fields a row's shape is recognised by (its first row), per kind.
EXTENDED_KEYS = {"ts", "ms_played"}
BASIC_MUSIC_KEYS = {"endTime", "artistName", "trackName", "msPlayed"}
BASIC_PODCAST_KEYS = {"endTime", "podcastName", "episodeName", "msPlayed"}

# What the staging tables receive, in COPY column order (history_db creates them).
EXTENDED_COLUMNS = (
    "played_at",
    "track_id",
    "track_name",
    "artist_name",
    "album_name",
    "ms_played",
    "reason_start",
    "reason_end",
    "skipped",
    "shuffle",
    "offline",
    "platform",
    "country",
)
# An extended batch's COPY lines: the person, the row's fields, the source. The same lines
# go straight into plays or into the staging table (history_db).
EXTENDED_LINE_COLUMNS = ("user_id", *EXTENDED_COLUMNS, "source")
EXTENDED_SOURCE = "export"
# A track the import meets first in a batch, as the batch's track lines name it.
TRACK_COLUMNS = ("spotify_id", "name", "artist_name", "album_name")
BASIC_COLUMNS = ("file_no", "row_no", "played_minute", "track_name", "artist_name", "ms_played")

# Spotify started in 2006 (its service in 2008): an earlier "ts" is not a real play.
EARLIEST = datetime(2006, 1, 1, tzinfo=UTC)
TRACK_URI = re.compile(r"^spotify:track:([0-9A-Za-z]{22})$")
NEEDS_COPY_ESCAPE = re.compile(r"[\\\t\n\r\x00]")
NEEDS_LINE_ESCAPE = re.compile(r"[\\\n\r\x00]")  # in a tab-joined line; stray tabs are counted
MAX_MS_PLAYED = 2**31 - 1
MAX_NAME = 1000  # characters kept of a name; longer ones are not real titles
MAX_SHORT = 100  # platform, reasons
NULL = "\\N"  # COPY's NULL; fields compare to it by identity, so a name spelt \N stays a name


def kind_by_name(name: str) -> str | None:
    """The kind of export file a name says, from its last path part; None: not history."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    for pattern, kind in NAME_PATTERNS:
        if pattern.match(base):
            return kind
    return None


def kind_by_row(row) -> str | None:
    """The kind a file's first row has, or None when it is another shape of JSON."""
    if type(row) is ExtendedRow:
        return EXTENDED if row.ts is not msgspec.UNSET and row.ms_played is not msgspec.UNSET else None
    if not isinstance(row, dict):
        return None
    keys = row.keys()
    if EXTENDED_KEYS <= keys:
        return EXTENDED
    if BASIC_MUSIC_KEYS <= keys:
        return BASIC
    if BASIC_PODCAST_KEYS <= keys:
        return BASIC_PODCAST
    return None


def compatible(named: str, first_row_kind: str | None) -> bool:
    """Whether a file's first row fits the kind its name promised."""
    if named in (EXTENDED, EXTENDED_VIDEO):
        return first_row_kind == EXTENDED
    return first_row_kind == named


@dataclass
class Tally:
    """What an import saw, row by row: plays staged and every reason a row is not one."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    rows: int = 0
    staged: int = 0
    zero_ms: int = 0  # music rows with ms_played = 0: a stream that never played
    podcast: int = 0
    audiobook: int = 0
    video: int = 0
    unnamed: int = 0  # a row with neither a track URI nor names (Spotify lost its metadata)
    bad: Counter = field(default_factory=Counter)  # reason -> rows
    bad_examples: list = field(default_factory=list)  # (file, row number, reason), the first few

    def __post_init__(self):
        self.latest = self.now + timedelta(days=1)
        self.earliest_text = EARLIEST.strftime("%Y-%m-%dT%H:%M:%SZ")  # ISO text sorts like time
        self.latest_text = self.latest.strftime("%Y-%m-%dT%H:%M:%SZ")

    def reject(self, file_name: str, row_number: int, reason: str) -> None:
        self.bad[reason] += 1
        if len(self.bad_examples) < 10:
            self.bad_examples.append((file_name, row_number, reason))

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "staged": self.staged,
            "zero_ms": self.zero_ms,
            "podcast": self.podcast,
            "audiobook": self.audiobook,
            "video": self.video,
            "unnamed": self.unnamed,
            "bad": dict(self.bad),
            "bad_examples": [list(e) for e in self.bad_examples],
        }


def copy_text(value) -> str:
    """A string as a COPY text field: NUL dropped (PostgreSQL text cannot hold it), the
    separators escaped; anything that is not a string is NULL."""
    if type(value) is not str:
        return "\\N"
    if NEEDS_COPY_ESCAPE.search(value):
        value = (
            value.replace("\x00", "")
            .replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def name_text(value) -> str:
    if type(value) is not str or not value.strip():
        return "\\N"
    return copy_text(value[:MAX_NAME])


def country_code(value) -> str:
    return value.upper() if type(value) is str and len(value) == 2 and value.isalpha() else NULL


def parse_instant(text, tally: Tally) -> datetime | None:
    """A timestamp the export wrote, in UTC; None when it is not a real instant of Spotify's life."""
    if type(text) is not str:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment < EARLIEST or moment > tally.latest:
        return None
    return moment


def milliseconds(value) -> int | None:
    if type(value) is int:
        return value if 0 <= value <= MAX_MS_PLAYED else None
    if type(value) is float and value.is_integer():
        return milliseconds(int(value))
    return None


def end_time(text, tally: Tally) -> str | None:
    """An extended row's ``ts`` as COPY text, to the second, or None when it is not a real
    instant. Spotify writes "YYYY-MM-DDTHH:MM:SSZ": that is checked (a real day and time,
    within Spotify's life) and passed on as it is; anything else goes the long way."""
    if type(text) is str and len(text) == 20 and text[19] == "Z" and tally.earliest_text <= text <= tally.latest_text:
        try:
            datetime.fromisoformat(text)  # 2021-02-30 and 25:00 are refused here
        except ValueError:
            return None
        return text
    moment = parse_instant(text, tally)
    return None if moment is None else moment.replace(microsecond=0).isoformat()


def plain_name(value) -> str:
    """A name as it is (escaping happens once per line), or NULL when there is none."""
    return value[:MAX_NAME] if type(value) is str and value and not value.isspace() else NULL


def plain_short(value) -> str:
    return value[:MAX_SHORT] if type(value) is str and value else NULL


def track_id_of(uri) -> str:
    """The track id of a ``spotify:track:`` URI; NULL for local files (``spotify:local:``,
    or no URI) and anything malformed."""
    if type(uri) is str and len(uri) == 36 and uri.startswith("spotify:track:") and uri.isascii():
        track_id = uri[14:]
        if track_id.isalnum():
            return track_id
    return NULL


def extended_fields(row, tally: Tally, file_name: str, row_number: int) -> list[str] | None:
    """One extended-history row as its EXTENDED_COLUMNS fields (plain text, NULL for none;
    ``fields_line`` escapes them), or None (counted).

    The hot loop of an import (300,000 rows for a heavy listener): fields are read once.
    The first field is the end time in UTC, its first 19 characters the second it names."""
    if type(row) is ExtendedRow:
        get = row.__getattribute__  # every name read below is one of its fields
    elif type(row) is dict:
        get = row.get
    else:
        tally.reject(file_name, row_number, "not a JSON object")
        return None
    played = end_time(get("ts"), tally)
    if played is None:
        tally.reject(file_name, row_number, "no valid end time (ts)")
        return None
    ms_played = get("ms_played")
    if type(ms_played) is not int or not 0 <= ms_played <= MAX_MS_PLAYED:
        ms_played = milliseconds(ms_played)
        if ms_played is None:
            tally.reject(file_name, row_number, "ms_played is not a number of milliseconds")
            return None
    uri, track_name = get("spotify_track_uri"), get("master_metadata_track_name")
    if not uri and not track_name:
        if get("spotify_episode_uri") or get("episode_name") or get("episode_show_name"):
            tally.podcast += 1
        elif get("audiobook_uri") or get("audiobook_title") or get("audiobook_chapter_uri"):
            tally.audiobook += 1
        else:
            tally.unnamed += 1
        return None
    if ms_played == 0:
        tally.zero_ms += 1
        return None
    track_id, name = track_id_of(uri), plain_name(track_name)
    if track_id is NULL and name is NULL:
        tally.unnamed += 1
        return None
    skipped, shuffle, offline = get("skipped"), get("shuffle"), get("offline")
    fields = [
        played,
        track_id,
        name,
        plain_name(get("master_metadata_album_artist_name")),
        plain_name(get("master_metadata_album_album_name")),
        str(ms_played),
        plain_short(get("reason_start")),
        plain_short(get("reason_end")),
        "t" if skipped is True else "f" if skipped is False else NULL,
        "t" if shuffle is True else "f" if shuffle is False else NULL,
        "t" if offline is True else "f" if offline is False else NULL,
        plain_short(get("platform")),
        country_code(get("conn_country")),
    ]
    tally.staged += 1
    return fields


def fields_line(fields: list[str]) -> str:
    """Plain fields as one COPY text line (without its newline), escaped only when one of
    them holds a character COPY treats specially."""
    line = "\t".join(fields)
    if NEEDS_LINE_ESCAPE.search(line) is not None or line.count("\t") != len(fields) - 1:
        line = "\t".join(f if f is NULL else copy_text(f) for f in fields)
    return line


def basic_line(row, tally: Tally, file_name: str, file_no: int, row_number: int) -> str | None:
    """One account-data music row as a COPY line of BASIC_COLUMNS, or None (counted).

    ``endTime`` has minute precision: the row is staged at its minute and placed on a free
    second of it when stored (history_db explains the matching)."""
    if type(row) is not dict:
        tally.reject(file_name, row_number, "not a JSON object")
        return None
    moment = parse_instant(row.get("endTime"), tally)
    if moment is None:
        tally.reject(file_name, row_number, "no valid end time (endTime)")
        return None
    ms_played = milliseconds(row.get("msPlayed"))
    if ms_played is None:
        tally.reject(file_name, row_number, "msPlayed is not a number of milliseconds")
        return None
    track, artist = name_text(row.get("trackName")), name_text(row.get("artistName"))
    if track == "\\N":
        tally.unnamed += 1
        return None
    if ms_played == 0:
        tally.zero_ms += 1
        return None
    tally.staged += 1
    minute = moment.replace(second=0, microsecond=0).isoformat()
    return f"{file_no}\t{row_number}\t{minute}\t{track}\t{artist}\t{ms_played}\n"


def count_only(kind: str, row, tally: Tally, file_name: str, row_number: int) -> None:
    """Rows of video and podcast files: counted, never stored as music plays."""
    if type(row) is not dict:
        tally.reject(file_name, row_number, "not a JSON object")
    elif kind == EXTENDED_VIDEO:
        tally.video += 1
    else:
        tally.podcast += 1
