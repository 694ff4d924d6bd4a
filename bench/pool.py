"""Pool benchmark: our ConnectionPool against psycopg2's bare ThreadedConnectionPool.

    .venv/bin/python bench/pool.py [--threads 64] [--cycles 200] [--maxconn 10]

Both pools face the same load in one run: THREADS threads x CYCLES borrow-query-return
cycles on MAXCONN connections, each query holding its connection ~2 ms. Then the same
load again while the PostgreSQL server is restarted in the middle. The server is an
embedded PostgreSQL of the benchmark's own (so it can be restarted); prints a Markdown
table for the README.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from psycopg2.pool import ThreadedConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import db_config  # noqa: E402
from database import ConnectionPool  # noqa: E402

QUERY = "SELECT pg_sleep(0.002)"


def borrow_query_return(pool) -> float:
    """One cycle, the same for both pools; returns the seconds spent waiting to borrow."""
    started = time.perf_counter()
    conn = pool.getconn()  # the bare pool raises PoolError at once when all are busy
    waited = time.perf_counter() - started
    try:
        with conn.cursor() as cur:
            cur.execute(QUERY)
        conn.commit()
    finally:
        pool.putconn(conn)  # the bare pool leaks the slot when a broken connection makes this raise
    return waited


class BarePool:
    """What an app built on psycopg2's pool alone does: borrow, query, commit, give back."""

    def __init__(self, url, maxconn):
        self.pool = ThreadedConnectionPool(2, maxconn, url)

    def cycle(self):
        return borrow_query_return(self.pool)

    def leaked_slots(self):
        return len(self.pool._used)  # type: ignore[attr-defined]  # psycopg2's own bookkeeping

    def close(self):
        self.pool.closeall()


class OurPool:
    def __init__(self, url, maxconn):
        self.pool = ConnectionPool(url, minconn=2, maxconn=maxconn, timeout=5)

    def cycle(self):
        return borrow_query_return(self.pool)

    def leaked_slots(self):
        return self.pool.stats()["in_use"]

    def close(self):
        self.pool.close()


def run(pool, threads, cycles, restart=None):
    """Run the load; ``restart(done_fraction)`` may restart the server mid-way."""
    waits: list[float] = []
    errors: Counter[str] = Counter()
    error_times: list[float] = []
    lock = threading.Lock()
    done = [0]
    total = threads * cycles

    def worker():
        for _ in range(cycles):
            try:
                waited = pool.cycle()
                with lock:
                    waits.append(waited)
            except Exception as exc:
                with lock:
                    errors[type(exc).__name__] += 1
                    error_times.append(time.monotonic())
            with lock:
                done[0] += 1

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    outage = None
    if restart:
        while done[0] < total * 0.4:
            time.sleep(0.01)
        outage = restart()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - started
    waits.sort()
    result = {
        "ok": len(waits),
        "errors": sum(errors.values()),
        "kinds": dict(errors),
        "per_s": len(waits) / elapsed,
        "p50": statistics.median(waits) * 1000 if waits else float("nan"),
        "p99": waits[int(len(waits) * 0.99) - 1] * 1000 if waits else float("nan"),
        "max": waits[-1] * 1000 if waits else float("nan"),
        "leaked": pool.leaked_slots(),
    }
    if outage:
        down, back = outage
        late = [t for t in error_times if t > back]
        result["outside"] = len([t for t in error_times if t < down or t > back + 2])
        result["recovered_s"] = (max(late) - back) if late else 0.0
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=64)
    parser.add_argument("--cycles", type=int, default=200)
    parser.add_argument("--maxconn", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        server = db_config.EmbeddedPostgres(Path(tmp), cleanup_mode="delete")
        url = server.url("bench")

        def restart():
            down = time.monotonic()
            server.restart()
            return down, time.monotonic()

        rows = []
        for label, make in (("psycopg2 ThreadedConnectionPool", BarePool), ("our ConnectionPool", OurPool)):
            for scenario, restarter in (("steady", None), ("server restarted mid-run", restart)):
                pool = make(url, args.maxconn)
                result = run(pool, args.threads, args.cycles, restarter)
                try:
                    pool.close()
                except Exception:
                    pass
                rows.append((label, scenario, result))
        server.server().cleanup()

    print(
        f"\n{args.threads} threads x {args.cycles} cycles, maxconn {args.maxconn}, "
        f"query `{QUERY}`, embedded PostgreSQL 18\n"
    )
    print(
        "| pool | scenario | ok cycles | errors (kinds) | cycles/s | wait p50 ms | wait p99 ms | wait max ms "
        "| errors outside outage+2 s | last error after server back | slots leaked |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, scenario, r in rows:
        kinds = ", ".join(f"{k} {v}" for k, v in r["kinds"].items()) or "-"
        outside = r.get("outside", "n/a")
        recovered = f"{r['recovered_s']:.2f} s" if "recovered_s" in r else "n/a"
        print(
            f"| {label} | {scenario} | {r['ok']} | {r['errors']} ({kinds}) | {r['per_s']:.0f} "
            f"| {r['p50']:.2f} | {r['p99']:.2f} | {r['max']:.0f} | {outside} | {recovered} | {r['leaked']} |"
        )


if __name__ == "__main__":
    main()
