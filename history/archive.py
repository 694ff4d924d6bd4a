"""The files a person hands in: Spotify's zip, or the JSON files inside it.

Entries are read from the archive as streams, never extracted to disk, so an entry name
with ``../``, a NUL byte or 300 characters can do no harm: a name is only matched against
the export's file patterns and shown (``display_name``). Bounds, checked before a byte is
inflated and again while reading (a zip may lie about its sizes): every history entry's
unpacked size adds up to at most ``max_unpacked`` bytes, and no entry may unpack to more
than ``max_ratio`` times its packed size (a zip bomb). A zip whose end is missing
(truncated download) or whose data is damaged is bad input, named in the message.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from . import formats

MAX_UNPACKED = 2 * 1024**3  # the heaviest real exports are a few hundred MB of JSON
MAX_RATIO = 200  # Spotify's JSON packs about 15:1; a zip bomb packs 1000:1 and more
READ_SIZE = 1 << 20


class BadInput(Exception):
    """A file that cannot be imported; the message names it and says why (one line)."""


def display_name(name: str, limit: int = 80) -> str:
    """A file name safe to show and store: control characters gone, long names shortened."""
    clean = "".join(c if c.isprintable() else "?" for c in name) or "?"
    return clean if len(clean) <= limit else clean[: limit // 2 - 1] + "…" + clean[-(limit // 2) :]


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass
class Source:
    """One history file to import: where it is, what its name says it is, its size."""

    name: str  # display name (archive name / entry name)
    kind: str | None  # by name; None for a loose JSON file whose name says nothing
    size: int
    opener: Callable[[], Readable]

    def open(self) -> Readable:
        return self.opener()


class MeteredReader:
    """Reads a stream for the parser while hashing it (the file's fingerprint), counting
    bytes (progress) and enforcing a byte limit (the zip's declared sizes may lie)."""

    def __init__(self, raw: Readable, name: str, limit: int, on_bytes=None):
        self.raw, self.name, self.limit = raw, name, limit
        self.sha256 = hashlib.sha256()
        self.bytes = 0
        self.on_bytes = on_bytes
        self._peeked = b""

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks for nothing first, to learn whether the stream is binary
            return b""
        if self._peeked:
            chunk, self._peeked = self._peeked, b""
            return chunk
        try:
            chunk = self.raw.read(READ_SIZE if size is None or size < 0 else size)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise BadInput(f"{self.name}: the zip's data is damaged ({exc}); download the export again") from None
        except OSError as exc:
            raise BadInput(f"{self.name}: could not be read ({exc.strerror or exc})") from None
        self.bytes += len(chunk)
        if self.bytes > self.limit:
            raise BadInput(f"{self.name}: unpacks to more than its zip entry declared, or past the size limit")
        self.sha256.update(chunk)
        if self.on_bytes is not None:
            self.on_bytes(len(chunk))
        return chunk

    def read_rest(self) -> bytes:
        """Everything not read yet, in one bytes object (bounded by ``limit``)."""
        chunks = []
        while chunk := self.read(READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)

    def first_byte(self) -> bytes:
        """The first byte that is not whitespace or a byte-order mark (b"" when empty)."""
        while True:
            chunk = self.read(65536)
            if not chunk:
                return b""
            stripped = chunk.lstrip(b" \t\r\n\xef\xbb\xbf")
            if stripped:
                self._peeked = chunk
                return stripped[:1]

    def close(self) -> None:
        self.raw.close()


Opener = Callable[[], BinaryIO]  # a new readable, seekable handle on one uploaded file


def sources(path: str, label: str | None = None, max_unpacked: int = MAX_UNPACKED) -> list[Source]:
    """The history files in ``path`` (a zip or a JSON file); ``label`` is the name to show
    (an upload's own file name). Raises BadInput for anything that is neither."""
    return file_sources(lambda: open(path, "rb"), display_name(label or os.path.basename(path)), max_unpacked)


def file_sources(opener: Opener, label: str, max_unpacked: int = MAX_UNPACKED) -> list[Source]:
    """The history files in what ``opener`` opens (a file on disk, or an upload kept in
    the database: history/uploads.py)."""
    try:
        handle = opener()
        try:
            head = handle.read(4)
            size = handle.seek(0, os.SEEK_END)
        finally:
            handle.close()
    except OSError as exc:
        raise BadInput(f"{label}: cannot be read ({exc.strerror or exc})") from None
    if head.startswith(b"PK"):
        return zip_sources(opener, label, max_unpacked)
    stripped = head.lstrip(b" \t\r\n\xef\xbb\xbf")
    if size == 0:
        raise BadInput(f"{label}: the file is empty")
    if stripped[:1] in (b"[", b"{") or (not stripped and size > 4):
        if size > max_unpacked:
            raise BadInput(f"{label}: {size} bytes is more than the import accepts ({max_unpacked})")
        return [Source(label, formats.kind_by_name(label), size, opener)]
    raise BadInput(f"{label}: not a zip or JSON file (upload the zip Spotify sent, or the JSON files in it)")


def zip_sources(opener: Opener, label: str, max_unpacked: int) -> list[Source]:
    try:
        handle = opener()
        try:
            with zipfile.ZipFile(handle) as archive:
                entries = archive.infolist()
        finally:
            handle.close()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
        raise BadInput(f"{label}: not a readable zip, perhaps a truncated download ({exc})") from None
    found, unpacked = [], 0
    for entry in entries:
        if entry.is_dir():
            continue
        kind = formats.kind_by_name(entry.filename)
        if kind is None:
            continue  # the rest of an export (playlists, library, payments): not ours to read
        name = display_name(f"{label}: {entry.filename}", 120)
        if entry.flag_bits & 0x1:
            raise BadInput(f"{name}: the entry is encrypted")
        if entry.file_size > max(entry.compress_size, 1) * MAX_RATIO:
            raise BadInput(f"{name}: unpacks {entry.file_size // max(entry.compress_size, 1)}× its size (a zip bomb?)")
        unpacked += entry.file_size
        if unpacked > max_unpacked:
            raise BadInput(f"{label}: its history unpacks to more than the import accepts ({max_unpacked} bytes)")
        found.append(Source(name, kind, entry.file_size, _entry_opener(opener, entry)))
    if not found:
        raise BadInput(f"{label}: no Spotify streaming history in this zip (no StreamingHistory files)")
    return found


def _entry_opener(opener: Opener, entry: zipfile.ZipInfo):
    def open_entry() -> Readable:
        handle = opener()
        archive = zipfile.ZipFile(handle)
        return _ClosingEntry(archive.open(entry), archive, handle)

    return open_entry


class _ClosingEntry:
    """An entry stream that closes its archive, and the handle under it, with it."""

    def __init__(self, stream, archive: zipfile.ZipFile, handle: BinaryIO):
        self.stream, self.archive, self.handle = stream, archive, handle

    def read(self, size: int = -1) -> bytes:
        return self.stream.read(size)

    def close(self) -> None:
        self.stream.close()
        self.archive.close()
        self.handle.close()


def all_sources(paths: Sequence[tuple[str | Opener, str | None]], max_unpacked: int = MAX_UNPACKED) -> Iterator[Source]:
    """Every history file of several uploads/paths, in the order given: (path, label)
    pairs, or (opener, label) for uploads kept in the database."""
    budget = max_unpacked
    for path, label in paths:
        if isinstance(path, str):
            found = sources(path, label, budget)
        else:
            found = file_sources(path, display_name(label or "upload"), budget)
        budget -= sum(s.size for s in found)
        yield from found
