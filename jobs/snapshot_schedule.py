"""The daily snapshot of every person with a token, spread over the day.

Each person has a fixed second of the day (from their Spotify id); the tick queues the
sync of everyone whose second has passed since their last sync. A person who logs in
once and walks away gets a new snapshot every day; a deployment that was down catches
up at its next tick, a batch at a time.
"""

from __future__ import annotations

import logging

from database import transaction
from jobs import jobs_db

from .sync_tasks import request_sync

log = logging.getLogger(__name__)

BATCH = 500  # per tick: a tick job stays short, the rest waits for the next tick


def queue_due_snapshots() -> int:
    from . import rate_budget

    if rate_budget.quota_exceeded():
        return 0  # the operator has been told; scheduled work waits for the quota
    with transaction() as cur:
        due = jobs_db.users_due_for_snapshot(cur, BATCH)
    queued = sum(1 for user_id in due if request_sync(user_id)[1])
    if queued:
        log.info("queued %s daily snapshots", queued)
    return queued
