"""Cleaning legacy rows into COPY text, on every core.

Each worker process reads its own rowid ranges of the SQLite file on a read-only
connection of its own and cleans them (``clean_range``); the main process only feeds the
COPY text to PostgreSQL, instead of reading every row and passing it through a pipe.
Ranges come back in the order they were sent, so the rejects report and the staging
tables see the rows in the same order as a single process would. A WAL file, whose other
connections may see another snapshot, is read by the main process and its rows handed
over in chunks instead (``Cleaner.map``).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import sqlite3
import threading
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from .cleaning_rules import Invalid, RowIssues, clean_spotify_id, original_values
from .load import copy_line
from .sqlite_source import after_rowid, connect_read_only, fetch_lenient, reading, specs_for

IN_FLIGHT_PER_WORKER = 2  # chunks queued per worker: enough to hide the hand-over
MAX_WORKERS = 4


class CleaningFailed(Exception):
    """A cleaning worker process died (killed, out of memory); one line for a person."""


@dataclass
class CleanedChunk:
    rows: int
    copy_text: str
    repaired: int = 0  # rows with at least one lossless repair
    repair_kinds: Counter = field(default_factory=Counter)
    # report lines in row order: (action, legacy key, reason, original values)
    reports: list = field(default_factory=list)
    rejected_refs: list = field(default_factory=list)  # (what references used, why)


def _reference(layout: str, table: str, values: tuple) -> str:
    """What other tables use to point at this row (for naming why an orphan is one)."""
    if layout == "v2" and table == "tracks":  # v2 references tracks by Spotify id
        try:
            return clean_spotify_id(values[0], "track_id", RowIssues())
        except Invalid:
            return str(values[0])
    return str(values[0])  # v1: the integer id


def clean_chunk(layout: str, table: str, chunk: list) -> CleanedChunk:
    """Clean rows of (rowid, *columns) into staging COPY lines and what to report."""
    spec = specs_for(layout)[table]
    cleaner, legacy_key, columns = spec.cleaner, spec.legacy_key, spec.columns
    result = CleanedChunk(rows=len(chunk), copy_text="")
    lines = []
    for row in chunk:
        rowid, values = row[0], row[1:]
        key = legacy_key(values, rowid)
        try:
            cleaned, issues = cleaner(values)
        except Invalid as exc:
            result.reports.append(("rejected", key, str(exc), original_values(columns, values)))
            result.rejected_refs.append((_reference(layout, table, values), str(exc)))
            continue
        if issues.repairs or issues.dropped:  # not `if issues:`, a Python call per row
            if issues.repairs:
                result.repaired += 1
                result.repair_kinds.update(issues.repairs)
            if issues.dropped:
                result.reports.append(("repaired", key, "; ".join(issues.dropped), original_values(columns, values)))
        lines.append(copy_line((rowid, key) + cleaned))
    result.copy_text = "".join(lines)
    return result


_readers: dict[str, sqlite3.Connection] = {}  # a worker's read-only connections, by file


def _reader(path: str) -> sqlite3.Connection:
    conn = _readers.get(path)
    if conn is None:
        conn = _readers[path] = connect_read_only(Path(path))
    return conn


def clean_range(path: str, layout: str, table: str, selected: str, after: int | None, up_to: int) -> CleanedChunk:
    """Read the rows after rowid ``after`` (None: from the first) up to ``up_to``
    (inclusive) and clean them."""
    lower, params = after_rowid(after)
    query = f'SELECT rowid, {selected} FROM "{table}" WHERE {lower} AND rowid <= ? ORDER BY rowid'
    with reading(path):
        rows = fetch_lenient(_reader(path), query, (*params, up_to))
    return clean_chunk(layout, table, rows)


def _start_worker() -> None:
    # Ctrl-C reaches the whole process group: the main process handles it (rolls back,
    # says so in one line); a worker would only print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # a worker outlives a killed main process otherwise: blocked on its task queue forever,
    # holding the terminal's (or a pipe reader's) end open
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(parent_sentinel) -> None:
    multiprocessing.connection.wait([parent_sentinel])
    os._exit(1)


def default_workers() -> int:
    """One cleaning process per core, at most MAX_WORKERS; none on a single core.

    The cap bounds memory (chunks in flight grow with the workers) and stops a big host
    from starting dozens of processes for work PostgreSQL cannot absorb faster anyway."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, MAX_WORKERS) if cores > 1 else 0


class Cleaner:
    """Clean a stream of chunks on ``workers`` processes (0: in this process), in order."""

    def __init__(self, workers: int | None = None):
        self.workers = default_workers() if workers is None else workers
        self._pool = None
        if self.workers:
            try:
                # fork: the workers need no re-import, and see the cleaning rules as loaded
                self._pool = ProcessPoolExecutor(
                    self.workers, initializer=_start_worker, mp_context=multiprocessing.get_context("fork")
                )
                # with fork, the first task starts every worker: do it now, while this
                # process has no other thread (the COPY feeder) whose locks a child could
                # inherit held
                self._pool.submit(int).result()
            except (OSError, NotImplementedError, ImportError, BrokenProcessPool):
                # no process support here (no /dev/shm, no semaphores): clean in-process
                self.close()
                self.workers = 0

    def map(self, layout: str, table: str, chunks):
        """Yield a CleanedChunk per chunk of rows, in order, with a bounded number in flight."""
        return self._in_order(table, clean_chunk, ((layout, table, chunk) for chunk in chunks))

    def map_ranges(self, path: str, layout: str, table: str, selected: str, ranges):
        """Yield a CleanedChunk per rowid range, read by the worker itself, in order."""
        return self._in_order(table, clean_range, ((path, layout, table, selected, *bounds) for bounds in ranges))

    def _in_order(self, table: str, task, arguments):
        if self._pool is None:
            for args in arguments:
                yield task(*args)
            return
        pending: deque = deque()
        try:
            for args in arguments:
                pending.append(self._pool.submit(task, *args))
                if len(pending) >= self.workers * IN_FLIGHT_PER_WORKER:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool:
            raise CleaningFailed(f"a process cleaning {table} rows died (killed or out of memory?)") from None

    def close(self) -> None:
        """Stop the workers now: they hold nothing worth waiting for (after an error or a
        Ctrl-C, the chunks still queued would only delay the one-line exit)."""
        if self._pool is None:
            return
        processes = list((self._pool._processes or {}).values())
        # Queued chunks are cancelled and each worker exits after the chunk in its hands
        # (well under a second). Terminating a worker mid-answer instead left half a result
        # in the pipe, and the executor's manager thread blocked reading it for ever, so a
        # Ctrl-C'd run never exited (it joins that thread at interpreter exit). Only a
        # worker still busy after the bound is terminated.
        self._pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
        self._pool = None
