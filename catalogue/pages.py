"""The artist and album pages: /artists/<id>, /artists/by-name/<name>, /albums/<id>.

Each page is a pure function of the person's rows and the catalogue, so it is stored
like the track page (page_cache) and answered with an ETag.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import Blueprint, Response, abort, render_template

from auth import login_required, require_user_id
from catalogue import catalogue_db
from database import transaction
from page_cache import conditional
from page_cache import store as page_store
from spotify import TIME_RANGE_LABELS

bp = Blueprint("catalogue", __name__)

# names in the store: one answer per person and artist (or name), or album
STORED_AS = {"artist": "artist-page", "album": "album-page"}
NOT_YOURS = {
    "artist": "This artist is not in your snapshots, library or plays.",
    "album": "This album is not in your snapshots, library or plays.",
}
MAX_ID = 64
MAX_NAME = 300


def history_chart(history: list[dict]) -> dict:
    """Rank history in the track page's chart shape (static/track_chart.js): a line per
    time range of the best rank held, with how many tracks were in the list."""
    return {
        "dates": sorted({h["snapshot_date"].isoformat() for h in history}),
        "series": [
            {
                "label": label,
                "time_range": key,
                "points": [
                    {"x": h["snapshot_date"].isoformat(), "y": h["best_rank"], "tracks": h["tracks"]}
                    for h in history
                    if h["time_range"] == key
                ],
            }
            for key, label in TIME_RANGE_LABELS.items()
        ],
    }


def listening(cur, user_id: int, track_ids: list[str], artist_name: str | None, album_name: str | None = None):
    """What every page shows below its head: plays, rank history and the tracks."""
    return {
        "plays": catalogue_db.plays_summary(cur, user_id, track_ids, artist_name, album_name),
        "chart_data": history_chart(catalogue_db.rank_history(cur, user_id, track_ids)),
        "tracks": catalogue_db.listed_tracks(cur, user_id, track_ids, album_order=album_name is not None),
        "track_count": len(track_ids),
    }


def artist_page(cur, user_id: int, artist_id: str | None, name: str) -> dict:
    """An artist by id; or by name (``artist_id`` None): the catalogue's artists of that
    name in the person's music together with the tracks an export only named."""
    if artist_id is not None:
        found = catalogue_db.artist(cur, artist_id)
        if found is None:
            abort(404, NOT_YOURS["artist"])
        known = [found]
    else:
        known = catalogue_db.artists_named(cur, user_id, name)
    name = known[0]["name"] if known else name
    track_ids = catalogue_db.artist_track_ids(cur, user_id, [a["spotify_id"] for a in known], name)
    page = listening(cur, user_id, track_ids, name)
    if not track_ids and not page["plays"]["plays"]:  # unknown, or only in somebody else's data
        abort(404, NOT_YOURS["artist"])
    cover = next((t for t in page["tracks"] if t["cover_url"]), None)
    head = {
        "id": known[0]["spotify_id"] if known else None,
        "name": name,
        "spotify_url": known[0]["spotify_url"] if known else None,
        "cover_url": cover and cover["cover_url"],
        "cover_album": cover and cover["album_name"],
    }
    return page_store.json_ready({"artist": head, **page})


def album_page(cur, user_id: int, album_id: str) -> dict:
    album = catalogue_db.album(cur, user_id, album_id)
    if album is None:
        abort(404, NOT_YOURS["album"])
    artist_name = album["artists"][0]["name"] if album["artists"] else None
    track_ids = catalogue_db.album_track_ids(cur, user_id, album_id, album["name"], artist_name)
    page = listening(cur, user_id, track_ids, artist_name, album["name"] or "")
    return page_store.json_ready({"album": album, **page})


def answer(kind: str, key: str, compute: Callable[[object, int], dict]) -> Response:
    """The page from its stored answer (computed now if missing, ``compute(cur, user_id)``),
    or a 304 when the browser has it."""
    user_id = require_user_id()
    name = STORED_AS[kind]
    with transaction() as cur:
        found = page_store.lookup(cur, user_id, [name], key)
        if found is None:
            abort(404, NOT_YOURS[kind])
        tag = conditional.page_etag(kind, user_id, key, found.stamp)
        if tag and (unchanged := conditional.not_modified(tag)):
            return unchanged
        stored = page_store.complete(cur, found, lambda c, _: {name: compute(c, user_id)})
    page = json.loads(stored[name])
    response = Response(render_template(f"catalogue/{kind}.html", labels=TIME_RANGE_LABELS, **page))
    return conditional.revalidate(response, tag) if tag else response


def bad_id(value: str) -> bool:
    return len(value) > MAX_ID or "\x00" in value  # no such id; NUL cannot even reach SQL


@bp.get("/artists/<artist_id>")
@login_required
def artist(artist_id: str):
    if bad_id(artist_id):
        abort(404, NOT_YOURS["artist"])
    return answer("artist", "id:" + artist_id, lambda cur, user_id: artist_page(cur, user_id, artist_id, ""))


@bp.get("/artists/by-name/<path:artist_name>")
@login_required
def artist_by_name(artist_name: str):
    """An artist known by name: what an export named without a Spotify id, together with
    the catalogue's artists of that name in the person's music."""
    name = " ".join(artist_name.split())
    if not name or len(name) > MAX_NAME or "\x00" in name:
        abort(404, NOT_YOURS["artist"])
    return answer("artist", "name:" + name.lower(), lambda cur, user_id: artist_page(cur, user_id, None, name))


@bp.get("/albums/<album_id>")
@login_required
def album(album_id: str):
    if bad_id(album_id):
        abort(404, NOT_YOURS["album"])
    return answer("album", album_id, lambda cur, user_id: album_page(cur, user_id, album_id))
