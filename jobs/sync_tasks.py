"""A person's sync as a job: the "Sync now" button, the first login, the daily snapshot.

Every sync has its ``sync_runs`` row from the moment it is queued, so the page that
polls it shows "Waiting for a worker", then each stage. A click while a sync of that
person is queued or running (scheduled or not) gets that run to watch, not a second
one. The job shares ``user_lock`` with the person's captures: one at a time.

A failed attempt is retried (``jobs.retries``) and the run says so ("trying again in
N s"); the last failure is the run's error, which the dashboard and /settings show.
"""

from __future__ import annotations

import logging
from datetime import date

from flask import current_app

import spotify
import sync
import sync_runs_db
from database import transaction

from . import housekeeping, retries
from .engine import defer, engine, flask_app_context, user_lock

log = logging.getLogger(__name__)

SYNC_TASK = "sync.user"
QUEUED = "Waiting for a worker"


def request_sync(user_id: int, day: date | None = None) -> tuple[int | None, bool]:
    """(the run to show, whether it is new): the person's queued or running sync, or a
    new one queued now."""
    with transaction() as cur:
        run_id = sync_runs_db.start_run(cur, user_id, None, sync.worker_alive, stage=QUEUED)
        if run_id is None:
            running = sync_runs_db.running_run(cur, user_id)
            return (running["id"] if running else None), False
    try:
        job_id = defer(
            SYNC_TASK, lock=user_lock(user_id), user_id=user_id, run_id=run_id, day=day.isoformat() if day else None
        )
    except Exception as exc:
        sync.record_outcome(run_id, {"error": "The sync could not be queued. Please try again."})
        raise exc
    if job_id is not None:  # None only with a queueing lock, which syncs do not use
        with transaction() as cur:
            sync_runs_db.attach_job(cur, run_id, job_id)
    return run_id, True


@engine.task(name=SYNC_TASK, queue="sync", retry=retries.RETRY, pass_context=True)
def sync_job(context, user_id: int, run_id: int, day: str | None = None) -> None:
    with flask_app_context():
        with transaction() as cur:
            status = sync_runs_db.run_status(cur, run_id)
        if status != "running":
            log.info("sync run %s is %s already; nothing to do", run_id, status)
            return
        settings = spotify.settings_for(current_app)

        def report(stage: str) -> None:
            with transaction() as cur:
                sync_runs_db.set_stage(cur, run_id, stage)

        try:
            summary = sync.sync_user(settings, user_id, date.fromisoformat(day) if day else None, report)
        except Exception as exc:
            message = sync.failure_message(exc, f"sync {run_id}")
            decided = retries.plan(exc, context.job.attempts)
            if decided.final:
                sync.record_outcome(run_id, {"error": message})
            else:
                retry = f"Trying again in {decided.retry_in:.0f} s (attempt {decided.attempt} of {decided.of})."
                report(f"{message} {retry}")
            raise
        sync.record_outcome(run_id, {"summary": summary})


def give_up(task_kwargs: dict, message: str) -> None:
    """A sync job the engine stopped retrying (its worker kept dying): the run says why."""
    sync.record_outcome(task_kwargs["run_id"], {"error": message})


housekeeping.GIVE_UP_HOOKS[SYNC_TASK] = give_up
