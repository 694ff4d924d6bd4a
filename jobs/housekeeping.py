"""The schedule: what every worker defers periodically, and the housekeeping itself.

procrastinate's periodic deferrer runs in every worker; a periodic job is deferred once
per tick whatever the number of workers (the engine records each defer). Ticks:

- ``jobs.tick`` every ``tick_seconds()`` (CAPTURE_INTERVAL / 10, 1-60 s): queues the
  captures and daily snapshots that are due, so the work spreads over workers and the day;
- ``jobs.retry_stalled`` as often: jobs of a worker that died (SIGKILL, lost machine) go
  back to the queue once its heartbeat is older than JOBS_STALLED_AFTER, at most
  JOBS_MAX_ATTEMPTS times in all;
- ``jobs.refresh_tokens`` every 5 minutes: access tokens about to expire are renewed
  before a capture needs them; a refresh token Spotify no longer accepts ends capture
  for that person (they log in again);
- ``jobs.remove_old_jobs`` hourly: finished jobs after JOBS_KEEP_HOURS
  (default 72), failed and cancelled ones too after a week;
- whatever a task module adds to ``SCHEDULE`` (history/tasks.py: enrichment of tracks
  still flagged, abandoned uploads).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status
from procrastinate.tasks import ConfigureTaskOptions, Task

import spotify
import users_db
from database import transaction

from . import retries
from .engine import bound_config, engine, flask_app_context

log = logging.getLogger(__name__)

KEEP_FAILED_HOURS = 24 * 7
REFRESH_AHEAD_SECONDS = 600

# Called with (job kwargs, message) when a task's job is given up after its worker kept
# dying; a task module registers one to tell the person (sync runs do).
GIVE_UP_HOOKS: dict = {}
# (task, cron line) pairs a task module adds to the schedule (history/tasks.py does).
SCHEDULE: list[tuple[Task, str]] = []


def tick_seconds(config) -> int:
    capture_interval = float(config.get("CAPTURE_INTERVAL") or 1800)
    return int(min(max(capture_interval / 10, 1), 60))


def every(seconds: int) -> str:
    """A cron line for "every N seconds" (N divides 60 or is 60)."""
    if seconds >= 60:
        return "* * * * *"
    return f"* * * * * */{seconds}"


def register_schedule(config) -> None:
    """Put the periodic tasks in the engine's registry (once per process, before a worker
    starts: every worker must agree on the cron lines, so they come from the config)."""
    tick = every(tick_seconds(config))
    schedule: list[tuple[Task, str]] = [
        (tick_task, tick),
        (retry_stalled_task, tick),
        (refresh_tokens_task, "*/5 * * * *"),
        (remove_old_jobs_task, "17 * * * *"),
        *SCHEDULE,
    ]
    registry = engine.periodic_registry
    for task, cron in schedule:
        registry.periodic_tasks.pop((task.name, ""), None)  # a new config replaces the old line
        registry.register_task(task=task, cron=cron, periodic_id="", configure_kwargs=_periodic_options(task, config))


def _periodic_options(task: Task, config) -> ConfigureTaskOptions:
    return {"queueing_lock": f"periodic:{task.name}"}


@engine.task(name="jobs.tick", queue="schedule", pass_context=True)
def tick_task(context, timestamp: int) -> None:
    """Queue what is due: captures, then daily snapshots."""
    from . import capture, snapshot_schedule

    with flask_app_context():
        capture.queue_due_captures()
        snapshot_schedule.queue_due_snapshots()


@engine.task(name="jobs.retry_stalled", queue="schedule", pass_context=True)
async def retry_stalled_task(context, timestamp: int) -> None:
    """Jobs left 'doing' by a worker that stopped beating: back to the queue, or given up
    when they already had their attempts (a job that kills its worker every time)."""
    config = bound_config()
    stalled_after = float(config.get("JOBS_STALLED_AFTER") or 30)
    manager = context.app.job_manager
    for job in await manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after):
        try:
            await _recover(manager, job)
        except Exception:  # one job's trouble must not leave the others stalled
            log.exception(
                "job %s (%s) left by a dead worker: not recovered; tried again next tick", job.id, job.task_name
            )


async def _recover(manager, job) -> None:
    if job.attempts + 1 >= retries.max_attempts():
        log.warning("job %s (%s) given up: its worker died on every attempt", job.id, job.task_name)
        await manager.finish_job(job=job, status=Status.FAILED, delete_job=False)
        hook = GIVE_UP_HOOKS.get(job.task_name)
        if hook is not None:
            await _in_thread(hook, job.task_kwargs, "The sync was interrupted too many times; please run it again.")
        return
    try:
        await manager.retry_job(job)
    except UniqueViolation:
        # A newer job with its queueing lock is already waiting (the person's next capture,
        # the next tick): that one does the same work. Put back, this one would break the
        # queueing lock; left 'doing', it would hold the person's lock for ever.
        log.info("job %s (%s): its worker died; the same work is already queued", job.id, job.task_name)
        await manager.finish_job(job=job, status=Status.FAILED, delete_job=True)
        return
    log.info("job %s (%s): its worker died; queued again", job.id, job.task_name)


async def _in_thread(function, *args) -> None:
    from procrastinate import utils

    def call():
        with flask_app_context():
            function(*args)

    await utils.sync_to_async(call)


@engine.task(name="jobs.remove_old_jobs", queue="schedule", pass_context=True)
async def remove_old_jobs_task(context, timestamp: int) -> None:
    """Finished jobs after JOBS_KEEP_HOURS; failed, cancelled and aborted ones after a week
    (they are what /healthz and the operator look at)."""
    manager = context.app.job_manager
    await manager.delete_old_jobs(nb_hours=int(bound_config().get("JOBS_KEEP_HOURS") or 72))
    await manager.delete_old_jobs(
        nb_hours=KEEP_FAILED_HOURS, include_failed=True, include_cancelled=True, include_aborted=True
    )


@engine.task(name="jobs.refresh_tokens", queue="schedule", pass_context=True)
def refresh_tokens_task(context, timestamp: int) -> None:
    with flask_app_context():
        settings = spotify.settings_for(current_app)
        with transaction() as cur:
            user_ids = users_db.users_with_tokens_expiring(cur, REFRESH_AHEAD_SECONDS)
        for user_id in user_ids:
            try:
                spotify.access_token_for(settings, user_id, ahead=timedelta(seconds=REFRESH_AHEAD_SECONDS))
            except spotify.SpotifyError as exc:
                log.info("token refresh for user %s: %s", user_id, exc.message)
