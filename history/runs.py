"""A recorded import (``history_imports``): its uploaded files, its job, progress, outcome.

The page uploads files into an import in 'uploading' (each streamed into the database:
history/uploads.py), then queues it: a job of the engine (``IMPORT_TASK``, registered in
history/tasks.py) under the person's lock, so one import, sync or capture of theirs runs
at a time. Any worker on any machine that reaches the database runs it:

- the import, its outcome and the removal of its uploads are ONE transaction: a worker
  killed mid-import leaves the database as it was (plays, outcome, uploads), the engine
  retries the job, and the retry imports the same uploads from the start;
- progress (rows, bytes, stage) is written in small transactions of its own, so any web
  process answers the page's polls with rows, rate and ETA;
- bad input ends it as 'failed' with a message a person can read (no retry); a database
  failure is retried with the engine's backoff, and reported once retries are spent;
- a successful import queues the catalogue enrichment (history/tasks.py).
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg2

import sync
from database import DatabaseUnavailable, connection, long_running, transaction, write_despite_outage
from history import imports_db, uploads
from jobs import retries
from jobs.engine import defer, user_lock

from . import archive
from .archive import BadInput
from .importer import Importer, describe

log = logging.getLogger(__name__)

IMPORT_TASK = "history.import"


class ImportAlreadyRunning(Exception):
    pass


def save_upload(upload: dict, name: str, stream, limit: int) -> dict:
    """Stream an uploaded file into the import (``upload``: its history_imports row)."""
    return uploads.save(upload["id"], name, stream, limit)


def forget_abandoned_uploads() -> None:
    """Uploads started a day ago and never queued (the tab was closed) fail, and the
    files of imports that ended go (housekeeping, and each new upload)."""
    with transaction() as cur:
        imports_db.fail_stale_uploads(cur)
        imports_db.delete_finished_uploads(cur)


def queue(import_id: int, user_id: int) -> None:
    """Queue the uploaded import as a job; ImportAlreadyRunning when one of theirs is."""
    with transaction() as cur:
        if not imports_db.queue_import(cur, import_id, user_id):
            raise ImportAlreadyRunning("An import is already running for you; wait for it to finish.")
    try:
        job_id = defer(IMPORT_TASK, lock=user_lock(user_id), import_id=import_id, user_id=user_id)
    except Exception:
        record_failure(import_id, "The import could not be queued. Please try again.")
        raise
    if job_id is not None:
        with transaction() as cur:
            imports_db.attach_job(cur, import_id, job_id)


def run(import_id: int, user_id: int, max_unpacked: int, attempts_before: int = 0) -> dict:
    """Run a queued import (one attempt of its job) to its end; returns {"summary": ...} or
    {"error": ...}. Raises to have the engine retry it (a database failure)."""
    with transaction() as cur:
        if not imports_db.claim_import(cur, import_id, sync.this_worker()):
            return {"error": "not queued"}  # an outcome is recorded already
    try:
        return {"summary": import_and_record(import_id, user_id, max_unpacked)}
    except BadInput as exc:
        error = f"{exc}. Nothing was imported."
    except (psycopg2.Error, DatabaseUnavailable) as exc:
        decided = retries.plan(exc, attempts_before)
        log.warning("import %s: database error (attempt %s of %s): %s", import_id, decided.attempt, decided.of, exc)
        if not decided.final:
            with transaction() as cur:
                imports_db.set_stage(cur, import_id, f"The database failed; trying again in {decided.retry_in:.0f} s")
            raise
        error = "The database failed during the import; nothing was imported. Please try again."
    except Exception:
        log.exception("import %s failed unexpectedly", import_id)
        error = "The import failed unexpectedly; nothing was imported. It has been logged."
    record_failure(import_id, error)
    return {"error": error}


def import_and_record(import_id: int, user_id: int, max_unpacked: int) -> dict:
    """The import, its summary and the removal of its uploads, in one transaction."""
    with connection() as conn, transaction(conn) as cur:
        long_running(cur)  # minutes of work, and other writers' row locks to wait for
        files = imports_db.upload_files(cur, import_id)
        if not files:
            raise BadInput("No files were uploaded")
        items: list = [(uploads.opener(f["id"], f["bytes"]), f["name"]) for f in files]
        sources = list(archive.all_sources(items, max_unpacked))
        summary = Importer(conn, user_id, sources, progress_of(import_id)).run()  # its block: a savepoint of ours
        summary["message"] = describe(summary)
        imports_db.delete_uploads(cur, import_id)
        imports_db.finish_import(cur, import_id, summary)
    return summary


def progress_of(import_id: int):
    def progress(stage: str, done: int, total: int, rows: int) -> None:
        with connection() as conn, transaction(conn) as cur:  # never the import's own transaction
            imports_db.set_progress(cur, import_id, stage, done, total, rows)

    return progress


def record_failure(import_id: int, error: str) -> None:
    """Write the failure and drop the uploads, waiting out a database outage (likely the
    reason it failed)."""

    def write(cur) -> None:
        imports_db.fail_import(cur, import_id, error)
        imports_db.delete_uploads(cur, import_id)

    write_despite_outage(write, f"import {import_id}'s outcome")


def status(row: dict) -> dict:
    """An import as the page shows it: progress with rate and ETA, then the summary."""
    seconds = float(row["seconds"] or 0)
    rate = row["rows_done"] / seconds if seconds > 0 and row["rows_done"] else None
    share = row["bytes_done"] / row["bytes_total"] if row["bytes_total"] else None
    eta = seconds * (1 - share) / share if share and 0 < share < 1 and row["status"] == "running" else None
    summary = row["summary"] or {}
    if row.get("silent"):  # nothing carries it on: say so rather than let the page wait forever
        row = {**row, "status": "failed", "error": imports_db.INTERRUPTED}
    result: dict[str, Any] = {
        "id": row["id"],
        "status": row["status"],
        "stage": row["stage"],
        "files": row["files"],
        "rows_done": row["rows_done"],
        "bytes_done": row["bytes_done"],
        "bytes_total": row["bytes_total"],
        "share": round(share, 4) if share is not None else None,
        "rows_per_second": round(rate) if rate else None,
        "eta_seconds": round(eta) if eta is not None else None,
        "seconds": round(seconds, 1),
        "message": summary.get("message") if row["status"] == "succeeded" else row["error"],
        "summary": summary if row["status"] == "succeeded" else None,
    }
    return result
