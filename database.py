"""Database access for the app: the process's pool, transactions, the schema, Flask glue.

- ``get_pool()`` builds one ``ConnectionPool`` per process, lazily, so gunicorn workers
  each get their own after the fork;
- ``transaction()`` commits once, at the outermost block; nested blocks are savepoints;
- ``get_db()`` lends a request one connection on ``flask.g`` and takes it back at teardown;
- ``apply_schema()`` / ``flask --app app init-db`` run schema_postgres.sql;
- every session of the pool runs under ``StatementBounds`` (the web's: short), and
  ``long_running(cur)`` gives one transaction the longer bounds of jobs and the CLI.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click
import psycopg2
import psycopg2.errors
import psycopg2.extensions

import db_config
from connection_pool import Connection, ConnectionPool, DatabaseUnavailable, PoolForkedError, PoolTimeout  # noqa: F401

SCHEMA_FILE = Path(__file__).with_name("schema_postgres.sql")
SCHEMA_VERSION = 20
# Any constant works; it only has to be the same in every process applying the schema.
SCHEMA_LOCK_KEY = 7_214_052_019


# -- how long the database may keep anyone waiting -----------------------------------
@dataclass(frozen=True)
class StatementBounds:
    """Seconds one statement may run, one lock may be waited for, and a transaction may sit
    idle before PostgreSQL ends it (0: no bound). The web's bounds hold on every session
    of the pool, so a locked table or a runaway query turns into a quick 503 instead of a
    hung thread; jobs, exports and the CLI take longer ones per transaction."""

    statement: float
    lock: float
    idle_in_transaction: float

    def settings(self) -> dict[str, int]:
        return {
            "statement_timeout": round(self.statement * 1000),
            "lock_timeout": round(self.lock * 1000),
            "idle_in_transaction_session_timeout": round(self.idle_in_transaction * 1000),
        }

    def session_options(self) -> str:
        """libpq's ``options``: the bounds as the session's defaults, with no round trip."""
        return " ".join(f"-c {name}={ms}" for name, ms in self.settings().items())


WEB_BOUNDS = StatementBounds(statement=5.0, lock=0.5, idle_in_transaction=30.0)
JOB_BOUNDS = StatementBounds(statement=600.0, lock=60.0, idle_in_transaction=600.0)
_job_bounds = JOB_BOUNDS


def long_running(cur, bounds: StatementBounds | None = None) -> None:
    """Give the current transaction the job bounds (``SET LOCAL``: they end with it, and
    work through PgBouncer's transaction pooling). For a sync's write, a schema change,
    a streamed export: work that is allowed to take minutes and wait for locks."""
    settings = (bounds or _job_bounds).settings()
    cur.execute("; ".join(f"SET LOCAL {name} = %s" for name in settings), list(settings.values()))


def run_with_bound(cur, seconds: float, statement: str, params=()) -> None:
    """One statement under a bound of its own (a health probe must not wait like a page)."""
    ms = max(1, round(seconds * 1000))
    cur.execute("SET LOCAL statement_timeout = %s; SET LOCAL lock_timeout = %s", (ms, ms))
    cur.execute(statement, params)


# -- the process's pool -------------------------------------------------------------
_settings: dict = {}
_pool: ConnectionPool | None = None
_pool_lock = threading.Lock()
# Pools inherited across a fork: kept referenced so garbage collection in the child never
# closes (and so terminates) sessions that still belong to the parent.
_inherited_pools: list = []


def configure(
    url_factory,
    minconn: int = 2,
    maxconn: int = 10,
    timeout: float = 5.0,
    description: str = "the database",
    bounds: StatementBounds = WEB_BOUNDS,
    job_bounds: StatementBounds = JOB_BOUNDS,
) -> None:
    """Say how to build the pool; it is built on first use in each process."""
    global _job_bounds
    close_pool()
    with _pool_lock:
        _settings.update(
            url_factory=url_factory,
            minconn=minconn,
            maxconn=maxconn,
            timeout=timeout,
            description=description,
            bounds=bounds,
        )
        _job_bounds = job_bounds


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
            _pool = ConnectionPool(
                url,
                _settings["minconn"],
                _settings["maxconn"],
                _settings["timeout"],
                _settings["description"],
                options=_settings["bounds"].session_options(),
            )
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


@contextmanager
def single_statement(conn: Connection | None = None):
    """Yield a cursor for a read asked in ONE statement, outside any transaction block.

    A statement outside a block is its own transaction (one snapshot, all or nothing), so
    a view that asks everything it needs in one statement pays one round trip instead of
    three (BEGIN, the statement, COMMIT): the difference between a page that is as cheap
    as /healthz and one that is not (issue 15). Inside a ``transaction()`` block (or a
    connection with a transaction open) it is simply a cursor of that block. Never for
    writes: each statement would commit on its own.
    """
    if conn is None:
        from flask import has_app_context

        if not has_app_context():
            with connection() as borrowed:
                with single_statement(borrowed) as cur:
                    yield cur
            return
        conn = get_db()
    if conn.transaction_depth or conn.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE:
        with transaction(conn) as cur:
            yield cur
        return
    conn.autocommit = True  # no round trip: psycopg2 only stops sending BEGIN
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.autocommit = False


# The first day a dashboard query includes: the %(since)s parameter, or no bound (None).
SINCE = "coalesce(%(since)s::date, '-infinity'::date)"


def write_despite_outage(write, what: str, attempts: int = 30, pause: float = 1.0) -> bool:
    """Run ``write(cur)`` in a transaction of its own, waiting out a database outage: the
    outcome of a background run (a sync, an import) must be recorded, and the likeliest
    reason the run failed is the very outage that would stop us from saying so. Returns
    whether it was written; the last failure is logged with ``what``."""
    import logging
    import time

    for attempt in range(1, attempts + 1):
        try:
            with transaction() as cur:
                write(cur)
            return True
        except (DatabaseUnavailable, psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
            if attempt == attempts:
                logging.getLogger(__name__).error("%s: could not be recorded: %s", what, exc)
                return False
            time.sleep(pause)
    return False


def fetch_all(cur) -> list[dict]:
    """The cursor's remaining rows as dicts keyed by column name."""
    names = [column.name for column in cur.description]
    return [dict(zip(names, values, strict=True)) for values in cur.fetchall()]


def fetch_one(cur) -> dict | None:
    """The next row as a dict, or None when there is none (a lookup that may miss)."""
    values = cur.fetchone()
    return None if values is None else dict(zip([column.name for column in cur.description], values, strict=True))


def fetch_single(cur) -> dict:
    """The row a statement always returns (an aggregate, an upsert's RETURNING): no row is
    a bug, not a case for the caller to handle."""
    row = fetch_one(cur)
    if row is None:
        raise LookupError("the statement returned no row where it always returns one")
    return row


def fetch_value(cur):
    """The first column of the row a statement always returns (a count, a RETURNING id)."""
    return next(iter(fetch_single(cur).values()))


# -- schema -------------------------------------------------------------------------
def apply_schema(conn) -> int:
    """Run schema_postgres.sql (idempotent) and return the recorded schema version.

    The advisory lock serialises concurrent runs (two workers starting at once), which
    ``CREATE ... IF NOT EXISTS`` alone does not survive. The caller commits.
    """
    with conn.cursor() as cur:
        long_running(cur)  # a new version may rewrite big tables, and waits for running syncs
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))
        cur.execute(SCHEMA_FILE.read_text())
        apply_engine_schema(cur)
        cur.execute("SELECT max(version) FROM schema_version")
        return cur.fetchone()[0]


