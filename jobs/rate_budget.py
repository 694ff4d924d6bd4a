"""One Spotify rate budget for the whole deployment, kept in PostgreSQL.

Spotify limits an app, not a worker: every process's Web API calls go through
``SharedBudget`` (installed into spotify.py by ``jobs.init_app``):

- a ``429`` stores its ``Retry-After`` in ``spotify_rate_budget``; until it has passed,
  every call on every machine waits (or, past spotify.RATE_LIMIT_WAIT_CAP, raises
  ``RateLimited`` at once without asking Spotify: a job then retries once it is over);
- ``SPOTIFY_MAX_RPS`` (optional) spaces every call of the deployment 1/N s apart: each
  call takes the next free slot in one UPDATE and sleeps until it comes;
- a ``429`` whose reason is ``QUOTA_EXCEEDED`` stops the scheduled work (the tick queues
  nothing) until Retry-After, or a day, has passed or the operator runs
  ``flask --app app jobs-resume``; /healthz shows it.

The budget uses a connection of its own, never the caller's transaction: the budget row
must never stay locked while a caller's long transaction runs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import spotify
from database import connection, long_running, transaction
from jobs import jobs_db

log = logging.getLogger(__name__)

QUOTA_PAUSE_DEFAULT = 24 * 3600  # seconds, when a QUOTA_EXCEEDED comes without Retry-After


@contextmanager
def _own_transaction() -> Iterator:
    with connection() as conn, transaction(conn) as cur:
        # Every call of every worker updates the one budget row: under load a call may wait
        # its turn for that row longer than a page's lock bound (0.5 s), which must not fail
        # the job (bench/jobs.py with 4 workers failed syncs that way): the job bounds apply.
        long_running(cur)
        yield cur


class SharedBudget(spotify.CallBudget):
    """spotify.py's call budget, shared through the database."""

    def __init__(self, max_rps: float | None = None):
        self.spacing = 1.0 / max_rps if max_rps else 0.0

    def before_call(self) -> tuple[float, float]:
        """(seconds to wait for this call's slot, seconds every call is blocked)."""
        with _own_transaction() as cur:
            if not self.spacing:  # nothing to reserve: a read, so calls never queue on the budget's row lock
                return 0.0, max(jobs_db.seconds_blocked(cur), 0.0)
            slot = jobs_db.take_call_slot(cur, self.spacing)
        return slot["wait"], slot["blocked"]

    def rate_limited(self, retry_after: float) -> None:
        with _own_transaction() as cur:
            jobs_db.block_calls(cur, retry_after)
        log.warning("Spotify answered 429: every worker waits %s s", retry_after)

    def quota_exceeded(self, retry_after: float) -> None:
        record_quota_exceeded(retry_after, "Spotify says this app's quota is used up.")


def record_quota_exceeded(retry_after: float | None, message: str) -> None:
    with _own_transaction() as cur:
        jobs_db.record_quota_exceeded(cur, retry_after or QUOTA_PAUSE_DEFAULT, message)
    log.warning("scheduled work stops until the Spotify quota refills (%s)", message)


def seconds_blocked() -> float:
    with _own_transaction() as cur:
        return jobs_db.seconds_blocked(cur)


def quota_exceeded() -> bool:
    with _own_transaction() as cur:
        return bool(jobs_db.budget_state(cur).get("quota_exceeded"))
