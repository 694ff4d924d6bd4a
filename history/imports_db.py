"""SQL for recorded imports (``history_imports``: the page's progress, the job that runs
one) and the files uploaded for them (``history_upload_files`` and their chunks).
Cursor first, never commits.

An import is alive while its job is waiting or running (``procrastinate_jobs``, retries
included: a worker that died has its job retried). Before it has a job (the moment
between queueing and the defer) its heartbeat says: SILENT_AFTER of silence means
whoever queued it died.
"""

from __future__ import annotations

from psycopg2 import Binary
from psycopg2.extras import Json

from database import fetch_all, fetch_one, fetch_value

SILENT_AFTER = "2 minutes"
INTERRUPTED = (
    "The import was interrupted (the server restarted or the worker died); nothing was changed. Please run it again."
)
# An import that is queued or running and that nothing will carry on with.
DEAD = f"""h.status IN ('queued', 'running') AND CASE
              WHEN h.job_id IS NOT NULL THEN coalesce(j.status NOT IN ('todo', 'doing'), true)
              ELSE h.heartbeat_at < now() - interval '{SILENT_AFTER}' END"""
RUN_COLUMNS = f"""h.id, h.user_id, h.status, h.stage, h.files, h.bytes_total, h.bytes_done, h.rows_done,
                 h.summary, h.error, h.created_at, h.started_at, h.finished_at, h.heartbeat_at, h.job_id,
                 {DEAD} AS silent,
                 extract(epoch FROM (coalesce(h.finished_at, now()) - h.started_at)) AS seconds"""
WITH_JOB = "history_imports h LEFT JOIN procrastinate_jobs j ON j.id = h.job_id"


def create_import(cur, user_id: int) -> int:
    """A new import in 'uploading': files are added to it until it is started."""
    cur.execute("INSERT INTO history_imports (user_id) VALUES (%s) RETURNING id", (user_id,))
    return fetch_value(cur)


def queue_import(cur, import_id: int, user_id: int) -> bool:
    """Move an uploaded import to 'queued'; False when another import of the user's is
    really queued or running (one nothing carries on with is failed first)."""
    cur.execute(
        f"SELECT h.id, {DEAD} AS dead FROM {WITH_JOB}"
        " WHERE h.user_id = %s AND h.status IN ('queued', 'running') FOR UPDATE OF h",
        (user_id,),
    )
    active = fetch_one(cur)
    if active and active["dead"]:
        fail_import(cur, active["id"], INTERRUPTED)
        active = None
    if active:
        return False
    cur.execute(
        """
        UPDATE history_imports SET status = 'queued', stage = 'Waiting for a worker', heartbeat_at = now()
        WHERE id = %s AND user_id = %s AND status = 'uploading'
    """,
        (import_id, user_id),
    )
    return cur.rowcount == 1


def attach_job(cur, import_id: int, job_id: int) -> None:
    cur.execute("UPDATE history_imports SET job_id = %s, heartbeat_at = now() WHERE id = %s", (job_id, import_id))


def claim_import(cur, import_id: int, worker: str) -> bool:
    """Mark the import as running here (its job's first attempt, or a retry after a worker
    died: the progress starts again, as the rolled-back work did). False when it has an
    outcome already."""
    cur.execute(
        """
        UPDATE history_imports SET status = 'running', worker = %s, started_at = now(), heartbeat_at = now(),
                                   stage = 'Starting', bytes_done = 0, rows_done = 0
        WHERE id = %s AND status IN ('queued', 'running')
    """,
        (worker, import_id),
    )
    return cur.rowcount == 1


def set_progress(cur, import_id: int, stage: str, bytes_done: int, bytes_total: int, rows_done: int) -> None:
    """Progress of a running import; bytes count unpacked JSON (a zip's entries), so the
    total replaces the uploaded files' sizes once reading starts."""
    cur.execute(
        """
        UPDATE history_imports SET stage = %s, bytes_done = %s, bytes_total = %s, rows_done = %s, heartbeat_at = now()
        WHERE id = %s AND status = 'running'
    """,
        (stage, bytes_done, bytes_total, rows_done, import_id),
    )


def set_stage(cur, import_id: int, stage: str) -> None:
    cur.execute(
        "UPDATE history_imports SET stage = %s, heartbeat_at = now() WHERE id = %s AND status = 'running'",
        (stage, import_id),
    )


def finish_import(cur, import_id: int, summary: dict) -> None:
    cur.execute(
        """
        UPDATE history_imports SET status = 'succeeded', stage = 'Done', summary = %s, finished_at = now(),
                                   bytes_done = bytes_total
        WHERE id = %s
    """,
        (Json(summary), import_id),
    )


