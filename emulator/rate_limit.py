"""Spotify's rate limit, as the emulator enforces it, and the latency of a network call.

Spotify limits an *app* (its client id), not a machine or a worker: every Web API call
any process makes with that app's tokens counts against one rolling window (Spotify's
is 30 s). ``AppRateLimit`` admits at most ``requests`` calls per client id in any
``window`` seconds; the next one gets ``429`` with ``Retry-After`` (the whole seconds
until the oldest call in the window leaves it) and is counted in ``exceeded``, which a
benchmark or a test reads back (``GET /_emulator/rate-limit``). A refused call does not
count against the window, like a call that never reached Spotify's backend.

This is a limit, not a fault: the ``rate_limit`` fault switch (state.Faults) answers 429
whatever the traffic, the limit only when the app really asks too much.

Configured by ``python -m emulator --rate-limit N [--rate-window S] [--latency-ms L]``,
``EMULATOR_RATE_LIMIT=N`` or ``N/S`` and ``EMULATOR_LATENCY_MS=L`` in the environment,
``POST /_emulator/rate-limit {"requests": N, "window": S, "latency_ms": L}`` or
``state.rate_limit.configure(...)`` in-process.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque

DEFAULT_WINDOW = 30.0  # seconds: Spotify's rolling window


class AppRateLimit:
    """At most ``requests`` Web API calls per client id in any ``window`` seconds
    (``requests=None``: no limit, calls are only counted), plus the latency every call
    to the emulator waits (``latency`` seconds)."""

    def __init__(self, requests: int | None = None, window: float = DEFAULT_WINDOW, latency: float = 0.0):
        self._lock = threading.Lock()
        self.configure(requests, window, latency)

    def configure(self, requests: int | None = None, window: float = DEFAULT_WINDOW, latency: float = 0.0) -> None:
        """A new limit (and latency); the counts start again."""
        if requests is not None and (isinstance(requests, bool) or not isinstance(requests, int) or requests < 1):
            raise ValueError("rate limit: requests must be a whole number of at least 1, or null for no limit")
        if not isinstance(window, (int, float)) or isinstance(window, bool) or not 0 < window <= 3600:
            raise ValueError("rate limit: window must be a number of seconds above 0 and at most 3600")
        if not isinstance(latency, (int, float)) or isinstance(latency, bool) or not 0 <= latency <= 60:
            raise ValueError("rate limit: latency must be between 0 and 60 seconds")
        with self._lock:
            self.requests, self.window, self.latency = requests, float(window), float(latency)
            self._calls: dict[str, deque] = {}
            self.admitted = self.exceeded = self.peak = 0

    def reset_counts(self) -> None:
        """Zero the counters (the limit and the calls in the window stay)."""
        with self._lock:
            self.admitted = self.exceeded = 0
            self.peak = max((len(calls) for calls in self._calls.values()), default=0)

    def admit(self, client_id: str) -> int:
        """0 when the call may go ahead (it is counted); otherwise the Retry-After to
        answer with, in whole seconds (at least 1)."""
        now = time.monotonic()
        with self._lock:
            calls = self._calls.setdefault(client_id, deque())
            while calls and calls[0] <= now - self.window:
                calls.popleft()
            if self.requests is not None and len(calls) >= self.requests:
                self.exceeded += 1
                return max(1, math.ceil(calls[0] + self.window - now))
            calls.append(now)
            self.admitted += 1
            self.peak = max(self.peak, len(calls))
            return 0

    def describe(self) -> dict:
        with self._lock:
            return {
                "requests": self.requests,
                "window": self.window,
                "latency_ms": round(self.latency * 1000, 3),
                "admitted": self.admitted,
                "exceeded": self.exceeded,
                "peak_in_window": self.peak,
            }


def parse_rate_limit(text: str) -> tuple[int, float]:
    """``"N"`` or ``"N/S"`` (N calls per S seconds, default 30) -> (N, S)."""
    requests, _, window = text.strip().partition("/")
    try:
        parsed = int(requests), float(window) if window else DEFAULT_WINDOW
    except ValueError:
        raise ValueError(f"rate limit {text!r}: expected N or N/SECONDS, e.g. 100/30") from None
    if parsed[0] < 1 or not 0 < parsed[1] <= 3600:
        raise ValueError(f"rate limit {text!r}: N must be at least 1, SECONDS above 0 and at most 3600")
    return parsed


def from_env(environ=None) -> AppRateLimit:
    """The limit EMULATOR_RATE_LIMIT and EMULATOR_LATENCY_MS ask for (none, 0 ms unset)."""
    environ = os.environ if environ is None else environ
    limit = environ.get("EMULATOR_RATE_LIMIT", "").strip()
    requests, window = parse_rate_limit(limit) if limit else (None, DEFAULT_WINDOW)
    latency = environ.get("EMULATOR_LATENCY_MS", "").strip()
    try:
        latency_ms = float(latency) if latency else 0.0
    except ValueError:
        raise ValueError(f"EMULATOR_LATENCY_MS={latency!r}: expected milliseconds, e.g. 100") from None
    return AppRateLimit(requests, window, latency_ms / 1000)
