"""SQL for sync runs: one row per sync with its stage, summary or error. Never commits."""

from __future__ import annotations

from psycopg2.extras import Json

from database import fetch_one

# A running sync reports progress every few seconds; this much silence means its worker
# died somewhere we cannot see (another host).
SILENT_AFTER = "2 minutes"
INTERRUPTED = "The sync was interrupted (the server restarted or the worker died). Please run it again."


def start_run(cur, user_id: int, worker: str | None, worker_alive, stage: str = "starting") -> int | None:
    """A new running sync for the user, or None when one is really running.

    A run left behind by a dead worker does not count. A run with a job is alive while
    its job is queued or running (the engine retries a dead worker's job); one without
    (``flask snapshot``, a run being queued) by ``worker_alive(worker)``, which says
    whether the process that started it still exists when it can tell, and a heartbeat
    fresher than SILENT_AFTER.
    """
    cur.execute(
        """
        SELECT r.id, r.worker, r.job_id, r.heartbeat_at < now() - %s::interval AS silent,
               j.status IN ('todo', 'doing') AS job_alive
        FROM sync_runs r LEFT JOIN procrastinate_jobs j ON j.id = r.job_id
        WHERE r.user_id = %s AND r.status = 'running' FOR UPDATE OF r
    """,
        (SILENT_AFTER, user_id),
    )
    running = fetch_one(cur)
    if running:
        if running["job_id"] is not None:
            dead = not running["job_alive"]
        else:
            dead = running["silent"] or not worker_alive(running["worker"])
        if dead:
            fail_run(cur, running["id"], INTERRUPTED)
    cur.execute(
        """
        INSERT INTO sync_runs (user_id, worker, stage) VALUES (%s, %s, %s)
        ON CONFLICT (user_id) WHERE status = 'running' DO NOTHING
        RETURNING id
    """,
        (user_id, worker, stage),
    )
    row = cur.fetchone()
    return row[0] if row else None


def running_run(cur, user_id: int) -> dict | None:
    cur.execute("SELECT id, job_id, stage FROM sync_runs WHERE user_id = %s AND status = 'running'", (user_id,))
    return fetch_one(cur)


def attach_job(cur, run_id: int, job_id: int) -> None:
    cur.execute("UPDATE sync_runs SET job_id = %s, heartbeat_at = now() WHERE id = %s", (job_id, run_id))


def run_status(cur, run_id: int) -> str | None:
    cur.execute("SELECT status FROM sync_runs WHERE id = %s", (run_id,))
    row = cur.fetchone()
    return row[0] if row else None


def set_stage(cur, run_id: int, stage: str) -> None:
    cur.execute(
        "UPDATE sync_runs SET stage = %s, heartbeat_at = now() WHERE id = %s AND status = 'running'", (stage, run_id)
    )


def finish_run(cur, run_id: int, summary: dict) -> None:
    cur.execute(
        """
        UPDATE sync_runs SET status = 'succeeded', stage = 'done', summary = %s, finished_at = now()
        WHERE id = %s
    """,
        (Json(summary), run_id),
    )


def fail_run(cur, run_id: int, error: str) -> None:
    cur.execute(
        """
        UPDATE sync_runs SET status = 'failed', error = %s, finished_at = now() WHERE id = %s
    """,
        (error, run_id),
    )


def latest_run(cur, user_id: int) -> dict | None:
    cur.execute(
        """
        SELECT id, status, stage, summary, error, started_at, finished_at
        FROM sync_runs WHERE user_id = %s ORDER BY started_at DESC, id DESC LIMIT 1
    """,
        (user_id,),
    )
    return fetch_one(cur)