def apply_engine_schema(cur) -> None:
    """The job engine's tables, from procrastinate's own schema file, once. Its schema is
    not idempotent; a new procrastinate version's migrations are applied by hand (README)."""
    cur.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
    if not cur.fetchone()[0]:
        from procrastinate.schema import SchemaManager

        cur.execute(SchemaManager.get_schema())


def analyze_tables(cur) -> None:
    """Give the planner statistics now rather than after autovacuum's next pass: right
    after a first big load, stale estimates make the dashboard queries 20x slower."""
    cur.execute("ANALYZE snapshots, saved_tracks, plays, tracks, artists")


def schema_version(conn, bound: float | None = None) -> int | None:
    """The applied schema version, or None when init-db has never run. With ``bound``
    (seconds) the reads also touch ``users``, which every signed-in page reads first, and
    give up after that long (QueryCanceled or LockNotAvailable)."""
    with conn.cursor() as cur:
        if bound is not None:
            run_with_bound(cur, bound, "SELECT to_regclass('schema_version') IS NOT NULL, to_regclass('users')")
        else:
            cur.execute("SELECT to_regclass('schema_version') IS NOT NULL, to_regclass('users')")
        has_version, users = cur.fetchone()
        if not has_version:
            return None
        if users is not None and bound is not None:
            cur.execute("SELECT 1 FROM users LIMIT 1")  # waits, within the bound, on a lock someone holds
        cur.execute("SELECT max(version) FROM schema_version")
        return cur.fetchone()[0]


