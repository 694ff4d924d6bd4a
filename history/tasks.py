"""The history import's jobs (a module of jobs.engine.TASK_MODULES: every worker knows them).

- ``history.import``: one uploaded import (history/runs.py), under the person's lock;
- ``history.enrich``: full track objects for the tracks exports only named
  (history/enrichment.py), ``ENRICH_BATCH`` tracks a job, one GET /tracks/{id} at a time
  within the deployment's shared rate budget; one such job runs at a time in the whole
  deployment and at most one waits. Queued after every import (the page's and the CLI's)
  and by housekeeping every ten minutes while any track is still flagged; a job that
  leaves tracks to do queues the next, so a restart loses one track at most;
- ``history.clean_uploads``: hourly, uploads abandoned a day ago and the files of ended
  imports go.
"""

from __future__ import annotations

import logging

from flask import current_app

import spotify
import tracks_db
from database import transaction
from jobs import housekeeping, rate_budget, retries
from jobs.engine import defer, engine, flask_app_context

from . import archive, enrichment, imports_db, runs

log = logging.getLogger(__name__)

ENRICH_TASK = "history.enrich"
ENRICH_LOCK = "history:enrichment"
ENRICH_BATCH = 200  # tracks per job (HISTORY_ENRICH_BATCH): at SPOTIFY_MAX_RPS-paced calls, minutes at most


def max_unpacked() -> int:
    """The history JSON of one import, unpacked (archive.py's zip-bomb bound)."""
    return int(current_app.config.get("HISTORY_UNPACKED_MAX_BYTES") or archive.MAX_UNPACKED)


@engine.task(name=runs.IMPORT_TASK, queue="imports", retry=retries.RETRY, pass_context=True)
def import_job(context, import_id: int, user_id: int) -> None:
    with flask_app_context():
        outcome = runs.run(import_id, user_id, max_unpacked(), context.job.attempts)
    if "summary" in outcome:
        queue_enrichment(user_id)


def give_up_import(task_kwargs: dict, message: str) -> None:
    """An import whose worker died on every attempt: the page says so, its uploads go."""
    runs.record_failure(task_kwargs["import_id"], imports_db.INTERRUPTED)


housekeeping.GIVE_UP_HOOKS[runs.IMPORT_TASK] = give_up_import


def queue_enrichment(user_id: int | None = None) -> int | None:
    """Queue the enrichment (None when one is already waiting: it will do these too)."""
    return defer(ENRICH_TASK, lock=ENRICH_LOCK, queueing_lock=ENRICH_LOCK, user_id=user_id)


class EnrichmentStopped(spotify.SpotifyUnavailable):
    """Spotify failed mid-run: the job is retried with backoff (the tracks done stay done)."""


@engine.task(name=ENRICH_TASK, queue="enrichment", retry=retries.RETRY, pass_context=True)
def enrich_job(context, user_id: int | None = None) -> None:
    with flask_app_context():
        with transaction() as cur:
            holder = imports_db.enrichment_token_holder(cur, user_id)
            flagged = tracks_db.count_needing_enrichment(cur)
        if not flagged:
            return
        if holder is None:
            log.info("%s tracks wait for enrichment: nobody with a Spotify login to fetch them with", flagged)
            return
        batch = int(current_app.config.get("HISTORY_ENRICH_BATCH") or ENRICH_BATCH)
        done = enrichment.enrich(spotify.settings_for(current_app), holder, limit=batch)
    if done["retry_after"] is not None:
        raise spotify.RateLimited(int(done["retry_after"]))  # retried once Spotify's wait is over
    if done["stopped"]:
        raise EnrichmentStopped(done["stopped"])
    if done["left"]:
        queue_enrichment(holder)  # runs after this one (same lock): the next batch


@engine.task(name="history.enrich_flagged", queue="schedule", pass_context=True)
def enrich_flagged_task(context, timestamp: int) -> None:
    """Housekeeping: anything still flagged (an enrichment that gave up, a restart) is
    picked up again, unless Spotify says the app's quota is spent."""
    with flask_app_context():
        if rate_budget.quota_exceeded():
            return
        with transaction() as cur:
            flagged = tracks_db.count_needing_enrichment(cur)
        if flagged:
            queue_enrichment()


@engine.task(name="history.clean_uploads", queue="schedule", pass_context=True)
def clean_uploads_task(context, timestamp: int) -> None:
    with flask_app_context():
        runs.forget_abandoned_uploads()


housekeeping.SCHEDULE += [(enrich_flagged_task, "*/10 * * * *"), (clean_uploads_task, "41 * * * *")]
