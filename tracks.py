"""The track page: what the catalogue knows, how the person ranked it, and what is like it."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, abort, current_app, render_template

import tracks_db
from auth import login_required, require_user_id
from database import transaction
from spotify import TIME_RANGE_LABELS

bp = Blueprint("tracks", __name__)

CHART_JS = "vendor/chart.umd.min.js"


@bp.get("/tracks/<track_id>")
@login_required
def show(track_id: str):
    if len(track_id) > 64 or "\x00" in track_id:  # no such id; NUL cannot even reach SQL
        abort(404)
    user_id = require_user_id()
    with transaction() as cur:
        track = tracks_db.user_track(cur, user_id, track_id)
        if track is None:  # unknown, or only in somebody else's data: the same answer
            abort(404, "This track is not in your snapshots, library or plays.")
        history = tracks_db.rank_history(cur, user_id, track_id)
        similar = tracks_db.similar_tracks(cur, user_id, track_id)
    chart_data = {
        "dates": sorted({h["snapshot_date"].isoformat() for h in history}),
        "series": [
            {
                "label": label,
                "time_range": key,
                "points": [
                    {"x": h["snapshot_date"].isoformat(), "y": h["rank"]} for h in history if h["time_range"] == key
                ],
            }
            for key, label in TIME_RANGE_LABELS.items()
        ],
    }
    chart_js = current_app.static_folder is not None and Path(current_app.static_folder, CHART_JS).exists()
    return render_template(
        "tracks/show.html",
        track=track,
        history=history,
        similar=similar,
        chart_data=chart_data,
        chart_js=chart_js,
        labels=TIME_RANGE_LABELS,
    )
