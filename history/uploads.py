"""Uploaded export files, kept in PostgreSQL until their import has run.

An import is a job that any worker reaching the database may run, on any machine, so the
uploads cannot wait on the web machine's disk. A file is streamed in as chunks of
``CHUNK_BYTES`` (every chunk but the last exactly that long), each in a short transaction
of its own, and counts once it is whole (``imports_db.complete_upload_file``). The worker
reads it back through ``StoredFile``, a seekable file object that holds one chunk at a
time (a zip is read from its end first): never a whole file in memory, in or out.
"""

from __future__ import annotations

import io
import logging

import psycopg2

from database import DatabaseUnavailable, connection, transaction
from history import imports_db

from .archive import display_name

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20


class UploadTooLarge(Exception):
    pass


def read_full(stream, size: int) -> bytes:
    """``size`` bytes of ``stream``, fewer only at its end (a request body arrives in pieces)."""
    parts, wanted = [], size
    while wanted:
        piece = stream.read(wanted)
        if not piece:
            break
        parts.append(piece)
        wanted -= len(piece)
    return b"".join(parts)


def save(import_id: int, name: str, stream, limit: int) -> dict:
    """Stream an uploaded file (at most ``limit`` bytes) into the import's files."""
    shown = display_name(name)
    with transaction() as cur:
        file_id = imports_db.add_upload_file(cur, import_id, shown)
    written = 0
    try:
        for number in range(limit // CHUNK_BYTES + 2):
            data = read_full(stream, CHUNK_BYTES)
            if not data:
                break
            written += len(data)
            if written > limit:
                raise UploadTooLarge(f"{shown} is larger than the {limit // 1024**2} MB an upload may be")
            with transaction() as cur:
                imports_db.add_chunk(cur, file_id, number, data)
        with transaction() as cur:
            imports_db.complete_upload_file(cur, import_id, file_id, shown, written)
    except BaseException:
        forget_file(file_id)
        raise
    return {"name": shown, "bytes": written}


def forget_file(file_id: int) -> None:
    """A broken or refused upload's chunks go at once (housekeeping would, a day later)."""
    try:
        with transaction() as cur:
            imports_db.delete_upload_file(cur, file_id)
    except (psycopg2.Error, DatabaseUnavailable) as exc:
        log.warning("an unfinished upload stays for housekeeping: %s", exc)


class StoredFile(io.RawIOBase):
    """An uploaded file read back from its chunks: read, seek, tell (what zipfile needs).

    Each chunk is fetched on a pooled connection of its own, never the caller's: the
    import reads its files while its own transaction writes the plays."""

    def __init__(self, file_id: int, size: int):
        super().__init__()
        self.file_id, self.size, self.position = file_id, size, 0
        self._number, self._chunk = -1, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(base + offset, 0)
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        wanted = self.size - self.position if size is None or size < 0 else size
        parts = []
        while wanted > 0 and self.position < self.size:
            number, start = divmod(self.position, CHUNK_BYTES)
            if number != self._number:
                self._chunk, self._number = self._load(number), number
            piece = self._chunk[start : start + wanted]
            if not piece:
                raise OSError(f"the upload ends early (chunk {number} is short)")
            parts.append(piece)
            self.position += len(piece)
            wanted -= len(piece)
        return b"".join(parts)

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def _load(self, number: int) -> bytes:
        with connection() as conn, transaction(conn) as cur:
            data = imports_db.chunk(cur, self.file_id, number)
        if data is None:
            raise OSError("the uploaded file is no longer in the database")
        return data


def opener(file_id: int, size: int):
    """What archive.py opens the file with (once per zip entry it reads)."""
    return lambda: StoredFile(file_id, size)
