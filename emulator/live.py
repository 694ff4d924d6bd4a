"""Listeners who keep listening in real time, so capture can be seen working.

Besides the sessions laid out per calendar day (listeners.day_plays), each listener plays
one more track every ``EMULATOR_PLAY_INTERVAL`` seconds (default 180) from the moment the
emulator started, at a fixed offset of their own within the interval. Deterministic: the
k-th live play of a listener is the same track at the same time whoever asks, so asking
again later gives the same history plus anything new.

A frozen clock (the tests' fixed "now", set before the emulator started) sees no live
plays: frozen runs stay reproducible. Tests of capture run an emulator on the real clock
with an interval of a second or two.
"""

from __future__ import annotations

import hashlib
import os
import random
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from .crowd import taste_of
from .listeners import RECENTLY_PLAYED_MAX, as_recently_played, day_plays, recently_played, top_track_ids

DEFAULT_PLAY_INTERVAL = 180.0


def play_interval_from_env(environ=None) -> float:
    environ = os.environ if environ is None else environ
    try:
        return max(float(environ.get("EMULATOR_PLAY_INTERVAL") or DEFAULT_PLAY_INTERVAL), 0.5)
    except ValueError:
        return DEFAULT_PLAY_INTERVAL


def _offset(user_id: str, interval: float) -> float:
    digest = hashlib.blake2b(user_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32 * interval


def _whole_milliseconds(at: datetime) -> datetime:
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


@lru_cache(maxsize=4096)
def _session_seconds(user_id: str, day: date) -> frozenset:
    """The seconds in which one of the day's session plays ends: a live play there would
    share its (listener, second) identity with it, and one of the two would be lost."""
    return frozenset(at.replace(microsecond=0) for _, at in day_plays(user_id, day))


def live_plays(
    user_id: str, started_at: datetime, now: datetime, interval: float, limit: int = RECENTLY_PLAYED_MAX
) -> list[tuple[str, datetime]]:
    """(track_id, played_at) of the listener's live plays up to ``now``, newest first (at
    most ``limit``: Spotify keeps 50).

    A play is reported at the very millisecond it becomes visible, as Spotify reports
    ``played_at``: a play reported at its whole second but visible only later in that
    second would be passed over by a poller whose ``after`` cursor already stood later in
    that second. A live play that would end in the same second as a session play is left
    out, as one listener cannot finish two tracks in one second."""
    step = timedelta(milliseconds=max(round(interval * 1000), 1))
    first = _whole_milliseconds(started_at + timedelta(seconds=_offset(user_id, interval)))
    if now < first:
        return []
    plays: list[tuple[str, datetime]] = []
    taste = taste_of(user_id)  # a crowd listener plays from its demo listener's chart
    for k in range((now - first) // step, -1, -1):
        if len(plays) >= limit:
            break
        at = first + k * step
        if at.replace(microsecond=0) in _session_seconds(taste, at.date()):
            continue
        chart = top_track_ids(taste, "short_term", at.date())[:40]
        rng = random.Random(f"{user_id}:live:{k}")
        plays.append((chart[min(int(rng.expovariate(1 / 8)), len(chart) - 1)], at))
    return plays


def recently_played_now(user_id: str, now: datetime, started_at: datetime | None, interval: float | None) -> list:
    """The last 50 plays before ``now``: the day's sessions (a crowd listener's are its demo
    listener's) and the live plays together."""
    plays = recently_played(taste_of(user_id), now)
    if started_at is not None and interval:
        plays = plays + live_plays(user_id, started_at, now, interval)
    return sorted(plays, key=lambda p: p[1], reverse=True)[:RECENTLY_PLAYED_MAX]


def plays_between(user_id: str, start: datetime, end: datetime, started_at: datetime | None, interval: float | None):
    """Every play of the listener in [start, end] as recently played shows it, oldest first,
    however many (the truth a capture is checked against: fault drills count plays)."""
    days, taste = (end.date() - start.date()).days, taste_of(user_id)
    plays = [
        (as_recently_played(taste, track_id, at), at)
        for back in range(days, -1, -1)
        for track_id, at in day_plays(taste, end.date() - timedelta(days=back))
    ]
    if started_at is not None and interval:
        count = int((end - started_at).total_seconds() // interval) + 2
        plays += live_plays(user_id, started_at, end, interval, limit=count)
    return sorted((p for p in plays if start <= p[1] <= end), key=lambda p: p[1])


def started_now() -> datetime:
    return datetime.now(UTC)
