"""gunicorn's gthread worker, plus how long each request waited for a thread; and the
access log's safe request path (``AccessLogger``, at the end).

Under overload the wait that hurts is not the connection pool's (bounded by
DB_POOL_TIMEOUT) but the queue *in front of* the app: gthread hands every readable
connection to an unbounded thread-pool queue, so at 256 connections on two cores a
request can sit there past any client's patience while the app never hears of it. This
worker stamps each connection when it is queued, notes how long it waited when a thread
picks it up (only the queue: not a slow client's headers), and puts those seconds into the
WSGI environ under QUEUE_SECONDS; ``database.get_db`` counts them against the same
DB_POOL_TIMEOUT budget, so a request that already queued too long is answered with a
cheap 503 + Retry-After at once instead of being served after the client gave up.
That keeps the queue short, and every request answered within the budget.

Used by gunicorn.conf.py (``worker_class``); without gunicorn (flask run, tests) the key is
simply absent and nothing changes. An HTTP/2 connection (off unless gunicorn's ``http_protocols``
enables it) is timed once, when a thread picks it up; its later streams carry that wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from gunicorn.glogging import Logger
from gunicorn.workers.gthread import ThreadWorker

from database import QUEUE_SECONDS


class QueueTimingWorker(ThreadWorker):
    wsgi: Callable  # the WSGI app; gunicorn's load_wsgi sets it, ours wraps it

    def init_process(self):
        self._current = threading.local()  # per handler thread: how long its request queued
        super().init_process()

    def enqueue_req(self, conn):
        # Called on accept and whenever a kept-alive or deferred connection has data ready.
        conn.queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        # A thread has picked the connection up: the queue wait ends here.
        queued_at = getattr(conn, "queued_at", None)
        self._current.queued_for = None if queued_at is None else time.monotonic() - queued_at
        try:
            return super().handle(conn)
        finally:
            self._current.queued_for = None

    def load_wsgi(self):
        super().load_wsgi()
        app, current = self.wsgi, self._current

        def with_queue_time(environ, start_response):
            queued_for = getattr(current, "queued_for", None)
            if queued_for is not None:
                environ[QUEUE_SECONDS] = queued_for
            return app(environ, start_response)

        self.wsgi = with_queue_time


# -- the access log ------------------------------------------------------------------------
class AccessLogger(Logger):
    """gunicorn's logger with one more atom for ``access_log_format``: ``%(path)s``, the
    request's path as it came on the wire (percent-escapes kept, so ``%0a`` stays those
    three characters and cannot start a forged line), anything unprintable escaped, and
    no query string: that is where the OAuth ``code`` and ``state`` travel."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        atoms["path"] = log_safe_path(environ.get("RAW_URI") or environ.get("PATH_INFO") or "")
        return atoms


def log_safe_path(raw_uri: str) -> str:
    path = raw_uri.split("?", 1)[0].split("#", 1)[0]
    return "".join(c if "!" <= c <= "~" and c not in '"\\' else f"\\x{ord(c):02x}" for c in path)[:2000]