def health(budget: float = 1.0) -> dict:
    """Database status and pool counts for /healthz; ``ok`` is False when it cannot serve.

    The wait for a connection and the reads together take at most ``budget`` seconds: past
    that the database is reported "slow" (a locked table, every connection busy) instead
    of the probe waiting with it.
    """
    report: dict = {"ok": False, "database": "unavailable", "schema_version": None, "pool": None}
    try:
        pool = get_pool()
        report["pool"] = pool.stats()
        started = time.monotonic()
        with pool.connection(timeout=budget) as conn:
            version = schema_version(conn, bound=budget - (time.monotonic() - started))
            conn.rollback()
    except PoolTimeout as exc:
        report.update(database="slow", error=f"the database did not answer within {budget:g} s: {exc}")
        return report
    except (psycopg2.errors.QueryCanceled, psycopg2.errors.LockNotAvailable) as exc:
        report.update(
            database="slow", error=f"the database did not answer within {budget:g} s ({db_config.first_line(exc)})"
        )
        return report
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
# Seconds the request waited for a thread before the app saw it; set by gunicorn_worker.
QUEUE_SECONDS = "music_time_machine.queue_seconds"


def get_db() -> Connection:
    """The request's connection: borrowed on first use, returned at teardown.

    The wait for it is bounded by DB_POOL_TIMEOUT counted from when gunicorn queued the
    request (gunicorn_worker.QUEUE_SECONDS), not from now: a request that already waited
    that long in front of the app is turned away at once (PoolTimeout, a 503 with
    Retry-After) rather than served after its client gave up.
    """
    from flask import g, has_request_context, request

    if "db_conn" not in g:
        pool = get_pool()
        queued = request.environ.get(QUEUE_SECONDS, 0.0) if has_request_context() else 0.0
        if pool.timeout > 0 and queued >= pool.timeout:  # 0 means "only a free connection"
            pool.count_timeout()
            raise PoolTimeout(
                f"the request waited {queued:.1f} s for a worker thread, past DB_POOL_TIMEOUT ({pool.timeout:g} s)"
            )
        g.db_conn = pool.getconn(timeout=max(pool.timeout - queued, 0.0))
    return g.db_conn


def return_db(exc=None) -> None:
    from flask import g

    conn = g.pop("db_conn", None)
    if conn is not None and get_pool().lent(conn):  # tests may pin a connection of their own
        get_pool().putconn(conn)


def database_environ(config) -> dict:
    """The environment with the app's database settings laid over it: what db_config reads."""
    names = ("DATABASE_URL", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PASSWORD")
    return {**os.environ, **{k: str(config[k]) for k in names if config.get(k) is not None}}


def bounds_from_config(config, prefix: str, default: StatementBounds) -> StatementBounds:
    return StatementBounds(
        statement=float(config.get(f"{prefix}STATEMENT_TIMEOUT", default.statement)),
        lock=float(config.get(f"{prefix}LOCK_TIMEOUT", default.lock)),
        idle_in_transaction=float(config.get(f"{prefix}IDLE_IN_TRANSACTION_TIMEOUT", default.idle_in_transaction)),
    )


def init_app(app) -> None:
    settings = app.config
    instance_dir = Path(app.instance_path)
    environ = database_environ(settings)
    configure(
        lambda: db_config.database_url_from_env(environ, instance_dir),
        minconn=int(settings.get("DB_POOL_MIN", 2)),
        maxconn=int(settings.get("DB_POOL_MAX", 10)),
        timeout=float(settings.get("DB_POOL_TIMEOUT", 5)),
        description=db_config.describe_source(environ, instance_dir),
        bounds=bounds_from_config(settings, "DB_", WEB_BOUNDS),
        job_bounds=bounds_from_config(settings, "DB_JOB_", JOB_BOUNDS),
    )
    if db_config.uses_embedded_server(environ):
        db_config.exit_cleanly_on_sigterm()
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
