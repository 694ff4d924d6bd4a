"""A recorded import (``history_imports``): its uploaded files, the background run, progress.

The page uploads files into an import in 'uploading' (each streamed to a file of its own
under ``instance/history-uploads/<id>/``, never under the name the browser sent), then
queues it. The run happens in the background, never inside a request, and reports
progress (rows, bytes, stage) in small transactions of its own, so any worker can answer
the page's polls. It ends in 'succeeded' with the summary or 'failed' with a message a
person can read; the uploaded files are deleted either way.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2

from database import DatabaseUnavailable, connection, transaction, write_despite_outage
from history import history_db

from .archive import BadInput, display_name
from .importer import describe, import_files

log = logging.getLogger(__name__)

UPLOAD_DIR = "history-uploads"


class ImportAlreadyRunning(Exception):
    pass


class UploadTooLarge(Exception):
    pass


def upload_dir(instance_path: str, upload_key: str) -> Path:
    """The import's folder, by its upload key (a UUID the database made, never input)."""
    return Path(instance_path) / UPLOAD_DIR / str(uuid.UUID(upload_key))


def save_upload(instance_path: str, upload: dict, name: str, stream, limit: int) -> dict:
    """Stream an uploaded file to disk (at most ``limit`` bytes) and add it to the import
    (``upload``: its history_imports row)."""
    import_id = upload["id"]
    folder = upload_dir(instance_path, upload["upload_key"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{len(list(folder.iterdir())) + 1:03d}.upload"
    written = 0
    try:
        with open(path, "xb") as out:
            while chunk := stream.read(1 << 20):
                written += len(chunk)
                if written > limit:
                    raise UploadTooLarge(
                        f"{display_name(name)} is larger than the {limit // 1024**2} MB an upload may be"
                    )
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    (folder / f"{path.stem}.name").write_text(display_name(name))
    with transaction() as cur:
        history_db.add_file(cur, import_id, display_name(name), written)
    return {"name": display_name(name), "bytes": written}


def uploaded_files(instance_path: str, upload_key: str) -> list[tuple[str, str]]:
    """(path, name shown) of an import's uploads, in upload order."""
    folder = upload_dir(instance_path, upload_key)
    if not folder.is_dir():
        return []
    return [
        (str(path), (folder / f"{path.stem}.name").read_text())
        for path in sorted(folder.glob("*.upload"))
        if (folder / f"{path.stem}.name").exists()
    ]


def forget_uploads(instance_path: str, upload_key: str) -> None:
    shutil.rmtree(upload_dir(instance_path, upload_key), ignore_errors=True)


def forget_abandoned_uploads(instance_path: str) -> None:
    """Uploads started a day ago and never queued (the tab was closed): their files go and
    the import is marked failed, so nothing lingers on disk."""
    with transaction() as cur:
        abandoned = history_db.stale_uploads(cur)
        for import_id, _ in abandoned:
            history_db.fail_import(cur, import_id, "The upload was never finished.")
    for _, upload_key in abandoned:
        forget_uploads(instance_path, upload_key)


def queue(import_id: int, user_id: int, worker: str, worker_alive) -> None:
    with transaction() as cur:
        if not history_db.queue_import(cur, import_id, user_id, worker, worker_alive):
            raise ImportAlreadyRunning("An import is already running for you; wait for it to finish.")


def run(instance_path: str, import_id: int, user_id: int, worker: str, max_unpacked: int, after=None) -> dict:
    """Run a queued import to its end and record the outcome; ``after(summary)`` runs on
    success (the enrichment of new tracks). Returns {"summary": ...} or {"error": ...}."""
    with transaction() as cur:
        upload_key = history_db.begin_import(cur, import_id, worker)
    if upload_key is None:
        return {"error": "not queued"}
    outcome: dict[str, Any]
    try:
        outcome = {"summary": _import(uploaded_files(instance_path, upload_key), import_id, user_id, max_unpacked)}
    except BadInput as exc:
        outcome = {"error": f"{exc}. Nothing was imported."}
    except (psycopg2.Error, DatabaseUnavailable) as exc:
        log.warning("import %s: database error: %s", import_id, exc)
        outcome = {"error": "The database failed during the import; nothing was imported. Please try again."}
    except Exception:
        log.exception("import %s failed unexpectedly", import_id)
        outcome = {"error": "The import failed unexpectedly; nothing was imported. It has been logged."}
    finally:
        forget_uploads(instance_path, upload_key)
    record_outcome(import_id, outcome)
    if "summary" in outcome and after is not None:
        after(outcome["summary"])
    return outcome


def _import(files: list[tuple[str, str]], import_id: int, user_id: int, max_unpacked: int) -> dict:
    if not files:
        raise BadInput("No files were uploaded")

    def progress(stage: str, done: int, total: int, rows: int) -> None:
        with transaction() as cur:
            history_db.set_progress(cur, import_id, stage, done, total, rows)

    with connection() as conn:
        summary = import_files(conn, user_id, files, progress, max_unpacked)
    summary["message"] = describe(summary)
    return summary


def record_outcome(import_id: int, outcome: dict[str, Any]) -> None:
    """Write the result, waiting out a database outage (likely the reason it failed)."""

    def write(cur) -> None:
        if "summary" in outcome:
            history_db.finish_import(cur, import_id, outcome["summary"])
        else:
            history_db.fail_import(cur, import_id, outcome["error"])

    write_despite_outage(write, f"import {import_id}'s outcome")


def run_in_thread(target: Callable[[], object], import_id: int) -> threading.Thread:
    """The import on a thread of its own (used while no job engine runs it)."""
    thread = threading.Thread(target=target, name=f"history-import-{import_id}", daemon=True)
    thread.start()
    return thread


def status(row: dict) -> dict:
    """An import as the page shows it: progress with rate and ETA, then the summary."""
    seconds = float(row["seconds"] or 0)
    rate = row["rows_done"] / seconds if seconds > 0 and row["rows_done"] else None
    share = row["bytes_done"] / row["bytes_total"] if row["bytes_total"] else None
    eta = seconds * (1 - share) / share if share and 0 < share < 1 and row["status"] == "running" else None
    summary = row["summary"] or {}
    if row.get("silent"):  # its worker died: say so rather than let the page wait forever
        row = {**row, "status": "failed", "error": history_db.INTERRUPTED}
    return {
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
