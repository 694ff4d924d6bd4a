"""Concurrent snapshot writes: the legacy SQLite design against PostgreSQL through our pool.

    .venv/bin/python bench/concurrent_writes.py [--scale 1.0] [--only book|hard]

Two loads, each run against three backends in one go:

- the book's test: 1 process x 10 threads x 50 snapshot writes;
- a harder one: 8 processes x 32 threads x 500 writes (``--scale`` multiplies the writes
  per thread, e.g. ``--scale 0.1`` runs 50, so the run fits a small machine; the
  concurrency shape, 256 writers at once, is kept).

Backends:

- ``sqlite default``: the v2 legacy layout (../shared/legacy-sqlite.md), ``sqlite3`` with
  Python's defaults (rollback journal, deferred transactions, 5 s busy timeout), one
  connection per write like a legacy request;
- ``sqlite WAL + busy_timeout``: the same with ``journal_mode=WAL`` and
  ``busy_timeout=30000`` — the usual advice for "database is locked";
- ``postgresql + ConnectionPool``: our schema on the benchmark's own embedded PostgreSQL;
  every process (spawned, so no connection or SQLite state crosses a fork) makes its own
  ``connection_pool.ConnectionPool`` (the
  app's defaults: ``DB_POOL_MAX`` 10, ``DB_POOL_TIMEOUT`` 5 s), borrows a connection per
  write and commits.

A write is one snapshot row (track, day, time range, rank) in its own transaction; every
writer has its own keys, so after the run the table must hold exactly one row per
successful write. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sqlite3
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import database  # noqa: E402
import db_config  # noqa: E402
from connection_pool import ConnectionPool  # noqa: E402

FIRST_DAY = date(2000, 1, 1)
TIME_RANGE = "short_term"
POOL_MAX, POOL_TIMEOUT = 10, 5.0

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracks (
    track_id TEXT PRIMARY KEY, name TEXT NOT NULL, artist_name TEXT, album_name TEXT,
    duration_ms INTEGER, spotify_url TEXT, raw_json TEXT,
    created_at TEXT DEFAULT CURRENT_TIMESTAMP, updated_at TEXT DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT, track_id TEXT NOT NULL, snapshot_date TEXT NOT NULL,
    time_range TEXT NOT NULL, rank INTEGER NOT NULL,
    UNIQUE (track_id, snapshot_date, time_range),
    FOREIGN KEY (track_id) REFERENCES tracks(track_id));
"""


def track_id(i: int) -> str:
    return f"benchtrack{i:06d}"


def writer_day(writer: int) -> str:
    return (FIRST_DAY + timedelta(days=writer)).isoformat()


# -- backends: prepare (in the parent), open (per process, after the fork), write ------
class SQLiteBackend:
    def __init__(self, path: Path, wal: bool):
        self.path, self.wal = path, wal
        self.label = "sqlite WAL + busy_timeout" if wal else "sqlite default"

    def prepare(self, tracks: int, writers: int):
        conn = sqlite3.connect(self.path)
        conn.executescript(SQLITE_SCHEMA)
        if self.wal:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: stays on for every connection
        conn.executemany(
            "INSERT INTO tracks (track_id, name) VALUES (?, ?)", [(track_id(i), f"Track {i}") for i in range(tracks)]
        )
        conn.commit()
        conn.close()

    def open(self):
        pass

    def write(self, writer: int, i: int):
        conn = sqlite3.connect(self.path)  # a legacy request: its own connection
        try:
            if self.wal:
                conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute(
                "INSERT OR REPLACE INTO snapshots (track_id, snapshot_date, time_range, rank) VALUES (?, ?, ?, ?)",
                (track_id(i), writer_day(writer), TIME_RANGE, i + 1),
            )
            conn.commit()
        finally:
            conn.close()

    def close(self):
        pass

    def count(self) -> int:
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute("SELECT count(*) FROM snapshots").fetchone()[0]
        finally:
            conn.close()


class PostgresBackend:
    label = "postgresql + ConnectionPool"

    def __init__(self, url: str):
        self.url = url
        self.pool: ConnectionPool | None = None
        self.users: list = []

    def prepare(self, tracks: int, writers: int):
        with psycopg2.connect(self.url) as conn, conn.cursor() as cur:
            database.apply_schema(conn)
            cur.execute("TRUNCATE snapshots, users, tracks, artists RESTART IDENTITY CASCADE")
            cur.execute(
                "INSERT INTO tracks (spotify_id, name) SELECT unnest(%s::text[]), 'Track'",
                ([track_id(i) for i in range(tracks)],),
            )
            cur.execute(
                "INSERT INTO users (spotify_id) SELECT 'bench-writer-' || n FROM generate_series(0, %s) n",
                (writers - 1,),
            )
            cur.execute("SELECT id FROM users ORDER BY id")
            self.users = [r[0] for r in cur.fetchall()]
        conn.close()

    def open(self):
        # After the fork: a pool belongs to the process that made it.
        self.pool = ConnectionPool(self.url, minconn=2, maxconn=POOL_MAX, timeout=POOL_TIMEOUT)

    def write(self, writer: int, i: int):
        if self.pool is None:
            raise RuntimeError("open() the backend in the process that writes")
        conn = self.pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(
                    """INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank)
                               VALUES (%s, %s, %s, %s, %s)
                               ON CONFLICT (user_id, track_id, snapshot_date, time_range)
                               DO UPDATE SET rank = EXCLUDED.rank""",
                    (self.users[writer], track_id(i), writer_day(writer), TIME_RANGE, i + 1),
                )
            conn.commit()
        finally:
            self.pool.putconn(conn)  # rolls back whatever a failed write left open

    def close(self):
        if self.pool is not None:
            self.pool.close()

    def count(self) -> int:
        conn = psycopg2.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM snapshots")
                return database.fetch_value(cur)
        finally:
            conn.close()


