"""Repair rules for values read from a legacy SQLite install.

Every rule returns the cleaned value plus what happened to it, so the caller can count
lossless repairs and report anything it had to drop. A repair is *lossless* when the
target holds exactly the information the source held (``'42'`` -> ``42``, a
double-encoded JSON object unwrapped, epoch seconds -> timestamptz). When a value cannot
be stored as it is (NUL in text, ``NaN`` in JSON, an impossible date), it is dropped or
sanitised and the original goes to the rejects report: nothing changes silently.

Timestamps follow one explicit rule: a timestamp without a zone is UTC (SQLite's
``CURRENT_TIMESTAMP`` writes UTC), ``Z`` and offsets are honoured, numbers are epoch
seconds (or milliseconds when too large to be seconds).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from datetime import UTC, date, datetime

UTC = UTC
NULL_MARK = "\x1e"  # stands for NULL inside a row checksum
FIELD_SEP = "\x1f"  # separates fields inside a row checksum
EARLIEST_TIMESTAMP = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIMESTAMP = datetime(2100, 1, 1, tzinfo=UTC)
INT4_MAX = 2**31 - 1
EPOCH_FLOOR = 1e8  # 1973-03-03: smaller numbers are not timestamps this app wrote

# NUL and lone surrogates (bytes that were not UTF-8): text PostgreSQL cannot store as it is
BAD_TEXT_CHARS = re.compile("[\x00\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SPOTIFY_URI = re.compile(r"^spotify:(?:track|artist):([0-9A-Za-z]+)$")
_SPOTIFY_URL = re.compile(r"^https?://open\.spotify\.com/(?:track|artist)/([0-9A-Za-z]+)(?:\?.*)?$")
_RELEASE_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_EPOCH = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


def has_bad_chars(text: str) -> bool:
    """BAD_TEXT_CHARS.search, without scanning ASCII text (CPython knows a string is ASCII
    without looking at it; a regex scan of a 2 KB payload cost 7 us a row)."""
    if text.isascii():
        return "\x00" in text
    return BAD_TEXT_CHARS.search(text) is not None


class Invalid(ValueError):
    """The value cannot be stored without losing or inventing information."""


class RowIssues:
    """What cleaning one row did: lossless repairs, dropped values, or a rejection."""

    __slots__ = ("repairs", "dropped", "reject")

    def __init__(self):
        self.repairs: list[str] = []  # lossless, counted only
        self.dropped: list[str] = []  # value sanitised or cleared; original reported
        self.reject: str | None = None  # the whole row cannot land

    def __bool__(self):
        return bool(self.repairs or self.dropped or self.reject)


# --- text ------------------------------------------------------------------------------


def clean_text(value, field: str, issues: RowIssues, required: bool = False):
    """Text as PostgreSQL can store it: no NUL, valid UTF-8."""
    if value is None:
        if required:
            raise Invalid(f"{field} is missing")
        return None
    if type(value) is not str:
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
                issues.repairs.append(f"{field}: UTF-8 text stored as a blob")
            except UnicodeDecodeError:
                value = value.decode("utf-8", "replace")
                issues.dropped.append(f"{field}: invalid UTF-8 replaced by U+FFFD")
        elif isinstance(value, float) and not math.isfinite(value):
            raise Invalid(f"{field} is a non-finite number ({value!r})")
        else:
            value = _number_text(value)
            issues.repairs.append(f"{field}: number stored where text was expected")
    if has_bad_chars(value):
        if "\x00" in value:
            value = value.replace("\x00", "")
            issues.dropped.append(f"{field}: NUL characters removed")
        if BAD_TEXT_CHARS.search(value):  # lone surrogates = undecodable bytes
            value = surrogate_bytes(value).decode("utf-8", "replace")
            issues.dropped.append(f"{field}: invalid UTF-8 replaced by U+FFFD")
    if required and not value.strip():
        raise Invalid(f"{field} is empty")
    return value


def surrogate_bytes(text: str) -> bytes:
    """The bytes behind a string decoded with surrogateescape (or holding lone surrogates)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _number_text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def clean_spotify_id(value, field: str, issues: RowIssues) -> str:
    """A Spotify id, unwrapped from a URI/URL and stripped of whitespace."""
    if type(value) is str and value.isalnum():
        return value  # the usual case: base62
    text = clean_text(value, field, issues, required=True)
    stripped = text.strip()
    match = _SPOTIFY_URI.match(stripped) or _SPOTIFY_URL.match(stripped)
    if match:
        stripped = match.group(1)
        issues.repairs.append(f"{field}: Spotify URI/URL reduced to its id")
    elif stripped != text:
        issues.repairs.append(f"{field}: surrounding whitespace removed")
    if not stripped or any(c.isspace() for c in stripped):
        raise Invalid(f"{field} {text!r} is not a Spotify id")
    return stripped


# --- numbers ---------------------------------------------------------------------------


