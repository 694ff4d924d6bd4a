"""The connection pool, transactions, and the schema command.

psycopg2's ``ThreadedConnectionPool`` stores the connections; ``ConnectionPool`` wraps it
to fix what it lacks (see DESIGN.md, "psycopg2 pool facts"):

- it raises ``PoolError`` the moment it is full: here a borrower waits up to
  ``DB_POOL_TIMEOUT`` on a semaphore, then gets ``PoolTimeout`` (HTTP 503 + Retry-After);
- it hands out connections the server has already closed (after a restart): here each
  checkout looks at the socket and replaces a dead connection with a fresh one;
- its ``putconn`` leaks a slot when the rollback of a broken connection raises: here the
  rollback happens first and a connection that cannot be rolled back is closed;
- it closes every returned connection above ``minconn``, reconnecting under load: here
  idle connections are kept up to ``maxconn``;
- it is not fork-safe: a pool belongs to the process that made it, refuses to work in a
  forked child, and ``get_pool()`` lazily makes a fresh one per process.
"""
from __future__ import annotations

import atexit
import logging
import os
import select
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import click
import psycopg2
import psycopg2.extensions
from psycopg2.pool import PoolError, ThreadedConnectionPool

import db_config

SCHEMA_FILE = Path(__file__).with_name("schema_postgres.sql")
SCHEMA_VERSION = 1
# Any constant works; it only has to be the same in every process applying the schema.
SCHEMA_LOCK_KEY = 7_214_052_019

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


class ConnectionPool:
    def __init__(self, dsn: str, minconn: int = 2, maxconn: int = 10, timeout: float = 5.0,
                 description: str = "the database"):
        if not 0 <= minconn <= maxconn or maxconn < 1:
            raise ValueError(f"need 0 <= DB_POOL_MIN <= DB_POOL_MAX and DB_POOL_MAX >= 1 (got {minconn}, {maxconn})")
        self.dsn = dsn
        self.maxconn = maxconn
        self.timeout = timeout
        self.description = description
        self.pid = os.getpid()
        self._slots = threading.BoundedSemaphore(maxconn)
        self._lock = threading.Lock()
        self._waiting = 0
        self._in_use = 0
        self.replaced = 0
        self.timeouts = 0
        self.closed = False
        # minconn=0: never connect inside the constructor, so an app can start (and say
        # 503) while its database is down. Then raise the keep-threshold to maxconn.
        self._store = ThreadedConnectionPool(0, maxconn, dsn, connection_factory=Connection,
                                             connect_timeout=int(os.environ.get("DB_CONNECT_TIMEOUT", "5")))
        self._store.minconn = maxconn
        atexit.register(self._close_at_exit)
        self._warm_up(minconn)

    # -- borrowing ---------------------------------------------------------------
    def getconn(self) -> Connection:
        """A healthy connection, waiting up to ``timeout`` seconds for a free slot."""
        self._refuse_if_forked()
        with self._lock:
            self._waiting += 1
        try:
            got_slot = self._slots.acquire(timeout=self.timeout)
        finally:
            with self._lock:
                self._waiting -= 1
        if not got_slot:
            with self._lock:
                self.timeouts += 1
            raise PoolTimeout(f"all {self.maxconn} database connections stayed busy for {self.timeout:g} s")
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
    def connection(self):
        conn = self.getconn()
        try:
            yield conn
        finally:
            self.putconn(conn)

    # -- health ------------------------------------------------------------------
    def _healthy_connection(self) -> Connection:
        # Each discarded connection is one fewer candidate, so maxconn + 1 rounds always
        # reach a freshly opened connection (or a connect error).
        for _ in range(self.maxconn + 1):
            try:
                conn = self._store.getconn()
            except psycopg2.OperationalError as exc:
                raise DatabaseUnavailable(
                    f"cannot connect to {self.description}: {db_config.first_line(exc)}") from None
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
            return {"size": self.maxconn, "in_use": self._in_use, "idle": idle,
                    "waiting": self._waiting, "replaced": self.replaced, "timeouts": self.timeouts}

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
                "connections must not cross a fork; use database.get_pool() in the child")


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


# -- the process's pool -------------------------------------------------------------
_settings: dict = {}
_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()
# Pools inherited across a fork: kept referenced so garbage collection in the child never
# closes (and so terminates) sessions that still belong to the parent.
_inherited_pools: list = []


def configure(url_factory, minconn: int = 2, maxconn: int = 10, timeout: float = 5.0,
              description: str = "the database") -> None:
    """Say how to build the pool; it is built on first use in each process."""
    close_pool()
    with _pool_lock:
        _settings.update(url_factory=url_factory, minconn=minconn, maxconn=maxconn,
                         timeout=timeout, description=description)


