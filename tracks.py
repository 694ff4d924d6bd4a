"""The track page: what the catalogue knows, how the person ranked it, and what is like it."""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template

import tracks_db
from auth import checks_own_session
from page_cache import conditional
from page_cache import store as page_store
from page_cache import views as page_views
from spotify import TIME_RANGE_LABELS

bp = Blueprint("tracks", __name__)

CHART_JS = "vendor/chart.umd.min.js"


TRACK_PAGE = "track-page"  # its name in the store (page_cache), one answer per track id


def track_page(cur, user_id: int, track_id: str) -> dict:
    """Everything the page shows, JSON-ready (it is stored until the person's data or the
    catalogue changes); a 404 when the track is not the person's."""
    track = tracks_db.user_track(cur, user_id, track_id)
    if track is None:  # unknown, or only in somebody else's data: the same answer
        abort(404, "This track is not in your snapshots, library or plays.")
    history = tracks_db.rank_history(cur, user_id, track_id)
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
    similar = tracks_db.similar_tracks(cur, user_id, track_id)
    return page_store.json_ready(
        {
            "track": {**track, "saved_on": track["saved_at"].date() if track["saved_at"] else None},
            "has_history": bool(history),
            "chart_data": chart_data,
            "similar": {
                "method": similar["method"],
                "rows": [{**row, "year": row["release_date"] and row["release_date"].year} for row in similar["rows"]],
            },
        }
    )


@bp.get("/tracks/<track_id>")
@checks_own_session
def show(track_id: str):
    if len(track_id) > 64 or "\x00" in track_id:  # no such id; NUL cannot even reach SQL
        abort(404)
    found = page_views.signed_in([TRACK_PAGE], track_id)  # one statement, the session check included
    tag = conditional.page_etag("track", found.user_id, track_id, found.stamp)
    if (answered := conditional.answered_without_work(tag)) is not None:
        return answered
    user_id = found.user_id
    found, stored = page_views.answers_of(found, lambda c, _: {TRACK_PAGE: track_page(c, user_id, track_id)})
    tag = conditional.page_etag("track", found.user_id, track_id, found.stamp)
    page = json.loads(stored[TRACK_PAGE])
    chart_js = current_app.static_folder is not None and Path(current_app.static_folder, CHART_JS).exists()
    html = render_template(
        "tracks/show.html",
        track=page["track"],
        has_history=page["has_history"],
        similar=page["similar"],
        chart_data=page["chart_data"],
        chart_js=chart_js,
        labels=TIME_RANGE_LABELS,
    )
    return conditional.revalidate(Response(conditional.keep_rendered(tag, html)), tag) if tag else Response(html)
