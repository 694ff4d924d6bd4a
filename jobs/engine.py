"""The job engine: one procrastinate ``App`` on the app's own PostgreSQL.

Workers fetch jobs through an async psycopg 3 pool of their own (procrastinate's
``PsycopgConnector``); everything synchronous, which is every ``defer()`` from a Flask
request or from a task, goes through procrastinate's psycopg2 connector over the app's
own pool (``database.get_pool()``), so a web process opens no second pool.

Register a task (in a module listed in ``TASK_MODULES``, so every worker knows it)::

    from jobs.engine import engine, flask_app_context, RETRY

    @engine.task(name="history.import", queue="imports", retry=RETRY)
    def import_history(upload_id: int) -> None:
        with flask_app_context():          # current_app, settings, transaction()
            ...

Defer it from a Flask request (or a CLI command, or another task)::

    from jobs.engine import defer
    job_id = defer("history.import", upload_id=7, lock=f"user:{user_id}")

``lock`` runs jobs sharing it one at a time (every job about one person uses
``user_lock(user_id)``); ``queueing_lock`` keeps at most one of them waiting
(``defer`` then returns None). A task's exception is retried with backoff by ``RETRY``
(``jobs.retries``) until its bound; a SIGKILLed worker's job is retried by the
``retry_stalled_jobs`` housekeeping task.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import procrastinate
import psycopg2
from procrastinate.contrib.psycopg2 import Psycopg2Connector
from psycopg2.extras import RealDictCursor

import database
import db_config

log = logging.getLogger(__name__)

# Modules whose import registers tasks; a worker imports them all before its first job.
TASK_MODULES = ["jobs.sync_tasks", "jobs.capture", "jobs.housekeeping", "history.tasks"]


class _AppPoolForEngine:
    """The app's psycopg2 pool, as procrastinate's psycopg2 connector wants a pool:
    ``getconn``/``putconn``, ``maxconn``, ``closed``, dict rows."""

    closed = False

    @property
    def maxconn(self) -> int:
        return database.get_pool().maxconn

    def getconn(self):
        conn = database.get_pool().getconn()
        conn.cursor_factory = RealDictCursor
        return conn

    def putconn(self, conn) -> None:
        conn.cursor_factory = None
        database.get_pool().putconn(conn)


class EngineConnector(procrastinate.PsycopgConnector):
    """Async psycopg 3 for workers; the app's psycopg2 pool for every synchronous call.

    procrastinate would otherwise answer a synchronous call with its async pool once a
    worker opened it, which breaks in a web thread of a process that also runs a worker
    (``flask run``): that pool belongs to the worker's event loop.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._app_pool_connector: Psycopg2Connector | None = None

    def get_sync_connector(self) -> Psycopg2Connector:
        if self._app_pool_connector is None:
            connector = Psycopg2Connector()
            connector.open(_AppPoolForEngine())  # type: ignore[arg-type]
            self._app_pool_connector = connector
        return self._app_pool_connector


engine = procrastinate.App(connector=EngineConnector(), import_paths=TASK_MODULES)

_flask_app = None


def bind_flask_app(app) -> None:
    """The Flask app whose settings and database this process's tasks use."""
    global _flask_app
    _flask_app = app


def bound_config() -> dict:
    """The bound Flask app's config ({} before one is bound)."""
    return _flask_app.config if _flask_app is not None else {}


@contextmanager
def flask_app_context() -> Iterator[None]:
    """An app context of the bound Flask app, for a task's body."""
    if _flask_app is None:
        raise RuntimeError("jobs.engine.bind_flask_app() was not called in this process")
    with _flask_app.app_context():
        yield


def user_lock(user_id: int) -> str:
    """The lock every job about one person shares: one such job runs at a time."""
    return f"user:{user_id}"


