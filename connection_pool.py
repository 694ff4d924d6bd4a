"""ConnectionPool: psycopg2's ThreadedConnectionPool made to wait, heal and respect forks.

psycopg2's ``ThreadedConnectionPool`` stores the connections; ``ConnectionPool`` wraps it
to fix what it lacks (README.md, "The connection pool", has the measurements):

- it raises ``PoolError`` the moment it is full: here a borrower waits, first come first
  served, up to ``timeout`` seconds, then gets ``PoolTimeout`` (HTTP 503 + Retry-After);
- it hands out connections the server has already closed (after a restart): here each
  checkout looks at the socket and replaces a dead connection with a fresh one;
- its ``putconn`` leaks a slot when the rollback of a broken connection raises: here the
  rollback happens first and a connection that cannot be rolled back is closed;
- it closes every returned connection above ``minconn``, reconnecting under load: here
  idle connections are kept up to ``maxconn``;
- it is not fork-safe: a pool belongs to the process that made it and refuses to work in
  a forked child (``database.get_pool()`` makes a fresh one per process).

No Flask here; ``database.py`` holds the per-process pool and the Flask glue.
"""

from __future__ import annotations

import atexit
import logging
import os
import select
import threading
from collections import deque
from contextlib import contextmanager
from typing import cast

import psycopg2
import psycopg2.extensions
from psycopg2.pool import PoolError, ThreadedConnectionPool

import db_config

