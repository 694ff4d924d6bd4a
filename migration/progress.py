"""Progress for long table copies: a tqdm bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import os
import sys
import time

try:
    from tqdm import tqdm
except ImportError:  # plain lines still work without it
    tqdm = None

PLAIN_INTERVAL = 5.0  # seconds between plain progress lines (logs, CI, pipes)
INTERVAL_SETTING = "MIGRATION_PROGRESS_SECONDS"  # another interval; 0: a line per chunk


def plain_interval() -> float:
    try:
        return max(float(os.environ.get(INTERVAL_SETTING, PLAIN_INTERVAL)), 0.0)
    except ValueError:
        return PLAIN_INTERVAL


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Progress:
    """Rows done out of a known total, with rows/s and ETA."""

    def __init__(self, label: str, total: int, stream=None):
        self.label, self.total, self.done = label, total, 0
        self.stream = stream or sys.stderr
        self.started = self.last_line = time.monotonic()
        self.interval = plain_interval()
        self.bar = None
        if tqdm is not None and self.stream.isatty():
            self.bar = tqdm(
                total=total,
                desc=f"{label:<16}",
                unit=" rows",
                unit_scale=True,
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.5,
            )

    def update(self, rows: int) -> None:
        self.done += rows
        if self.bar is not None:
            self.bar.update(rows)
            return
        now = time.monotonic()
        if now - self.last_line >= self.interval:
            self.last_line = now
            rate = self.done / max(now - self.started, 1e-9)
            eta = (self.total - self.done) / rate if rate else 0
            percent = 100 * self.done / self.total if self.total else 100
            print(
                f"  {self.label}: {self.done:,}/{self.total:,} rows ({percent:.0f}%), "
                f"{rate:,.0f} rows/s, ETA {eta:,.0f} s",
                file=self.stream,
                flush=True,
            )

    def close(self) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        if self.bar is not None:
            self.bar.close()
        print(
            f"  {self.label}: {self.done:,} rows read and staged in {elapsed:.1f} s "
            f"({self.done / elapsed:,.0f} rows/s)",
            file=self.stream,
            flush=True,
        )
