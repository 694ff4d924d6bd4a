"""SQL for sync runs: one row per sync with its stage, summary or error. Never commits."""
from __future__ import annotations

from psycopg2.extras import Json

from database import fetch_one

# A run still "running" after this long lost its worker (killed, redeployed).
STALE_AFTER = "15 minutes"


def start_run(cur, user_id: int) -> int | None:
    """A new running sync for the user, or None when one is already running."""
    cur.execute("""
        UPDATE sync_runs SET status = 'failed', finished_at = now(),
               error = 'The sync was interrupted (the server restarted). Please run it again.'
        WHERE user_id = %s AND status = 'running' AND started_at < now() - %s::interval
    """, (user_id, STALE_AFTER))
    cur.execute("""
        INSERT INTO sync_runs (user_id) VALUES (%s)
        ON CONFLICT (user_id) WHERE status = 'running' DO NOTHING
        RETURNING id
    """, (user_id,))
    row = cur.fetchone()
    return row[0] if row else None


def set_stage(cur, run_id: int, stage: str) -> None:
    cur.execute("UPDATE sync_runs SET stage = %s WHERE id = %s AND status = 'running'", (stage, run_id))


def finish_run(cur, run_id: int, summary: dict) -> None:
    cur.execute("""
        UPDATE sync_runs SET status = 'succeeded', stage = 'done', summary = %s, finished_at = now()
        WHERE id = %s
    """, (Json(summary), run_id))


def fail_run(cur, run_id: int, error: str) -> None:
    cur.execute("""
        UPDATE sync_runs SET status = 'failed', error = %s, finished_at = now() WHERE id = %s
    """, (error, run_id))


def latest_run(cur, user_id: int) -> dict | None:
    cur.execute("""
        SELECT id, status, stage, summary, error, started_at, finished_at
        FROM sync_runs WHERE user_id = %s ORDER BY started_at DESC, id DESC LIMIT 1
    """, (user_id,))
    return fetch_one(cur)