log = logging.getLogger(__name__)
_STATUS = psycopg2.extensions


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached or used; the request should be retried later."""

    retry_after = 5


class PoolTimeout(DatabaseUnavailable):
    """Every pool slot stayed busy for the whole ``DB_POOL_TIMEOUT``."""

    retry_after = 1


class PoolForkedError(RuntimeError):
    """A pool was used in a process forked from the one that created it."""


class Connection(psycopg2.extensions.connection):
    """A psycopg2 connection that knows how deep in ``transaction()`` blocks it is."""

    transaction_depth = 0


class FairSlots:
    """A counting semaphore that serves waiters first come, first served.

    ``threading.Semaphore`` lets the thread that just released a slot take it straight
    back (it still holds the GIL), so under sustained load an unlucky waiter can starve
    until its timeout while the pool cycles happily. Here a released slot is handed
    directly to the oldest waiter.
    """

    def __init__(self, count: int):
        self._free = count
        self._lock = threading.Lock()
        self._waiters: deque = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    def acquire(self, timeout: float) -> bool:
        with self._lock:
            if self._free and not self._waiters:
                self._free -= 1
                return True
            handoff = threading.Lock()
            handoff.acquire()
            self._waiters.append(handoff)
        if handoff.acquire(timeout=timeout):
            return True
        with self._lock:
            try:
                self._waiters.remove(handoff)
                return False
            except ValueError:
                return True  # a slot was handed over just as we gave up: it is ours

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                self._waiters.popleft().release()
            else:
                self._free += 1


class _Store(ThreadedConnectionPool):
    """psycopg2's thread-safe pool, typed for what this module reads of it: connections of
    our factory, and the two bookkeeping attributes its stubs leave out."""

    _pool: list[Connection]  # idle connections
    _rused: dict[int, Connection]  # lent out, by id()

    def getconn(self, key=None) -> Connection:
        return cast(Connection, super().getconn(key))


class ConnectionPool:
    def __init__(
        self,
        dsn: str,
        minconn: int = 2,
        maxconn: int = 10,
        timeout: float = 5.0,
        description: str = "the database",
        options: str = "",
    ):
        if not 0 <= minconn <= maxconn or maxconn < 1:
            raise ValueError(f"need 0 <= DB_POOL_MIN <= DB_POOL_MAX and DB_POOL_MAX >= 1 (got {minconn}, {maxconn})")
        self.dsn = dsn
        self.maxconn = maxconn
        self.timeout = timeout
        self.description = description
        self.pid = os.getpid()
        self._slots = FairSlots(maxconn)
        self._lock = threading.Lock()
        self._in_use = 0
        self.replaced = 0
        self.timeouts = 0
        self.closed = False
        # minconn=0: never connect inside the constructor, so an app can start (and say
        # 503) while its database is down. Then raise the keep-threshold to maxconn.
        # ``options``: server settings for every session (``-c name=value ...``), after
        # any the URL already carries, which a keyword argument would otherwise replace.
        session_options = " ".join(filter(None, [dsn_options(dsn), options]))
        self._store = _Store(
            0,
            maxconn,
            dsn,
            connection_factory=Connection,
            connect_timeout=int(os.environ.get("DB_CONNECT_TIMEOUT", "5")),
            **({"options": session_options} if session_options else {}),
        )
        self._store.minconn = maxconn
        atexit.register(self._close_at_exit)
        self._warm_up(minconn)

    # -- borrowing ---------------------------------------------------------------
    def getconn(self, timeout: float | None = None) -> Connection:
        """A healthy connection, waiting up to ``timeout`` seconds (default: the pool's)
        for a free slot."""
        self._refuse_if_forked()
        timeout = self.timeout if timeout is None else timeout
        if not self._slots.acquire(timeout=timeout):
            self.count_timeout()
            raise PoolTimeout(f"all {self.maxconn} database connections stayed busy for {timeout:g} s")
        try:
            conn = self._healthy_connection()
        except BaseException:
            self._slots.release()
            raise
        with self._lock:
            self._in_use += 1
        return conn

    def putconn(self, conn: Connection) -> None:
        """Take a connection back; roll back what it left open, close it if that fails."""
        self._refuse_if_forked()
        if self.closed:
            conn.close()
            return
        if not self.lent(conn):
            raise PoolError("this connection was not borrowed from this pool")
        close = not self._reset(conn)
        try:
            self._store.putconn(conn, close=close)
        finally:
            with self._lock:
                self._in_use -= 1
            self._slots.release()

    def lent(self, conn) -> bool:
        """True when ``conn`` is out on loan from this pool."""
        return not self.closed and id(conn) in self._store._rused

    @contextmanager
    def connection(self, timeout: float | None = None):
        conn = self.getconn(timeout)
        try:
            yield conn
        finally:
            self.putconn(conn)

    # -- health ------------------------------------------------------------------
    def count_timeout(self) -> None:
        """Count a request turned away for want of a connection (shown by /healthz)."""
        with self._lock:
            self.timeouts += 1

    def _healthy_connection(self) -> Connection:
        # Each discarded connection is one fewer candidate, so maxconn + 1 rounds always
        # reach a freshly opened connection (or a connect error).
        for _ in range(self.maxconn + 1):
            try:
                conn = self._store.getconn()
            except psycopg2.OperationalError as exc:
                raise DatabaseUnavailable(
                    f"cannot connect to {self.description}: {db_config.first_line(exc)}"
                ) from None
            if is_usable(conn):
                return conn
            self._store.putconn(conn, close=True)
            with self._lock:
                self.replaced += 1
        raise DatabaseUnavailable(f"no usable connection to {self.description}")

    @staticmethod
    def _reset(conn: Connection) -> bool:
        """Return the connection to a clean idle state; False when it is beyond repair."""
        if conn.closed:
            return False
        status = conn.info.transaction_status
        if status == _STATUS.TRANSACTION_STATUS_UNKNOWN:
            return False
        try:
            if status != _STATUS.TRANSACTION_STATUS_IDLE:
                conn.rollback()
            if conn.autocommit:
                conn.autocommit = False
        except psycopg2.Error:
            return False
        conn.transaction_depth = 0
        return True

    def _warm_up(self, count: int) -> None:
        """Open ``count`` connections now so the first requests do not pay for them."""
        borrowed = []
        try:
            for _ in range(count):
                borrowed.append(self._store.getconn())
        except psycopg2.OperationalError as exc:
            log.warning("database not reachable yet (%s); will retry on first use", db_config.first_line(exc))
        for conn in borrowed:
            self._store.putconn(conn)

    # -- introspection and lifetime ----------------------------------------------
    def stats(self) -> dict:
        with self._lock:
            idle = len(self._store._pool)  # psycopg2 keeps idle connections in this list
            return {
                "size": self.maxconn,
                "in_use": self._in_use,
                "idle": idle,
                "waiting": self._slots.waiting,
                "replaced": self.replaced,
                "timeouts": self.timeouts,
            }

    def close(self) -> None:
        self._refuse_if_forked()
        if not self.closed:
            self.closed = True
            self._store.closeall()

    def _close_at_exit(self) -> None:
        # A forked child inherits this handler; closing there would end the parent's sessions.
        if os.getpid() == self.pid and not self.closed:
            self.close()

    def _refuse_if_forked(self) -> None:
        if os.getpid() != self.pid:
            raise PoolForkedError(
                f"this connection pool belongs to process {self.pid}, not {os.getpid()}: "
                "connections must not cross a fork; use database.get_pool() in the child"
            )


def dsn_options(dsn: str) -> str | None:
    try:
        return psycopg2.extensions.parse_dsn(dsn).get("options")
    except psycopg2.ProgrammingError:
        return None  # a malformed URL: connecting reports it, naming the setting


def is_usable(conn: Connection) -> bool:
    """Cheap liveness check of an idle connection, without a round trip.

    An idle connection's socket has nothing to read unless the server sent something on
    its own, and the only thing it sends unasked is a goodbye: the FATAL message and EOF
    of a shutdown, restart or terminated backend. A readable socket means "dead".
    """
    if conn.closed or conn.info.transaction_status != _STATUS.TRANSACTION_STATUS_IDLE:
        return False
    try:
        readable, _, _ = select.select([conn], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable
