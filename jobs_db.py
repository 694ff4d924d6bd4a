"""SQL for background work: queue health, the schedule's due lists, capture state, gaps,
the shared Spotify rate budget. Cursor first, dicts out, never commits.

The engine's own tables (procrastinate_jobs, procrastinate_workers) are read here for
health only; jobs are written through the engine, never by SQL of ours.
"""

from __future__ import annotations

from database import fetch_all, fetch_one


# -- queue health (/healthz) -----------------------------------------------------------
def queue_health(cur, live_within_seconds: float) -> dict:
    """Waiting jobs, the oldest one's wait, running and failing jobs, live workers."""
    cur.execute(
        """
        SELECT
          (SELECT count(*) FROM procrastinate_jobs
            WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())) AS waiting,
          (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND scheduled_at > now()) AS scheduled,
          (SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing') AS running,
          (SELECT extract(epoch FROM now() - min(coalesce(j.scheduled_at, e.at)))
             FROM procrastinate_jobs j
             JOIN LATERAL (SELECT max(at) AS at FROM procrastinate_events
                           WHERE job_id = j.id AND type IN ('deferred', 'deferred_for_retry', 'retried')) e ON true
            WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())) AS oldest_waiting_seconds,
          (SELECT count(*) FROM procrastinate_workers
            WHERE last_heartbeat > now() - make_interval(secs => %s)) AS live_workers,
          (SELECT count(*) FROM procrastinate_events
            WHERE type = 'succeeded' AND at > now() - interval '1 hour') AS succeeded_last_hour
    """,
        (live_within_seconds,),
    )
    health = fetch_one(cur) or {}
    if health.get("oldest_waiting_seconds") is not None:
        health["oldest_waiting_seconds"] = round(float(health["oldest_waiting_seconds"]), 1)
    return health


def failing_jobs(cur, within_hours: int = 24, limit: int = 10) -> dict:
    """Jobs that failed for good lately (count, by task), and those now being retried."""
    cur.execute(
        """
        SELECT j.task_name, count(*) AS failed
        FROM procrastinate_jobs j
        WHERE j.status = 'failed'
          AND EXISTS (SELECT 1 FROM procrastinate_events e
                      WHERE e.job_id = j.id AND e.type = 'failed' AND e.at > now() - make_interval(hours => %s))
        GROUP BY j.task_name ORDER BY failed DESC, j.task_name LIMIT %s
    """,
        (within_hours, limit),
    )
    failed = {row["task_name"]: row["failed"] for row in fetch_all(cur)}
    cur.execute("SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo' AND attempts > 0")
    return {"failed_last_24h": failed, "retrying": cur.fetchone()[0]}


def job_counts_by_status(cur) -> dict:
    cur.execute("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")
    return dict(cur.fetchall())


# -- daily snapshots, spread over the day -------------------------------------------------
def users_due_for_snapshot(cur, limit: int) -> list[int]:
    """Users with a token whose slot of the day (a fixed second of it, from their Spotify
    id) has passed since their last sync, with no sync queued, running or tried since."""
    cur.execute(
        """
        WITH slots AS (
            SELECT u.id, u.last_synced_at,
                   date_trunc('day', now()) + make_interval(secs => abs(hashtext(u.spotify_id)) %% 86400) AS today_slot
            FROM users u JOIN spotify_tokens t ON t.user_id = u.id
            WHERE t.refresh_token_encrypted IS NOT NULL OR t.expires_at > now()
        )
        , due AS (
            SELECT id, last_synced_at,
                   CASE WHEN today_slot <= now() THEN today_slot ELSE today_slot - interval '1 day' END AS slot
            FROM slots
        )
        SELECT d.id FROM due d
        WHERE coalesce(d.last_synced_at, '-infinity') < d.slot
          -- one try a day: a sync that failed since the slot (after its retries) waits for the next
          AND NOT EXISTS (SELECT 1 FROM sync_runs r
                          WHERE r.user_id = d.id AND (r.status = 'running' OR r.started_at >= d.slot))
        ORDER BY d.slot, d.id LIMIT %s
    """,
        (limit,),
    )
    return [row[0] for row in cur.fetchall()]


# -- the shared Spotify rate budget ------------------------------------------------------
def take_call_slot(cur, spacing_seconds: float) -> dict:
    """Before a Web API call: the seconds to wait for this call's slot (SPOTIFY_MAX_RPS
    spaces calls ``spacing_seconds`` apart across the deployment; 0 turns pacing off) and
    the seconds every call must still wait out a 429. No slot is taken while blocked."""
    cur.execute(
        """
        UPDATE spotify_rate_budget SET next_slot_at = CASE
                WHEN %(spacing)s <= 0 OR blocked_until > now() THEN next_slot_at
                ELSE greatest(next_slot_at, now()) + make_interval(secs => %(spacing)s) END
        WHERE id = 1
        RETURNING CASE WHEN %(spacing)s <= 0 OR blocked_until > now() THEN 0
                       ELSE greatest(extract(epoch FROM next_slot_at - now()) - %(spacing)s, 0) END AS wait,
                  greatest(extract(epoch FROM blocked_until - now()), 0) AS blocked
    """,
        {"spacing": spacing_seconds},
    )
    row = fetch_one(cur)
    return {"wait": float(row["wait"]), "blocked": float(row["blocked"])} if row else {"wait": 0.0, "blocked": 0.0}


def seconds_blocked(cur) -> float:
    cur.execute("SELECT greatest(extract(epoch FROM blocked_until - now()), 0) FROM spotify_rate_budget WHERE id = 1")
    row = cur.fetchone()
    return float(row[0]) if row else 0.0


def block_calls(cur, seconds: float) -> None:
    """A 429: no call anywhere in the deployment until Retry-After has passed."""
    cur.execute(
        """
        UPDATE spotify_rate_budget
        SET blocked_until = greatest(blocked_until, now() + make_interval(secs => %s)),
            rate_limited_total = rate_limited_total + 1, updated_at = now()
        WHERE id = 1
    """,
        (seconds,),
    )


def record_quota_exceeded(cur, seconds: float, message: str) -> None:
    cur.execute(
        """
        UPDATE spotify_rate_budget
        SET quota_exceeded_until = greatest(quota_exceeded_until, now() + make_interval(secs => %s)),
            quota_message = %s, updated_at = now()
        WHERE id = 1
    """,
        (seconds, message),
    )


def clear_quota_exceeded(cur) -> None:
    cur.execute(
        "UPDATE spotify_rate_budget SET quota_exceeded_until = '-infinity', quota_message = NULL, updated_at = now()"
    )


def budget_state(cur) -> dict:
    cur.execute(
        """
        SELECT greatest(extract(epoch FROM blocked_until - now()), 0)::float AS blocked_seconds,
               quota_exceeded_until > now() AS quota_exceeded, quota_message,
               CASE WHEN quota_exceeded_until > now() THEN quota_exceeded_until END AS quota_exceeded_until,
               rate_limited_total
        FROM spotify_rate_budget WHERE id = 1
    """
    )
    return fetch_one(cur) or {}