def defer(task_name: str, *, lock: str | None = None, queueing_lock: str | None = None, **task_kwargs) -> int | None:
    """Queue a job; None when ``queueing_lock`` says one is already waiting."""
    try:
        return engine.configure_task(task_name, lock=lock, queueing_lock=queueing_lock).defer(**task_kwargs)
    except procrastinate.exceptions.AlreadyEnqueued:
        return None


# -- running a worker -----------------------------------------------------------------
def worker_options(config) -> dict:
    """The worker's settings from the app's config (see README, Configuration)."""
    stalled_after = float(config.get("JOBS_STALLED_AFTER") or 30)
    return {
        "concurrency": int(config.get("JOBS_CONCURRENCY") or 8),
        "update_heartbeat_interval": max(stalled_after / 3, 0.5),
        "stalled_worker_timeout": stalled_after,
        "fetch_job_polling_interval": float(config.get("JOBS_POLL_INTERVAL") or 2),
        "abort_job_polling_interval": 5.0,
    }


async def _serve(url: str, options: dict, stop: asyncio.Event | None) -> None:
    # Sync tasks run on the default executor: give it one thread per concurrent job
    # (asyncio's default, cores + 4, would cap an I/O-bound worker at 6 jobs).
    concurrency = options["concurrency"]
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=concurrency + 2, thread_name_prefix="job")
    )
    # A pool of this run's own: one per job, plus the status updates, LISTEN, the
    # heartbeat and the periodic deferrer.
    connector = EngineConnector(conninfo=url, min_size=1, max_size=concurrency + 3, name="jobs")
    with engine.replace_connector(connector):
        async with engine.open_async():
            worker = asyncio.ensure_future(engine.run_worker_async(**options))
            if stop is None:
                await worker
                return
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not worker.done():
                worker.cancel()  # procrastinate turns this into a graceful stop
            stopper.cancel()
            await asyncio.gather(worker, return_exceptions=True)


def database_url(flask_app) -> str:
    """The URL of the app's database, starting the embedded server when it is the one."""
    environ = database.database_environ(flask_app.config)
    return db_config.database_url_from_env(environ, Path(flask_app.instance_path))


def schema_problem(url: str) -> str | None:
    """Why a worker cannot start on this database yet, in words for its log: no schema, or
    an older one than this code needs. None when it can, or when the database does not
    answer (the worker's own error then says why, and it retries)."""
    try:
        conn = psycopg2.connect(url, connect_timeout=5)
    except psycopg2.Error:
        return None
    try:
        version = database.schema_version(conn)
    finally:
        conn.close()
    if version is None:
        return "the database has no tables yet: run `flask --app app init-db`"
    if version < database.SCHEMA_VERSION:
        return (
            f"the database's schema is version {version} and this code needs {database.SCHEMA_VERSION}: "
            "run `flask --app app init-db`"
        )
    return None


async def _serve_until_stopped(flask_app, options: dict, stop: asyncio.Event | None) -> None:
    """Run the worker; when it dies of a lost database (a restart, a failover) start it
    again. Its unfinished jobs come back through ``retry_stalled_jobs``."""
    from . import housekeeping

    engine.perform_import_paths()
    housekeeping.register_schedule(flask_app.config)
    pause = 1.0
    while True:
        try:
            url = database_url(flask_app)
            problem = await asyncio.to_thread(schema_problem, url)
            if problem:
                # init-db may be running right now: look again soon, not after the backoff
                log.warning("job worker waiting: %s; checking again in %.0f s", problem, min(pause, 5.0))
                await asyncio.sleep(min(pause, 5.0))
                pause = min(pause * 2, 30.0)
                if stop is not None and stop.is_set():
                    return
                continue
            await _serve(url, options, stop)
            if stop is None or stop.is_set():
                return  # stopped on purpose: a signal, or ``stop``
            # procrastinate stops by itself, without an error, when a side task (the
            # LISTEN, the heartbeat) lost its connection: a database restart did that
            log.warning(
                "job worker stopped by itself (its database connection was lost?); starting again in %.0f s", pause
            )
        except Exception as exc:  # the worker must outlive any outage
            log.warning("job worker stopped (%s); starting again in %.0f s", db_config.first_line(exc), pause)
        if stop is not None and stop.is_set():
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, 30.0)


