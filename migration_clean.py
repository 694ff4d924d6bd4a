"""Cleaning legacy rows into COPY text, on every core.

Reading SQLite and feeding COPY happen in the main process; the cleaning rules (the
costly part: JSON parsing, timestamps, checksums) run in worker processes, one chunk
of rows at a time. Chunks come back in the order they were sent, so the rejects report
and the staging tables see the rows in the same order as a single process would.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from legacy_cleaning import Invalid, RowIssues, clean_spotify_id, original_values
from legacy_sqlite import specs_for
from migration_load import copy_line

IN_FLIGHT_PER_WORKER = 2   # chunks queued per worker: enough to hide the hand-over


@dataclass
class CleanedChunk:
    rows: int
    copy_text: str
    repaired: int = 0                  # rows with at least one lossless repair
    repair_kinds: Counter = field(default_factory=Counter)
    # report lines in row order: (action, legacy key, reason, original values)
    reports: list = field(default_factory=list)
    rejected_refs: list = field(default_factory=list)   # (what references used, why)


def _reference(layout: str, table: str, values: tuple) -> str:
    """What other tables use to point at this row (for naming why an orphan is one)."""
    if layout == "v2" and table == "tracks":   # v2 references tracks by Spotify id
        try:
            return clean_spotify_id(values[0], "track_id", RowIssues())
        except Invalid:
            return str(values[0])
    return str(values[0])                       # v1: the integer id


def clean_chunk(layout: str, table: str, chunk: list) -> CleanedChunk:
    """Clean rows of (rowid, *columns) into staging COPY lines and what to report."""
    spec = specs_for(layout)[table]
    cleaner, legacy_key, columns = spec.cleaner, spec.legacy_key, spec.columns
    result = CleanedChunk(rows=len(chunk), copy_text="")
    lines = []
    for row in chunk:
        rowid, values = row[0], row[1:]
        try:
            cleaned, issues = cleaner(values)
        except Invalid as exc:
            result.reports.append(("rejected", legacy_key(values, rowid), str(exc),
                                   original_values(columns, values)))
            result.rejected_refs.append((_reference(layout, table, values), str(exc)))
            continue
        if issues:
            if issues.repairs:
                result.repaired += 1
                result.repair_kinds.update(issues.repairs)
            if issues.dropped:
                result.reports.append(("repaired", legacy_key(values, rowid),
                                       "; ".join(issues.dropped), original_values(columns, values)))
        lines.append(copy_line((rowid, legacy_key(values, rowid)) + cleaned))
    result.copy_text = "".join(lines)
    return result


def _ignore_interrupts() -> None:
    # Ctrl-C reaches the whole process group: the main process handles it (rolls back,
    # says so in one line); a worker would only print a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def default_workers() -> int:
    """One cleaning process per core; none (clean in-process) on a single core."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return cores if (cores or 1) > 1 else 0


class Cleaner:
    """Clean a stream of chunks on ``workers`` processes (0: in this process), in order."""

    def __init__(self, workers: int | None = None):
        self.workers = default_workers() if workers is None else workers
        self._pool = None
        if self.workers:
            # fork: the workers need no re-import, and see the cleaning rules as loaded
            self._pool = ProcessPoolExecutor(self.workers, initializer=_ignore_interrupts,
                                             mp_context=multiprocessing.get_context("fork"))
            # with fork, the first task starts every worker: do it now, while this process
            # has no other thread (the COPY feeder) whose locks a child could inherit held
            self._pool.submit(int).result()

    def map(self, layout: str, table: str, chunks):
        """Yield a CleanedChunk per chunk, in order, with a bounded number in flight."""
        if self._pool is None:
            for chunk in chunks:
                yield clean_chunk(layout, table, chunk)
            return
        pending: deque = deque()
        for chunk in chunks:
            pending.append(self._pool.submit(clean_chunk, layout, table, chunk))
            if len(pending) >= self.workers * IN_FLIGHT_PER_WORKER:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
