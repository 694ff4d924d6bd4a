"""When a failed job runs again, and when it stops trying.

- Spotify's ``429``: again once ``Retry-After`` (kept in the shared rate budget) has
  passed, up to ``RATE_LIMITED_ATTEMPTS`` times: waiting out a limit is not a failure;
- a login that Spotify no longer accepts, or the app's quota spent: never (retrying
  cannot help; the person or the operator is told);
- anything else (Spotify down, the database restarting, a bug): exponential backoff,
  ``JOBS_RETRY_BASE`` × 2^attempt seconds, at most ``JOBS_MAX_ATTEMPTS`` attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from procrastinate import RetryDecision
from procrastinate.retry import BaseRetryStrategy

import spotify

RATE_LIMITED_ATTEMPTS = 30
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_RETRY_BASE = 10.0  # seconds: 10, 20, 40, 80 before the fifth and last attempt


@dataclass(frozen=True)
class Plan:
    """What happens after a failed attempt: ``retry_in`` seconds, or None for never."""

    retry_in: float | None
    attempt: int  # the attempt that failed, from 1
    of: int  # the most attempts this kind of failure gets

    @property
    def final(self) -> bool:
        return self.retry_in is None


def _config():
    from . import engine

    return engine.bound_config()


def max_attempts() -> int:
    return int(_config().get("JOBS_MAX_ATTEMPTS") or DEFAULT_MAX_ATTEMPTS)


def plan(exc: BaseException, attempts_before: int) -> Plan:
    """The plan after attempt ``attempts_before + 1`` failed with ``exc``."""
    attempt = attempts_before + 1
    if isinstance(exc, (spotify.LoginRequired, spotify.QuotaExceeded)):
        return Plan(None, attempt, attempt)
    if isinstance(exc, spotify.RateLimited):
        from . import rate_budget

        wait = max(float(exc.retry_after), rate_budget.seconds_blocked())
        return Plan(wait if attempt < RATE_LIMITED_ATTEMPTS else None, attempt, RATE_LIMITED_ATTEMPTS)
    bound = max_attempts()
    if attempt >= bound:
        return Plan(None, attempt, bound)
    base = float(_config().get("JOBS_RETRY_BASE") or DEFAULT_RETRY_BASE)
    return Plan(base * 2**attempts_before, attempt, bound)


class Backoff(BaseRetryStrategy):
    """``plan()`` as procrastinate's retry strategy."""

    def get_retry_decision(self, *, exception: BaseException, job) -> RetryDecision | None:
        decided = plan(exception, job.attempts)
        if decided.retry_in is None:
            return None
        return RetryDecision(retry_at=datetime.now(UTC) + timedelta(seconds=decided.retry_in))


RETRY = Backoff()
