"""SQL for sync runs: one row per sync with its stage, summary or error. Never commits."""

from __future__ import annotations

from psycopg2.extras import Json

from database import fetch_one

# A running sync reports progress every few seconds; this much silence means its worker
# died somewhere we cannot see (another host).
SILENT_AFTER = "2 minutes"
INTERRUPTED = "The sync was interrupted (the server restarted or the worker died). Please run it again."


def start_run(cur, user_id: int, worker: str, worker_alive) -> int | None:
    """A new running sync for the user, or None when one is really running.

    A run left behind by a dead worker does not count: ``worker_alive(worker)`` says
    whether the process that started it still exists (when it can tell), and a run whose
    heartbeat is older than SILENT_AFTER is dead wherever it ran.
    """
    cur.execute(
        """
        SELECT id, worker, heartbeat_at < now() - %s::interval AS silent
        FROM sync_runs WHERE user_id = %s AND status = 'running' FOR UPDATE
    """,
        (SILENT_AFTER, user_id),
    )
    running = fetch_one(cur)
    if running and (running["silent"] or not worker_alive(running["worker"])):
        fail_run(cur, running["id"], INTERRUPTED)
    cur.execute(
        """
        INSERT INTO sync_runs (user_id, worker) VALUES (%s, %s)
        ON CONFLICT (user_id) WHERE status = 'running' DO NOTHING
        RETURNING id
    """,
        (user_id, worker),
    )
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