def fail_import(cur, import_id: int, error: str) -> None:
    cur.execute(
        "UPDATE history_imports SET status = 'failed', error = %s, finished_at = now() WHERE id = %s",
        (error, import_id),
    )


def import_status(cur, import_id: int) -> str | None:
    cur.execute("SELECT status FROM history_imports WHERE id = %s", (import_id,))
    row = cur.fetchone()
    return row[0] if row else None


def get_import(cur, import_id: int, user_id: int) -> dict | None:
    cur.execute(f"SELECT {RUN_COLUMNS} FROM {WITH_JOB} WHERE h.id = %s AND h.user_id = %s", (import_id, user_id))
    return fetch_one(cur)


def latest_imports(cur, user_id: int, limit: int = 5) -> list[dict]:
    cur.execute(
        f"SELECT {RUN_COLUMNS} FROM {WITH_JOB} WHERE h.user_id = %s AND h.status <> 'uploading' "
        "ORDER BY h.created_at DESC, h.id DESC LIMIT %s",
        (user_id, limit),
    )
    return fetch_all(cur)


def fail_stale_uploads(cur, older_than: str = "1 day") -> int:
    """Imports whose upload never finished (the tab was closed) fail; their files go."""
    cur.execute(
        """
        UPDATE history_imports SET status = 'failed', error = 'The upload was never finished.', finished_at = now()
        WHERE status = 'uploading' AND heartbeat_at < now() - %s::interval
    """,
        (older_than,),
    )
    return cur.rowcount


# -- uploaded files -----------------------------------------------------------------
def add_upload_file(cur, import_id: int, name: str) -> int:
    cur.execute("INSERT INTO history_upload_files (import_id, name) VALUES (%s, %s) RETURNING id", (import_id, name))
    return fetch_value(cur)


def add_chunk(cur, file_id: int, chunk_no: int, data: bytes) -> None:
    cur.execute(
        "INSERT INTO history_upload_chunks (file_id, chunk_no, data) VALUES (%s, %s, %s)",
        (file_id, chunk_no, Binary(data)),
    )


def complete_upload_file(cur, import_id: int, file_id: int, name: str, byte_size: int) -> None:
    """The file is whole: it counts for the import (and the page lists it)."""
    cur.execute(
        "UPDATE history_upload_files SET bytes = %s, complete = true WHERE id = %s AND import_id = %s",
        (byte_size, file_id, import_id),
    )
    cur.execute(
        """
        UPDATE history_imports SET files = files || %s, bytes_total = bytes_total + %s, heartbeat_at = now()
        WHERE id = %s AND status = 'uploading'
    """,
        (Json([{"name": name, "bytes": byte_size}]), byte_size, import_id),
    )


def delete_upload_file(cur, file_id: int) -> None:
    cur.execute("DELETE FROM history_upload_files WHERE id = %s", (file_id,))


def upload_files(cur, import_id: int) -> list[dict]:
    """The import's whole files, in upload order: id, name, bytes."""
    cur.execute(
        "SELECT id, name, bytes FROM history_upload_files WHERE import_id = %s AND complete ORDER BY id",
        (import_id,),
    )
    return fetch_all(cur)


def chunk(cur, file_id: int, chunk_no: int) -> bytes | None:
    cur.execute("SELECT data FROM history_upload_chunks WHERE file_id = %s AND chunk_no = %s", (file_id, chunk_no))
    row = cur.fetchone()
    return bytes(row[0]) if row else None


def delete_uploads(cur, import_id: int) -> None:
    """The import's uploaded files (their chunks go with them)."""
    cur.execute("DELETE FROM history_upload_files WHERE import_id = %s", (import_id,))


def delete_finished_uploads(cur) -> int:
    """Files of imports that ended (an outcome recorded elsewhere than the import's own
    transaction) or failed before starting: what housekeeping removes."""
    cur.execute(
        """
        DELETE FROM history_upload_files f USING history_imports h
        WHERE h.id = f.import_id AND h.status IN ('succeeded', 'failed')
    """
    )
    return cur.rowcount


# -- enrichment ------------------------------------------------------------------------
def enrichment_token_holder(cur, preferred: int | None) -> int | None:
    """Whose token enrichment fetches with: ``preferred`` (the importer) when their token
    is live, else the person who logged in most recently (GET /tracks/{id} is catalogue
    data, the same for everyone; an import from the CLI names a user without a login)."""
    cur.execute(
        """
        SELECT u.id FROM users u JOIN spotify_tokens t ON t.user_id = u.id
        WHERE (t.refresh_token_encrypted IS NOT NULL OR t.expires_at > now()) AND u.needs_relogin_since IS NULL
        ORDER BY u.id = %s DESC NULLS LAST, t.expires_at DESC, u.id
        LIMIT 1
    """,
        (preferred,),
    )
    row = cur.fetchone()
    return row[0] if row else None