# -- one process: THREADS writers --------------------------------------------------
def error_kind(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message[:40]}" if message else type(exc).__name__


def run_process(backend, process: int, threads: int, writes: int, go, results):
    backend.open()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def writer(thread: int):
        number = process * threads + thread
        mine: list[float] = []
        my_errors: Counter[str] = Counter()
        barrier.wait()
        go.wait()
        for i in range(writes):
            started = time.monotonic()
            try:
                backend.write(number, i)
            except Exception as exc:  # counted by kind, like the book's test
                my_errors[error_kind(exc)] += 1
            else:
                mine.append(time.monotonic() - started)
        with lock:
            latencies.extend(mine)
            errors.update(my_errors)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    results.put(("ready", process))
    for w in workers:
        w.join()
    results.put(("done", process, time.monotonic(), latencies, dict(errors)))
    backend.close()


def run_load(backend, processes: int, threads: int, writes: int) -> dict:
    backend.prepare(tracks=writes, writers=processes * threads)
    go: Any  # a threading or a multiprocessing Event, and
    children: list[Any]  # threads or processes: the same start/join/set/get either way
    if processes == 1:
        ctx = None
        go, results = threading.Event(), __import__("queue").Queue()
        runner = threading.Thread(target=run_process, args=(backend, 0, threads, writes, go, results))
        runner.start()
        children = [runner]
    else:
        ctx = multiprocessing.get_context("spawn")  # nothing of the parent's SQLite or libpq state crosses
        go, results = ctx.Event(), ctx.Queue()
        children = [
            ctx.Process(target=run_process, args=(backend, p, threads, writes, go, results)) for p in range(processes)
        ]
        for child in children:
            child.start()
    for _ in range(processes):
        assert results.get(timeout=120)[0] == "ready"
    started = time.monotonic()
    go.set()
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    finished = started
    for _ in range(processes):
        _, _, ended, lat, errs = results.get(timeout=3600)
        latencies.extend(lat)
        errors.update(errs)
        finished = max(finished, ended)
    for child in children:
        child.join(30)
    elapsed = finished - started
    latencies.sort()

    def pct(q):
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))] * 1000 if latencies else float("nan")

    return {
        "ok": len(latencies),
        "errors": dict(errors),
        "elapsed": elapsed,
        "per_s": len(latencies) / elapsed if elapsed else float("nan"),
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1] * 1000 if latencies else float("nan"),
        "rows": backend.count(),
        "attempted": processes * threads * writes,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies the hard load's 500 writes per thread (default 1.0)"
    )
    parser.add_argument("--only", choices=("book", "hard"), help="run one of the two loads")
    args = parser.parse_args()
    hard_writes = max(1, round(500 * args.scale))
    loads = [("book: 1 x 10 x 50", 1, 10, 50), (f"hard: 8 x 32 x {hard_writes}", 8, 32, hard_writes)]
    if args.only:
        loads = [loads[0 if args.only == "book" else 1]]

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp:
        server = db_config.EmbeddedPostgres(Path(tmp), cleanup_mode="delete")
        try:
            for load, processes, threads, writes in loads:
                for backend in (
                    SQLiteBackend(Path(tmp) / f"{load[:4]}-default.db", wal=False),
                    SQLiteBackend(Path(tmp) / f"{load[:4]}-wal.db", wal=True),
                    PostgresBackend(server.url(f"bench_{load[:4]}")),
                ):
                    print(f"{load}: {backend.label} ...", file=sys.stderr, flush=True)
                    rows.append((load, backend.label, run_load(backend, processes, threads, writes)))
        finally:
            server.server().cleanup()

    print(
        f"\nConcurrent snapshot writes, one transaction each; {os.cpu_count()} CPUs; "
        f"PostgreSQL pool per process: DB_POOL_MAX {POOL_MAX}, DB_POOL_TIMEOUT {POOL_TIMEOUT:g} s\n"
    )
    print(
        "| load (processes x threads x writes) | backend | successes | failures (by error) | writes/s "
        "| p50 ms | p99 ms | max ms | rows in table | nothing lost |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---|")
    verdict, notes = True, []
    for load, label, r in rows:
        failures = sum(r["errors"].values())
        kinds = "; ".join(f"{k} x{v}" for k, v in sorted(r["errors"].items(), key=lambda kv: -kv[1])) or "-"
        intact = r["rows"] == r["ok"] and r["ok"] + failures == r["attempted"]
        if label.startswith("postgresql"):  # ours must be perfect; SQLite's faults are the finding
            verdict &= intact and failures == 0
        elif not intact:
            notes.append(
                f"{label} ({load}): the table holds {r['rows']} rows for {r['ok']} reported successes "
                f"— a write reported as failed had in fact been committed, or the reverse"
            )
        print(
            f"| {load} | {label} | {r['ok']} | {failures} ({kinds}) | {r['per_s']:.0f} | {r['p50']:.1f} "
            f"| {r['p99']:.1f} | {r['max']:.0f} | {r['rows']} | {'yes' if intact else 'NO'} |"
        )
    for note in notes:
        print(f"\nSQLite: {note}.")
    print("\nPostgreSQL: zero failures and a row count equal to its successes: " + ("PASS" if verdict else "FAIL"))
    sys.exit(0 if verdict else 1)


if __name__ == "__main__":
    main()
