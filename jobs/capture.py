"""Recently-played capture: every CAPTURE_INTERVAL seconds, per person with a token.

Spotify keeps only a person's last 50 plays, so a sync once a day loses most of a heavy
listener's. Each capture asks with the ``after`` cursor (the newest play it already has,
in ms) for what came since, and stores it in one transaction with the cursor moved on:
a worker killed before the commit leaves both as they were, and the retried job asks
again from the same cursor (plays are keyed by person and second, so nothing doubles).

A full page (50 new plays) means more than 50 may have been played since the last
capture and Spotify no longer has the ones in between: the gap is recorded in
``play_gaps`` (between the newest play known before and the oldest one received) and
shown on /settings, never silently lost. A person's first capture has no cursor of its
own: it asks from the newest play already kept (by the sync at login, or an import), and
only with nothing kept at all does it take the last 50 without looking for a gap.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import current_app

import library_db
import spotify
import sync
import tracks_db
from database import long_running, transaction
from jobs import jobs_db

from . import retries
from .engine import defer, engine, flask_app_context, user_lock

log = logging.getLogger(__name__)

CAPTURE_TASK = "capture.recently_played"
NEVER = datetime.min.replace(tzinfo=UTC)
PAGE = 50  # Spotify's limit for recently played, and all it keeps
BATCH = 1000  # captures queued per tick


def interval() -> float:
    return float(current_app.config.get("CAPTURE_INTERVAL") or 1800)


def queue_due_captures() -> int:
    """Queue the captures that are due (called by the tick)."""
    from . import rate_budget

    if rate_budget.quota_exceeded():
        return 0
    with transaction() as cur:
        jobs_db.add_capture_states(cur, interval())
        due = jobs_db.take_due_captures(cur, interval(), BATCH)
    return sum(1 for user_id in due if queue_capture(user_id) is not None)


def queue_capture(user_id: int) -> int | None:
    """None when this person's capture is already waiting."""
    return defer(CAPTURE_TASK, lock=user_lock(user_id), queueing_lock=f"capture:{user_id}", user_id=user_id)


def played_at(item: dict) -> datetime:
    return datetime.fromisoformat(item["played_at"].replace("Z", "+00:00")).astimezone(UTC)


def millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def capture(settings: spotify.SpotifySettings, user_id: int) -> dict:
    """One capture for one person; returns what it stored."""
    with transaction() as cur:
        state = jobs_db.lock_capture_state(cur, user_id)
        after_ms = state["after_ms"] if state else None
        if after_ms is None:
            # the first capture goes on from the newest play a sync (or an import) kept, so
            # more than 50 plays since then is a gap shown, not plays silently skipped
            kept = jobs_db.newest_play_until(cur, user_id, datetime.now(UTC))
            after_ms = millis(kept) if kept > NEVER else None
    client = spotify.SpotifyClient.for_user(settings, user_id)
    items = [i for i in client.recently_played(after_ms) if isinstance(i, dict) and i.get("played_at")]
    # episodes and local files move the cursor but are not catalogue tracks (as in a sync)
    tracks = [spotify.carried(i) for i in items if sync.track_id(spotify.carried(i))]
    plays = [(sync.track_id(spotify.carried(i)), played_at(i)) for i in items if sync.track_id(spotify.carried(i))]
    newest = max((millis(played_at(i)) for i in items), default=after_ms)
    with transaction() as cur:
        long_running(cur)  # the catalogue's row locks may be another sync's for a while
        state = jobs_db.lock_capture_state(cur, user_id)  # one capture of a person at a time
        if state and state["after_ms"] is not None and newest is not None and newest <= state["after_ms"]:
            plays = [p for p in plays if millis(p[1]) > state["after_ms"]]
        gap = False
        if after_ms is not None and len(items) >= PAGE:
            before = min(played_at(i) for i in items).replace(microsecond=0)  # plays are kept to the second
            # From the cursor, not from the newest play kept below the page: a sync in
            # between keeps the same last 50 that Spotify still has, so a play it kept at or
            # under the page's oldest says nothing about the plays before its own page
            # (counting from it hid the 429 drill's lost plays). The gap may hold plays a
            # sync kept; /settings says plays *may* be missing there.
            known = datetime.fromtimestamp(after_ms / 1000, UTC).replace(microsecond=0)
            gap = known < before and jobs_db.record_gap(cur, user_id, known, before)
        tracks_db.upsert_catalogue(cur, tracks)
        new = library_db.store_plays(cur, user_id, [p[0] for p in plays], [p[1] for p in plays])
        jobs_db.record_capture(cur, user_id, newest, new, interval())
    if gap:
        log.warning("capture for user %s: more than %s plays since the last one; a gap is recorded", user_id, PAGE)
    return {"new_plays": new, "gap": gap}


@engine.task(name=CAPTURE_TASK, queue="capture", retry=retries.RETRY, pass_context=True)
def capture_job(context, user_id: int) -> None:
    with flask_app_context():
        settings = spotify.settings_for(current_app)
        try:
            capture(settings, user_id)
        except spotify.RateLimited:
            # Spotify limits the app, not this person: the job waits out Retry-After with
            # everyone else's, and their captures keep their pace (no failure counted)
            raise
        except Exception as exc:
            message = (
                exc.message if isinstance(exc, spotify.SpotifyError) else "The capture failed; it has been logged."
            )
            if not isinstance(exc, spotify.SpotifyError):
                log.error("capture for user %s failed", user_id, exc_info=exc)
            with transaction() as cur:
                jobs_db.record_capture_failure(cur, user_id, message)
            raise
