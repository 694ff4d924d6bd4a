"""SQL for background work: queue health, the schedule's due lists, capture state, gaps,
the shared Spotify rate budget. Cursor first, dicts out, never commits.

The engine's own tables (procrastinate_jobs, procrastinate_workers) are read here for
health only; jobs are written through the engine, never by SQL of ours.
"""

from __future__ import annotations

from datetime import UTC, datetime

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
    id) has passed and who have not synced that day yet, with no sync queued, running or
    tried since the slot. A sync by hand earlier that day already made the day's snapshot:
    the slot skips it (the next day's slot does not)."""
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
        WHERE coalesce(d.last_synced_at, '-infinity') < date_trunc('day', d.slot)
          -- one try a day: a sync that failed since the slot (after its retries) waits for the next
          AND NOT EXISTS (SELECT 1 FROM sync_runs r
                          WHERE r.user_id = d.id AND (r.status = 'running' OR r.started_at >= d.slot))
        ORDER BY d.slot, d.id LIMIT %s
    """,
        (limit,),
    )
    return [row[0] for row in cur.fetchall()]


# -- the shared Spotify rate budget ------------------------------------------------------
def _lock_budget_row(cur) -> None:
    """Wait for the budget row before reading the clock (see take_call_slot)."""
    cur.execute("SELECT 1 FROM spotify_rate_budget WHERE id = 1 FOR UPDATE")


def take_call_slot(cur, spacing_seconds: float) -> dict:
    """Before a Web API call: the seconds to wait for this call's slot (SPOTIFY_MAX_RPS
    spaces calls ``spacing_seconds`` apart across the deployment; 0 turns pacing off) and
    the seconds every call must still wait out a 429. No slot is taken while blocked.

    The clock is read once the row is ours (``clock_timestamp()`` after ``FOR UPDATE``),
    not when the transaction or the statement began: under load a call waits for the
    row, and a slot reckoned from before that wait would already be past, so two
    workers' calls would go out together."""
    _lock_budget_row(cur)
    cur.execute(
        """
        UPDATE spotify_rate_budget b SET next_slot_at = CASE
                WHEN %(spacing)s <= 0 OR b.blocked_until > c.now THEN b.next_slot_at
                ELSE greatest(b.next_slot_at, c.now) + make_interval(secs => %(spacing)s) END
        FROM (SELECT clock_timestamp() AS now) c
        WHERE b.id = 1
        RETURNING CASE WHEN %(spacing)s <= 0 OR b.blocked_until > c.now THEN 0
                       ELSE greatest(extract(epoch FROM b.next_slot_at - c.now) - %(spacing)s, 0)
                  END AS wait,
                  greatest(extract(epoch FROM greatest(b.blocked_until, c.now) - c.now), 0) AS blocked
    """,
        {"spacing": spacing_seconds},
    )
    row = fetch_one(cur)
    return {"wait": float(row["wait"]), "blocked": float(row["blocked"])} if row else {"wait": 0.0, "blocked": 0.0}


def seconds_blocked(cur) -> float:
    # greatest(..., now()) first: PostgreSQL before 17 cannot subtract from the -infinity default
    cur.execute("SELECT extract(epoch FROM greatest(blocked_until, now()) - now()) FROM spotify_rate_budget")
    row = cur.fetchone()
    return float(row[0]) if row else 0.0


def block_calls(cur, seconds: float) -> None:
    """A 429: no call anywhere in the deployment until Retry-After has passed, counted
    from when the row is ours, not from before a wait for it."""
    _lock_budget_row(cur)
    cur.execute(
        """
        UPDATE spotify_rate_budget
        SET blocked_until = greatest(blocked_until, clock_timestamp() + make_interval(secs => %s)),
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
        SELECT greatest(extract(epoch FROM greatest(blocked_until, now()) - now()), 0)::float AS blocked_seconds,
               quota_exceeded_until > now() AS quota_exceeded, quota_message,
               CASE WHEN quota_exceeded_until > now() THEN quota_exceeded_until END AS quota_exceeded_until,
               rate_limited_total
        FROM spotify_rate_budget WHERE id = 1
    """
    )
    return fetch_one(cur) or {}


# -- recently-played capture --------------------------------------------------------------
def add_capture_states(cur, interval_seconds: float) -> int:
    """A capture state for every person with a token who has none yet, their first
    capture spread over one interval (a fixed offset from their Spotify id)."""
    cur.execute(
        """
        INSERT INTO capture_state (user_id, next_capture_at)
        SELECT u.id, now() + make_interval(secs => (abs(hashtext(u.spotify_id)) %% 1000) / 1000.0 * %s)
        FROM users u JOIN spotify_tokens t ON t.user_id = u.id
        WHERE (t.refresh_token_encrypted IS NOT NULL OR t.expires_at > now())
          AND NOT EXISTS (SELECT 1 FROM capture_state c WHERE c.user_id = u.id)
        ON CONFLICT (user_id) DO NOTHING
    """,
        (interval_seconds,),
    )
    return cur.rowcount