def run_worker(flask_app, install_signal_handlers: bool = True, **overrides) -> None:
    """Run a worker in this thread until SIGINT/SIGTERM (``flask --app app worker``).

    With JOBS_PARENT_PID set (gunicorn.conf.py starts one beside the web workers) it also
    stops when that process is gone, so a killed master leaves no worker behind."""
    bind_flask_app(flask_app)
    # our own signal handlers, not procrastinate's: a worker that stops without a signal
    # (its database restarted) is started again, one stopped by a signal is not
    options = worker_options(flask_app.config) | {"install_signal_handlers": False} | overrides
    parent = os.environ.get("JOBS_PARENT_PID", "")

    async def main():
        stop, watchdog = asyncio.Event(), None
        if install_signal_handlers:
            _stop_on_signals(stop)
        if parent.isdigit():
            watchdog = asyncio.ensure_future(_stop_when_orphaned(int(parent), stop))  # referenced: never collected
        await _serve_until_stopped(flask_app, options, stop)
        if watchdog is not None:
            watchdog.cancel()

    asyncio.run(main())


def _stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT/SIGTERM: finish the jobs in hand and stop; a second one acts as it would
    without us (Ctrl-C twice interrupts at once)."""
    loop = asyncio.get_running_loop()

    def first_signal(signum: int) -> None:
        log.warning("%s: the worker finishes its jobs in hand, then stops", signal.Signals(signum).name)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, first_signal, sig)


async def _stop_when_orphaned(parent_pid: int, stop: asyncio.Event) -> None:
    while os.getppid() == parent_pid:
        await asyncio.sleep(1)
    log.warning("the process that started this worker is gone: stopping")
    stop.set()


class WorkerThread:
    """A worker on a daemon thread of this process: ``flask run`` and in-process tests."""

    def __init__(self, flask_app, **overrides):
        self.flask_app = flask_app
        self.overrides = overrides
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._main, name="jobs-worker", daemon=True)

    def start(self) -> WorkerThread:
        bind_flask_app(self.flask_app)
        self.thread.start()
        self._ready.wait(10)
        return self

    def _main(self) -> None:
        options = worker_options(self.flask_app.config) | {"install_signal_handlers": False} | self.overrides
        try:
            database_url(self.flask_app)  # the embedded server, if it is the one, starts (and registers its stop) first
        except Exception:
            log.exception("the in-process job worker found no database")
            self._ready.set()
            return
        atexit.register(self.stop)  # atexit runs last-in first-out: the worker stops before that server does

        async def main():
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await _serve_until_stopped(self.flask_app, options, self._stop)

        try:
            asyncio.run(main())
        except Exception:
            log.exception("the in-process job worker stopped")

    def stop(self, timeout: float = 15) -> None:
        if self._loop is not None and self._stop is not None and self.thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(timeout)


def started_by_flask_run() -> bool:
    """Whether this process is ``flask run``'s server (not its reloader's watcher)."""
    import click
    from werkzeug.serving import is_running_from_reloader

    context = click.get_current_context(silent=True)
    if context is None or context.command.name != "run":
        return False
    reloading = context.params.get("reload")
    if reloading is None:
        from flask.helpers import get_debug_flag

        reloading = get_debug_flag()
    return not reloading or is_running_from_reloader()


def database_description() -> str:
    return database.get_pool().description


def embedded_worker_wanted(environ=None) -> bool:
    """JOBS_EMBEDDED_WORKER=0 keeps web processes from starting a worker of their own."""
    environ = os.environ if environ is None else environ
    return environ.get("JOBS_EMBEDDED_WORKER", "1").strip().lower() not in ("0", "false", "no", "off")
