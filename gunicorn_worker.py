"""gunicorn's gthread worker, plus how long each request waited for a thread.

Under overload the wait that hurts is not the connection pool's (bounded by
DB_POOL_TIMEOUT) but the queue *in front of* the app: gthread hands every readable
connection to an unbounded thread-pool queue, so at 256 connections on two cores a
request can sit there past any client's patience while the app never hears of it. This
worker stamps each connection when it is queued and puts the seconds it waited into the
WSGI environ under QUEUE_SECONDS; ``database.get_db`` counts them against the same
DB_POOL_TIMEOUT budget, so a request that already queued too long is answered with a
cheap 503 + Retry-After at once instead of being served after the client gave up.
That keeps the queue short, and every request answered within the budget.

Used by gunicorn.conf.py (``worker_class``); without gunicorn (flask run, tests) the key is
simply absent and nothing changes.
"""
from __future__ import annotations

import threading
import time

from gunicorn.workers.gthread import ThreadWorker

from database import QUEUE_SECONDS


class QueueTimingWorker(ThreadWorker):
    def init_process(self):
        self._current = threading.local()  # the connection each handler thread is serving
        super().init_process()

    def enqueue_req(self, conn):
        # Called on accept and whenever a kept-alive connection has a new request ready.
        conn.queued_at = time.monotonic()
        super().enqueue_req(conn)

    def handle_request(self, req, conn):
        self._current.queued_at = getattr(conn, "queued_at", None)
        try:
            return super().handle_request(req, conn)
        finally:
            self._current.queued_at = None

    def load_wsgi(self):
        super().load_wsgi()
        app, current = self.wsgi, self._current

        def with_queue_time(environ, start_response):
            queued_at = getattr(current, "queued_at", None)
            if queued_at is not None:
                environ[QUEUE_SECONDS] = time.monotonic() - queued_at
            return app(environ, start_response)

        self.wsgi = with_queue_time