def get_pool() -> ConnectionPool:
    global _pool
    pool = _pool
    if pool is not None and pool.pid == os.getpid() and not pool.closed:
        return pool
    with _pool_lock:
        if _pool is not None and _pool.pid != os.getpid():
            _inherited_pools.append(_pool)
            _pool = None
        if _pool is None or _pool.closed:
            if not _settings:
                raise RuntimeError("database.configure() has not been called")
            url = _settings["url_factory"]()
            _pool = ConnectionPool(url, _settings["minconn"], _settings["maxconn"],
                                   _settings["timeout"], _settings["description"])
        return _pool


def close_pool() -> None:
    """Close this process's pool, if it has one (tests, and re-configuration)."""
    global _pool
    with _pool_lock:
        if _pool is not None and _pool.pid == os.getpid():
            _pool.close()
        _pool = None


@contextmanager
def connection():
    """Borrow a connection for code outside a request (CLI commands, jobs)."""
    with get_pool().connection() as conn:
        yield conn


@contextmanager
def transaction(conn: Connection | None = None):
    """Yield a cursor. The outermost block commits on success and rolls back on error;
    nested blocks become savepoints, so a data function never commits for its caller.

    Without ``conn`` it uses the request's connection (``get_db()``) inside Flask, or
    borrows one from the pool outside it.
    """
    if conn is None:
        from flask import has_app_context
        if not has_app_context():
            with connection() as borrowed:
                with transaction(borrowed) as cur:
                    yield cur
            return
        conn = get_db()
    depth = conn.transaction_depth
    savepoint = f"sp_{depth}"
    conn.transaction_depth = depth + 1
    try:
        with conn.cursor() as cur:
            if depth:
                cur.execute(f"SAVEPOINT {savepoint}")
            try:
                yield cur
            except BaseException:
                if depth:
                    cur.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                else:
                    conn.rollback()
                raise
            if depth:
                cur.execute(f"RELEASE SAVEPOINT {savepoint}")
            else:
                conn.commit()
    finally:
        conn.transaction_depth = depth


# -- schema -------------------------------------------------------------------------
def apply_schema(conn) -> int:
    """Run schema_postgres.sql (idempotent) and return the recorded schema version.

    The advisory lock serialises concurrent runs (two workers starting at once), which
    ``CREATE ... IF NOT EXISTS`` alone does not survive. The caller commits.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        cur.execute(SCHEMA_FILE.read_text())
        cur.execute("SELECT max(version) FROM schema_version")
        return cur.fetchone()[0]


def schema_version(conn) -> int | None:
    """The applied schema version, or None when init-db has never run."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        if not cur.fetchone()[0]:
            return None
        cur.execute("SELECT max(version) FROM schema_version")
        return cur.fetchone()[0]


def health() -> dict:
    """Database status and pool counts for /healthz; ``ok`` is False when it cannot serve."""
    report = {"ok": False, "database": "unavailable", "schema_version": None, "pool": None}
    try:
        pool = get_pool()
        report["pool"] = pool.stats()
        with pool.connection() as conn:
            version = schema_version(conn)
            conn.rollback()
    except (DatabaseUnavailable, db_config.DatabaseConfigError) as exc:
        report["error"] = str(exc)
        return report
    except psycopg2.Error as exc:
        report["error"] = f"database error: {db_config.first_line(exc)}"
        return report
    report.update(database="ok", schema_version=version, pool=pool.stats())
    if version is None or version < SCHEMA_VERSION:
        report["error"] = "schema not applied: run `flask --app app init-db`"
    else:
        report["ok"] = True
    return report


# -- Flask glue ---------------------------------------------------------------------
def get_db() -> Connection:
    """The request's connection: borrowed on first use, returned at teardown."""
    from flask import g
    if "db_conn" not in g:
        g.db_conn = get_pool().getconn()
    return g.db_conn


def return_db(exc=None) -> None:
    from flask import g
    conn = g.pop("db_conn", None)
    if conn is not None and get_pool().lent(conn):  # tests may pin a connection of their own
        get_pool().putconn(conn)


def init_app(app) -> None:
    settings = app.config
    instance_dir = Path(app.instance_path)
    environ = {**os.environ, **{k: str(v) for k, v in settings.items()
                                if k in ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD")
                                and v is not None}}
    configure(lambda: db_config.database_url_from_env(environ, instance_dir),
              minconn=int(settings.get("DB_POOL_MIN", 2)), maxconn=int(settings.get("DB_POOL_MAX", 10)),
              timeout=float(settings.get("DB_POOL_TIMEOUT", 5)),
              description=db_config.describe_source(environ, instance_dir))
    app.teardown_appcontext(return_db)
    app.cli.add_command(init_db_command)


@click.command("init-db")
def init_db_command():
    """Create or update the tables, indexes and triggers (safe to run again)."""
    try:
        with connection() as conn:
            version = apply_schema(conn)
            conn.commit()
    except (DatabaseUnavailable, db_config.DatabaseConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except psycopg2.Error as exc:
        raise click.ClickException(f"applying {SCHEMA_FILE.name} failed: {db_config.first_line(exc)}") from None
    click.echo(f"Schema version {version} is in place ({get_pool().description}).")
