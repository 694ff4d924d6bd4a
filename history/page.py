"""The "Import your Spotify history" page: upload the export, watch it import, read the summary.

- ``GET /import``: the page (drag and drop, or a plain file form), the latest imports;
- ``POST /import/files``: one file as the raw request body (the page's script), streamed
  into the database with a size bound (history/uploads.py); the first creates the import, the next ones name
  it (``?import=ID``); answers JSON;
- ``POST /import/<id>/start``: queue it (JSON); ``POST /import``: the form without script,
  files and start in one request, then the import's page;
- ``GET /import/<id>`` (the page of one import) and ``GET /api/import/<id>`` (its status
  for polling: rows, rate, ETA, then the summary).

The import itself is a job of the engine (history/runs.py, history/tasks.py) that any
worker runs, never a request.
"""

from __future__ import annotations

import os
from urllib.parse import quote, unquote

from flask import Blueprint, abort, current_app, jsonify, redirect, render_template, request, url_for

import security
import spotify
import users_db
from auth import login_required, require_user_id
from database import transaction
from history import imports_db, runs, uploads

bp = Blueprint("import_history", __name__)

UPLOAD_LIMIT_KEY = "HISTORY_UPLOAD_MAX_BYTES"  # one uploaded file (security.body_limit); Spotify's zips are tens of MB


def upload_limit() -> int:
    return int(current_app.config.get(UPLOAD_LIMIT_KEY) or 512 * 1024**2)


def demo_export_url() -> str | None:
    """Demo mode: where the emulator offers this listener a synthetic export."""
    settings = spotify.settings_for(current_app)
    if not settings.demo:
        return None
    with transaction() as cur:
        user = users_db.get_user(cur, require_user_id())
    return f"{settings.api_url}/_emulator/privacy?user={quote(user['spotify_id'])}" if user else None


@bp.get("/import")
@login_required
def index():
    with transaction() as cur:
        recent = [runs.status(r) for r in imports_db.latest_imports(cur, require_user_id())]
    active = next((r for r in recent if r["status"] in ("queued", "running")), None)
    return render_template(
        "import_history/index.html",
        recent=recent,
        active=active,
        upload_limit_mb=upload_limit() // 1024**2,
        demo_export_url=demo_export_url(),
    )


@bp.get("/import/<int:import_id>")
@login_required
def show(import_id: int):
    return render_template(
        "import_history/index.html",
        recent=[],
        active=own_import(import_id),
        upload_limit_mb=upload_limit() // 1024**2,
        demo_export_url=demo_export_url(),
    )


def own_import(import_id: int) -> dict:
    with transaction() as cur:
        row = imports_db.get_import(cur, import_id, require_user_id())
    if row is None:
        abort(404, "There is no such import of yours.")
    return runs.status(row)


@bp.get("/api/import/<int:import_id>")
@login_required
def import_status(import_id: int):
    return jsonify(own_import(import_id))


def uploading_import(import_id: int | None) -> dict:
    """The import files are being added to (its row): a new one, or the caller's own, still uploading."""
    user_id = require_user_id()
    if import_id is None:
        runs.forget_abandoned_uploads()
    with transaction() as cur:
        if import_id is None:
            import_id = imports_db.create_import(cur, user_id)
        row = imports_db.get_import(cur, import_id, user_id)
    if row is None:
        abort(404, "There is no such import of yours.")
    if row["status"] != "uploading":
        abort(409, "This import has started already; start a new one for more files.")
    return row


def file_name_from_header() -> str:
    name = unquote(request.headers.get("X-File-Name", "")).strip()
    return os.path.basename(name.replace("\\", "/")) or "upload"


def save(upload: dict, name: str, stream) -> dict:
    try:
        return runs.save_upload(upload, name, stream, upload_limit())
    except uploads.UploadTooLarge as exc:
        abort(413, str(exc))


@bp.post("/import/files")
@security.body_limit(UPLOAD_LIMIT_KEY)
@login_required
def upload_file():
    """One file as the raw body: the page's script sends each file like this."""
    upload = uploading_import(request.args.get("import", type=int))
    import_id = upload["id"]
    saved = save(upload, file_name_from_header(), request.stream)
    if saved["bytes"] == 0:
        abort(400, f"{saved['name']} is empty.")
    return jsonify(import_id=import_id, file=saved, start_url=url_for(".start", import_id=import_id))


@bp.post("/import/<int:import_id>/start")
@login_required
def start(import_id: int):
    uploading_import(import_id)
    queue_and_run(import_id)
    return jsonify(
        import_id=import_id,
        status_url=url_for(".import_status", import_id=import_id),
        page_url=url_for(".show", import_id=import_id),
    ), 202


@bp.post("/import")
@security.body_limit(UPLOAD_LIMIT_KEY)
@login_required
def upload_form():
    """The page without script: every chosen file and the start in one request."""
    files = [f for f in request.files.getlist("files") if f.filename]
    if not files:
        abort(400, "Choose the zip Spotify sent you, or the JSON files in it.")
    upload = uploading_import(None)
    for item in files:
        save(upload, os.path.basename(item.filename or "upload"), item.stream)
    import_id = upload["id"]
    queue_and_run(import_id)
    return redirect(url_for(".show", import_id=import_id), code=303)


def queue_and_run(import_id: int) -> None:
    try:
        runs.queue(import_id, require_user_id())
    except runs.ImportAlreadyRunning as exc:
        abort(409, str(exc))