def take_due_captures(cur, interval_seconds: float, limit: int) -> list[int]:
    """People whose capture is due, their next one moved an interval on (doubled for each
    failure in a row, up to a day): the caller queues these now."""
    cur.execute(
        """
        WITH due AS (
            SELECT c.user_id FROM capture_state c
            JOIN spotify_tokens t ON t.user_id = c.user_id
            WHERE c.next_capture_at <= now()
              AND (t.refresh_token_encrypted IS NOT NULL OR t.expires_at > now())
            ORDER BY c.next_capture_at LIMIT %s
            FOR UPDATE OF c SKIP LOCKED
        )
        UPDATE capture_state c
        SET next_capture_at = now() + make_interval(secs => least(%s * 2 ^ least(c.failures, 16), 86400))
        FROM due WHERE c.user_id = due.user_id
        RETURNING c.user_id
    """,
        (limit, interval_seconds),
    )
    return sorted(row[0] for row in cur.fetchall())


def lock_capture_state(cur, user_id: int) -> dict | None:
    cur.execute(
        "SELECT user_id, after_ms, last_captured_at, failures FROM capture_state WHERE user_id = %s FOR UPDATE",
        (user_id,),
    )
    return fetch_one(cur)


def record_capture(cur, user_id: int, after_ms: int | None, new_plays: int, interval_seconds: float) -> None:
    """A capture that worked: the cursor moves on, the failures in a row end, and the next
    capture comes an interval later at most (a failure streak had pushed it further out)."""
    cur.execute(
        """
        INSERT INTO capture_state (user_id, after_ms, last_captured_at, last_new_plays, failures, next_capture_at)
        VALUES (%(user)s, %(after)s, now(), %(new)s, 0, now() + make_interval(secs => %(interval)s))
        ON CONFLICT (user_id) DO UPDATE
        SET after_ms = greatest(capture_state.after_ms, EXCLUDED.after_ms), last_captured_at = now(),
            last_new_plays = EXCLUDED.last_new_plays, failures = 0, last_error = NULL, last_error_at = NULL,
            next_capture_at = least(capture_state.next_capture_at, EXCLUDED.next_capture_at)
    """,
        {"user": user_id, "after": after_ms, "new": new_plays, "interval": interval_seconds},
    )


def record_capture_failure(cur, user_id: int, message: str) -> None:
    cur.execute(
        """
        INSERT INTO capture_state (user_id, failures, last_error, last_error_at) VALUES (%s, 1, %s, now())
        ON CONFLICT (user_id) DO UPDATE
        SET failures = capture_state.failures + 1, last_error = EXCLUDED.last_error, last_error_at = now()
    """,
        (user_id, message),
    )


def record_gap(cur, user_id: int, after_play, before_play) -> bool:
    cur.execute(
        """
        INSERT INTO play_gaps (user_id, after_play, before_play) VALUES (%s, %s, %s)
        ON CONFLICT (user_id, after_play) DO NOTHING
    """,
        (user_id, after_play, before_play),
    )
    return cur.rowcount == 1


def newest_play_until(cur, user_id: int, until) -> datetime:
    """The newest play kept of the person at or before ``until`` (the earliest time: none)."""
    cur.execute("SELECT max(played_at) FROM plays WHERE user_id = %s AND played_at <= %s", (user_id, until))
    newest = cur.fetchone()[0]
    return newest if newest is not None else datetime.min.replace(tzinfo=UTC)


def capture_status(cur, user_id: int) -> dict | None:
    """What /settings shows: the last capture, its failures, the gaps found."""
    cur.execute(
        """
        SELECT c.last_captured_at, c.last_new_plays, c.next_capture_at, c.failures, c.last_error, c.last_error_at,
               (SELECT count(*) FROM play_gaps g WHERE g.user_id = c.user_id) AS gaps,
               (SELECT max(detected_at) FROM play_gaps g WHERE g.user_id = c.user_id) AS last_gap_at
        FROM capture_state c WHERE c.user_id = %s
    """,
        (user_id,),
    )
    return fetch_one(cur)


def play_gaps(cur, user_id: int, limit: int = 5) -> list[dict]:
    cur.execute(
        """
        SELECT after_play, before_play, detected_at FROM play_gaps
        WHERE user_id = %s ORDER BY detected_at DESC LIMIT %s
    """,
        (user_id, limit),
    )
    return fetch_all(cur)