def clean_int(value, field: str, issues: RowIssues, low: int, high: int, required: bool = False):
    """An integer in [low, high]; text and integral floats are converted losslessly."""
    if value is None:
        if required:
            raise Invalid(f"{field} is missing")
        return None
    if type(value) is int:
        number = value
    else:
        number = _coerce_int(value, field)
        issues.repairs.append(f"{field}: {type(value).__name__} read as integer")
    if not low <= number <= high:
        raise Invalid(f"{field} {number} is out of range [{low}, {high}]")
    return number


def _coerce_int(value, field: str) -> int:
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise Invalid(f"{field} is binary data, not a number") from None
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            value = float(text)
        except ValueError:
            raise Invalid(f"{field} {value!r} is not a number") from None
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer():
            return int(value)
        raise Invalid(f"{field} {value!r} is not a whole number")
    raise Invalid(f"{field} {value!r} is not a number")


# --- dates and timestamps --------------------------------------------------------------


def clean_release_date(value, field: str, issues: RowIssues):
    """(date padded to the first day, precision) from YYYY, YYYY-MM or YYYY-MM-DD."""
    if value is None:
        return None, None
    text = clean_text(value, field, issues).strip()
    if not text:
        return None, None
    match = _RELEASE_DATE.match(text)
    if not match:
        raise Invalid(f"{field} {text!r} is not YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = match.groups()
    try:
        padded = date(int(year), int(month or 1), int(day or 1))
    except ValueError:
        raise Invalid(f"{field} {text!r} is not a real date") from None
    if not 1000 <= padded.year <= 2100:
        raise Invalid(f"{field} {text!r} is outside 1000-2100")
    return padded, ("day" if day else "month" if month else "year")


def clean_day(value, field: str, issues: RowIssues) -> date:
    """A calendar day (YYYY-MM-DD, or a timestamp exactly at midnight)."""
    text = clean_text(value, field, issues, required=True).strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if moment.time() != datetime.min.time() or (moment.tzinfo and moment.utcoffset()):
                raise Invalid(f"{field} {text!r} is a time of day, not a day")
            day = moment.date()
            issues.repairs.append(f"{field}: midnight timestamp read as a day")
    except ValueError:
        raise Invalid(f"{field} {text!r} is not a real YYYY-MM-DD date") from None
    if not 1970 <= day.year <= 2100:
        raise Invalid(f"{field} {text!r} is outside 1970-2100")
    return day


def clean_timestamp(value, field: str, issues: RowIssues):
    """A UTC datetime: naive = UTC, Z/offsets honoured, numbers = epoch seconds (or ms)."""
    if value is None:
        return None
    if isinstance(value, bytes):
        value = clean_text(value, field, issues)
    if isinstance(value, str):
        if len(value) == 19 and value[10] == " ":  # SQLite CURRENT_TIMESTAMP, UTC
            try:
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    return _in_range(moment.replace(tzinfo=UTC), field, value)
            except ValueError:
                pass
        text = value.strip()
        if not text:
            return None
        if _EPOCH.match(text):
            value = float(text)
        else:
            try:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
            except ValueError:
                raise Invalid(f"{field} {text!r} is not a timestamp") from None
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
            return _in_range(moment, field, text)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise Invalid(f"{field} {value!r} is not a timestamp")
        if abs(value) < EPOCH_FLOOR:  # "2021" is a year, not 33 minutes past 1970
            raise Invalid(f"{field} {value!r} is not a plausible epoch timestamp")
        seconds = value / 1000 if abs(value) >= 1e11 else value
        issues.repairs.append(f"{field}: epoch {'milliseconds' if seconds is not value else 'seconds'} converted")
        try:
            moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise Invalid(f"{field} {value!r} is not a timestamp") from None
        return _in_range(moment, field, value)
    raise Invalid(f"{field} {value!r} is not a timestamp")


def clean_timestamp_text(value, field: str, issues: RowIssues):
    """clean_timestamp rendered once, as the checksum and COPY both take it (``canonical``).

    Most legacy timestamps are SQLite's CURRENT_TIMESTAMP text, already UTC: such a value
    is checked and extended as text, instead of being turned into a datetime and rendered
    back twice (once for the checksum, once for COPY), which was a fifth of the cleaning
    time of a playlist entry."""
    if value.__class__ is str and "1970" <= value[:4] < "2100":
        if len(value) == 19 and value[10] == " ":  # SQLite's CURRENT_TIMESTAMP
            whole_seconds = value
        elif len(value) == 20 and value[10] == "T" and value[19] == "Z":  # ISO 8601 in UTC
            whole_seconds = f"{value[:10]} {value[11:19]}"
        else:
            whole_seconds = None
        if whole_seconds is not None and _is_naive_timestamp(whole_seconds):
            return whole_seconds + ".000000+00:00"
    moment = clean_timestamp(value, field, issues)
    return None if moment is None else moment.isoformat(" ", "microseconds")


def _is_naive_timestamp(text: str) -> bool:
    try:
        return datetime.fromisoformat(text).tzinfo is None
    except ValueError:
        return False


def _in_range(moment: datetime, field: str, original) -> datetime:
    if not EARLIEST_TIMESTAMP <= moment < LATEST_TIMESTAMP:
        raise Invalid(f"{field} {original!r} is outside 1970-2100")
    return moment


# --- JSON ------------------------------------------------------------------------------


def clean_json_object(value, field: str, issues: RowIssues):
    """(JSON text of an object ready for JSONB, the object); (None, None) when absent.

    Text that PostgreSQL accepts as it is passes through unchanged (no re-serialising:
    the stored JSONB is exactly the source's); anything else is rebuilt from the parsed
    object after the repairs, which are counted or reported.
    """
    if value is None:
        return None, None
    if type(value) is not str:
        value = clean_text(value, field, issues)
    text = value
    if not text or text[0].isspace() or text[-1].isspace():
        text = text.strip()
        if not text:
            issues.repairs.append(f"{field}: empty text read as no JSON")
            return None, None
    notes = []

    def constant(name):
        notes.append(f"{name} replaced by null")
        return None

    def number(literal):
        result = float(literal)
        if not math.isfinite(result):
            notes.append("out-of-range number replaced by null")
            return None
        return result

    rebuild = False
    try:
        try:
            # the hooks run only for NaN/Infinity and for numbers with a fraction or an
            # exponent (none in a Spotify track object): cheaper than searching the text
            # for them first (a regex scan of a 2 KB payload cost 33 us a row)
            parsed = json.loads(text, parse_constant=constant, parse_float=number)
        except ValueError:  # raw control characters inside strings: JSONB refuses them
            parsed = json.loads(text, parse_constant=constant, parse_float=number, strict=False)
            rebuild = True
        depth = 0
        while isinstance(parsed, str) and depth < 3:  # double (or deeper) encoded
            parsed = json.loads(parsed, parse_constant=constant, parse_float=number, strict=False)
            depth += 1
    except (ValueError, RecursionError) as exc:
        raise Invalid(f"{field} is malformed JSON ({str(exc)[:80]})") from None
    if not isinstance(parsed, dict):
        raise Invalid(f"{field} is JSON {type(parsed).__name__}, not an object")
    if depth:
        issues.repairs.append(f"{field}: double-encoded JSON unwrapped")
    # undecodable bytes arrive as lone surrogates (the reader's surrogateescape) inside
    # strings; raw NUL likewise: neither can be encoded for JSONB as it is
    if depth or has_bad_chars(text) or "\\u0000" in text or ("\\u" in text and _SURROGATE_ESCAPE.search(text)):
        parsed = _sanitise_json(parsed, notes)
    if notes:
        issues.dropped.append(f"{field}: {', '.join(sorted(set(notes)))}")
    if not (rebuild or depth or notes):
        return text, parsed
    return json.dumps(parsed, ensure_ascii=False, separators=(",", ":"), allow_nan=False), parsed


def _sanitise_json(node, notes: list):
    """Remove what JSONB refuses: \\u0000, lone surrogates, non-finite numbers."""
    if isinstance(node, dict):
        return {_sanitise_string(k, notes): _sanitise_json(v, notes) for k, v in node.items()}
    if isinstance(node, list):
        return [_sanitise_json(v, notes) for v in node]
    if isinstance(node, str):
        return _sanitise_string(node, notes)
    if isinstance(node, float) and not math.isfinite(node):
        notes.append("out-of-range number replaced by null")
        return None
    return node


def _sanitise_string(text: str, notes: list) -> str:
    if "\x00" in text:
        notes.append("\\u0000 removed")
        text = text.replace("\x00", "")
    if BAD_TEXT_CHARS.search(text):
        notes.append("invalid UTF-8 or lone surrogate replaced by U+FFFD")
        text = surrogate_bytes(text).decode("utf-8", "replace")
    return text


# --- checksums and report values -------------------------------------------------------


def canonical(value) -> str:
    """One field as the row checksum sees it; PostgreSQL renders the same text
    (timestamps are UTC already: ``2021-01-01 00:00:00.000000+00:00``)."""
    kind = value.__class__
    if kind is str:
        return value
    if value is None:
        return NULL_MARK
    if kind is bool:
        return "true" if value else "false"
    if kind is datetime:
        return value.isoformat(" ", "microseconds")
    if kind is date:
        return value.isoformat()
    return str(value)


def row_checksum(values) -> str:
    parts = []
    for value in values:  # canonical(), inlined: this runs for every field of every row
        kind = value.__class__
        if kind is str:
            parts.append(value)
        elif value is None:
            parts.append(NULL_MARK)
        elif kind is int:
            parts.append(str(value))
        else:
            parts.append(canonical(value))
    return hashlib.md5(FIELD_SEP.join(parts).encode("utf-8"), usedforsecurity=False).hexdigest()


def original_values(columns, row) -> dict:
    """The source row as JSON-safe values, for the rejects report."""
    return {name: _report_value(value) for name, value in zip(columns, row, strict=True)}


def _report_value(value):
    if isinstance(value, bytes):
        return {"blob_hex": value.hex()}
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str) and BAD_TEXT_CHARS.search(value) and "\x00" not in value:
        return {"invalid_utf8_hex": surrogate_bytes(value).hex()}
    return value
