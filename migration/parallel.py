"""Several PostgreSQL sessions working on a private build at once.

Each task is a function of a cursor, run on a session of its own (autocommit: each
statement commits, which is fine for a private schema nobody else reads). A task starts
once the tasks it waits for have finished (keys before the foreign keys that need them),
as many at once as there are sessions. A failure or a Ctrl-C cancels what the other sessions are running, so the
caller can drop the private schema at once instead of waiting behind their locks.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

import psycopg2

Task = Callable[[Any], Any]


class Sessions:
    """``size`` connections to ``url``, each prepared by ``setup`` (a list of SET statements)."""

    def __init__(self, url: str, size: int, setup: Iterable[str]):
        self._connections = []
        self._idle: queue.Queue = queue.Queue()
        try:
            for n in range(size):
                conn = psycopg2.connect(url, connect_timeout=10, application_name=f"migrate_to_postgresql/{n + 1}")
                conn.autocommit = True
                self._connections.append(conn)
                with conn.cursor() as cur:
                    for statement in setup:
                        cur.execute(statement)
                self._idle.put(conn)
        except BaseException:
            self.close()
            raise
        self._pool = ThreadPoolExecutor(size, thread_name_prefix="pg-session")

    def _run(self, task: Task) -> Any:
        conn = self._idle.get()
        try:
            with conn.cursor() as cur:
                return task(cur)
        finally:
            self._idle.put(conn)

    def submit(self, task: Task) -> Future:
        return self._pool.submit(self._run, task)

    def cancel(self) -> None:
        """Interrupt whatever the sessions are running (a no-op on an idle one)."""
        for conn in self._connections:
            if not conn.closed:
                conn.cancel()

    def close(self) -> None:
        self.cancel()
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for conn in self._connections:
            conn.close()

    def __enter__(self) -> Sessions:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def run_graph(sessions: Sessions, tasks: Mapping[str, tuple[Task, Iterable[str]]]) -> dict[str, Any]:
    """Run named tasks, each once the tasks it names have finished; their results by name.

    As many run at once as there are sessions, so the server's cores stay busy with
    whatever is ready (an index of one table while another table still loads)."""
    waiting = {name: set(after) for name, (_, after) in tasks.items()}
    unknown = {dep for deps in waiting.values() for dep in deps} - set(tasks)
    if unknown:
        raise ValueError(f"tasks wait for unknown tasks: {sorted(unknown)}")
    results: dict[str, Any] = {}
    running: dict[Future, str] = {}
    try:
        while waiting or running:
            for name in [n for n, deps in waiting.items() if deps <= results.keys()]:
                del waiting[name]
                running[sessions.submit(tasks[name][0])] = name
            if not running:
                raise ValueError(f"tasks wait for each other: {sorted(waiting)}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                name = running.pop(future)
                results[name] = future.result()  # raises the task's error
    except BaseException:
        sessions.cancel()
        raise
    return results


def statement(sql_statement) -> Task:
    """A task that runs one statement."""

    def run(cur) -> None:
        cur.execute(sql_statement)

    return run
