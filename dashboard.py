"""The signed-in page: who you are, your sync, and your current top tracks."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, session, url_for

import library_db
import snapshots
import spotify
import sync
import sync_runs_db
import users_db
from auth import current_user_id, login_required
from database import transaction

bp = Blueprint("dashboard", __name__)


@bp.get("/dashboard")
@login_required
def index():
    user_id = current_user_id()
    with transaction() as cur:
        user = users_db.get_user(cur, user_id)
        if user is None:  # the account was deleted elsewhere
            session.clear()
            return redirect(url_for("home.index"))
        run = sync_runs_db.latest_run(cur, user_id)
        top = {r: snapshots.latest_top_tracks(cur, user_id, r, limit=10) for r in spotify.TIME_RANGES}
        dates = snapshots.snapshot_dates(cur, user_id)
        library = library_db.library_size(cur, user_id)
    return render_template("dashboard/index.html", user=user, run=run, top=top, library=library,
                           snapshot_days=len({d["snapshot_date"] for d in dates}),
                           demo=spotify.settings_for(current_app).demo)


@bp.post("/sync")
@login_required
def start_sync():
    try:
        sync.sync_in_background(spotify.settings_for(current_app), current_user_id())
        flash("Sync started.")
    except sync.SyncAlreadyRunning as exc:
        flash(str(exc))
    return redirect(url_for("dashboard.index"))


@bp.get("/api/sync/status")
@login_required
def sync_status():
    with transaction() as cur:
        run = sync_runs_db.latest_run(cur, current_user_id())
    if run is None:
        return jsonify(status="never")
    return jsonify(status=run["status"], stage=run["stage"], error=run["error"], summary=run["summary"],
                   started_at=run["started_at"].isoformat(),
                   finished_at=run["finished_at"].isoformat() if run["finished_at"] else None)
