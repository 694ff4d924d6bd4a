"""gunicorn settings for production (Procfile) and the load benchmarks.

Threads and pool size are chosen together: a request holds at most one connection
(database.get_db), so each worker's pool gets one connection per thread plus two for
work outside requests. workers x DB_POOL_MAX must stay below the server's
max_connections (Railway's default PostgreSQL allows 100); beyond that, put PgBouncer
in front (see README).
"""

import os

# All interfaces: in a container the platform's proxy reaches us from outside; HOST narrows it.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"  # nosec B104
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread, plus the time each request queued for a thread (see gunicorn_worker.py): past
# DB_POOL_TIMEOUT the request gets a 503 + Retry-After at once instead of a late answer.
worker_class = "gunicorn_worker.QueueTimingWorker"
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
os.environ.setdefault("DB_POOL_MAX", str(threads + 2))

# The app (and with it the connection pool) is created in each worker after the fork,
# never in the master: psycopg2 connections must not cross a fork.
preload_app = False

timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))  # a stuck request is killed, not waited on
graceful_timeout = 20
keepalive = 5
accesslog = "-"
errorlog = "-"
# Access lines carry the raw path, escaped (never the decoded one: "%0a" would end the line
# and forge the next), and no query string (the OAuth code and state travel there).
logger_class = "gunicorn_worker.AccessLogger"
access_log_format = '%(h)s "%(m)s %(path)s" %(s)s %(b)s %(M)sms'


def on_starting(server):
    pool_max, thread_count = int(os.environ["DB_POOL_MAX"]), threads
    if pool_max < thread_count:
        server.log.warning(
            "DB_POOL_MAX=%s is below the %s threads per worker: requests will queue "
            "for connections (up to DB_POOL_TIMEOUT) under load",
            pool_max,
            thread_count,
        )


def when_ready(server):
    """Before the web workers fork: in demo mode (no SPOTIPY_CLIENT_ID) one Spotify
    emulator for all of them, in the master; then the job worker.

    Login codes live in the emulator's memory, so the worker that redirects to it and the
    one that handles the callback must talk to the same emulator (and so must the job
    worker); and no worker may wait on an HTTP call to itself. Workers are forked after
    this hook and inherit the URL.
    """
    if not (os.environ.get("SPOTIPY_CLIENT_ID") or os.environ.get("SPOTIFY_EMULATOR_URL")):
        _start_demo_emulator(server)
    _start_job_worker(server)


def _start_demo_emulator(server):
    from emulator import server as spotify_emulator

    emulator = spotify_emulator.serve_in_thread(
        host="127.0.0.1", port=int(os.environ.get("SPOTIFY_EMULATOR_PORT", "0"))
    )
    os.environ["SPOTIFY_EMULATOR_URL"] = emulator.base_url
    server.log.info("demo mode: Spotify emulator at %s", emulator.base_url)


_job_worker = None


def _start_job_worker(server):
    """The Procfile's web process runs the job worker too (one process beside the web
    workers; JOBS_EMBEDDED_WORKER=0 for deployments that run `flask --app app worker`
    apart). Started after the demo emulator, so it inherits SPOTIFY_EMULATOR_URL."""
    global _job_worker
    from jobs.engine import embedded_worker_wanted

    if not embedded_worker_wanted():
        return
    import subprocess  # nosec B404: our own command line, no shell
    import sys

    environ = {**os.environ, "JOBS_PARENT_PID": str(os.getpid())}
    _job_worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "worker"], env=environ)  # nosec B603
    server.log.info("job worker started (pid %s)", _job_worker.pid)


def on_exit(server):
    if _job_worker is not None and _job_worker.poll() is None:
        _job_worker.terminate()  # a graceful stop: running jobs finish or are retried
        try:
            _job_worker.wait(timeout=graceful_timeout)
        except Exception:
            _job_worker.kill()
