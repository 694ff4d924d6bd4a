"""The emulator's Web API: the /v1 subset the app uses, shaped like Spotify's.

Every route needs a Bearer token from the accounts service (401 with Spotify's
error shape when missing, unknown or expired) and answers errors as
`{"error": {"status": N, "message": "..."}}`. Paging objects carry absolute
`next`/`previous` URLs back to this emulator. Emulator extension: `as_of=`
on /me/top/tracks and /me/tracks (see spotify_emulator.py).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime
from datetime import time as day_time
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, jsonify, request

from . import crowd, objects
from .catalogue import get_catalogue, search_tracks
from .listeners import TIME_RANGES, parse_played_item, served_top_track_ids
from .live import recently_played_now
from .state import EmulatorState

web_api = Blueprint("emulator_web_api", __name__, url_prefix="/v1")

SEARCH_TYPES = ("album", "artist", "playlist", "track", "show", "episode", "audiobook")
# GET /me/top/{type}: from offset 50 on Spotify answers an empty page, so 99 items are the
# most anyone reaches (offset 49 + limit 50); spotify/web-api issues 1424, 1539, 1592.
TOP_ITEMS_LAST_OFFSET = 49
# Endpoints the February 2026 changes took from development-mode apps: they answer 403,
# not 404 (batch lookups, other users' profiles and playlists, artist top tracks, the
# old /playlists/{id}/tracks). One id at a time (GET /tracks/{id}) still works.
REMOVED_IN_DEVELOPMENT_MODE = (
    ("/tracks", ["GET"]),
    ("/artists", ["GET"]),
    ("/albums", ["GET"]),
    ("/shows", ["GET"]),
    ("/episodes", ["GET"]),
    ("/artists/<artist_id>/top-tracks", ["GET"]),
    ("/browse/new-releases", ["GET"]),
    ("/users/<user_id>", ["GET"]),
    ("/users/<user_id>/playlists", ["GET", "POST"]),
    ("/playlists/<playlist_id>/tracks", ["GET", "POST", "PUT", "DELETE"]),
)
REMOVED_ENDPOINT = "removed_in_development_mode"
NOT_REGISTERED = "User not registered in the Developer Dashboard"
_BASE62_ID = re.compile(r"^[0-9A-Za-z]{22}$")
_TRACK_URI = re.compile(r"^spotify:track:([0-9A-Za-z]{22})$")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def api_error(status: int, message: str, **headers) -> Response:
    response = jsonify({"error": {"status": status, "message": message}})
    response.status_code = status
    response.headers.update(headers)
    return response


web_api.register_error_handler(ApiError, lambda e: api_error(e.status, e.message))


def _state() -> EmulatorState:
    return current_app.config["EMULATOR_STATE"]


def _base() -> str:
    return request.host_url.rstrip("/")


@web_api.before_request
def _authenticate():
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return api_error(401, "No token provided")
    token, problem = _state().access_token_user(header[7:].strip())
    if token is None:
        return api_error(
            401,
            problem,
            **{"WWW-Authenticate": f'Bearer realm="spotify", error="invalid_token", error_description="{problem}"'},
        )
    if not _state().user_allowed(token.user_id):
        # development mode: the app's owner has not added this person in the dashboard
        return api_error(403, NOT_REGISTERED)
    retry_after = _state().rate_limit.admit(token.client_id)
    if retry_after:  # the app (every process with its tokens) asked too much in the window
        return api_error(429, "API rate limit exceeded", **{"Retry-After": str(retry_after)})
    g.token = token
    return None


def _removed_in_development_mode(**_ids):
    return api_error(403, "Forbidden")


for _rule, _methods in REMOVED_IN_DEVELOPMENT_MODE:
    web_api.add_url_rule(
        _rule, endpoint=REMOVED_ENDPOINT + _rule, view_func=_removed_in_development_mode, methods=_methods
    )


def requires_scope(*any_of: str):
    """403 like Spotify when the token was granted none of these scopes."""

    def decorate(view):
        @functools.wraps(view)
        def checked(*args, **kwargs):
            if not g.token.scopes.intersection(any_of):
                raise ApiError(403, "Insufficient client scope")
            return view(*args, **kwargs)

        return checked

    return decorate


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name}") from None
    if not low <= value <= high:
        raise ApiError(400, f"Invalid {name}")
    return value


def _as_of_day() -> date:
    """Emulator extension: ?as_of=YYYY-MM-DD rewinds the listener's history to that day."""
    raw = request.args.get("as_of")
    if not raw:
        return _state().now().date()
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, "Invalid as_of: expected YYYY-MM-DD") from None


def _end_of(day: date) -> datetime:
    return min(_state().now(), datetime.combine(day, day_time.max, tzinfo=UTC))


@web_api.get("/me")
def me():
    return jsonify(objects.user_object(_base(), g.token.user_id))


@web_api.get("/me/top/tracks")
@requires_scope("user-top-read")
def top_tracks():
    time_range = request.args.get("time_range") or "medium_term"
    if time_range not in TIME_RANGES:
        raise ApiError(400, "Invalid time range")
    limit, offset = _int_arg("limit", 20, 1, 50), _int_arg("offset", 0, 0, 10**6)
    if offset > TOP_ITEMS_LAST_OFFSET:
        # what Spotify sends there: no items, limit 0, total 0, no next page
        empty = objects.page(
            _base(), request.path, [], offset, 0, 0, time_range=time_range, as_of=request.args.get("as_of")
        )
        return jsonify(empty | {"previous": empty["href"]})
    ids = served_top_track_ids(crowd.taste_of(g.token.user_id), time_range, _as_of_day())
    items = [objects.track_object(_base(), i) for i in ids[offset : offset + limit]]
    return jsonify(
        objects.page(
            _base(),
            request.path,
            items,
            offset,
            limit,
            len(ids),
            time_range=time_range,
            as_of=request.args.get("as_of"),
        )
    )


@web_api.get("/me/tracks")
@requires_scope("user-library-read")
def saved():
    limit, offset = _int_arg("limit", 20, 1, 50), _int_arg("offset", 0, 0, 10**6)
    library = crowd.library(g.token.user_id, _end_of(_as_of_day()))
    items = [
        {"added_at": objects.timestamp(added), "track": objects.track_object(_base(), i)}
        for i, added in library[offset : offset + limit]
    ]
    return jsonify(
        objects.page(_base(), request.path, items, offset, limit, len(library), as_of=request.args.get("as_of"))
    )


@web_api.get("/me/player/recently-played")
@requires_scope("user-read-recently-played")
def recent():
    return jsonify(_recently_played_page())


@web_api.get("/search")
def search():
    return jsonify(_search_results())


@web_api.get("/tracks/<track_id>")
def track(track_id):
    if not _BASE62_ID.match(track_id):
        raise ApiError(400, "Invalid base62 id")
    if track_id not in get_catalogue().tracks:
        raise ApiError(404, "Resource not found")
    return jsonify(objects.track_object(_base(), track_id))


@web_api.post("/me/playlists")
@requires_scope("playlist-modify-public", "playlist-modify-private")
def create_playlist():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        raise ApiError(400, "Missing required field: name")
    public, collaborative = bool(body.get("public", True)), bool(body.get("collaborative", False))
    if public and collaborative:
        raise ApiError(400, "Collaborative playlists can only be private.")
    playlist = _state().create_playlist(g.token.user_id, body["name"], body.get("description"), public, collaborative)
    return jsonify(objects.playlist_object(_base(), playlist)), 201


@web_api.post("/playlists/<playlist_id>/items")
@requires_scope("playlist-modify-public", "playlist-modify-private")
def add_items(playlist_id):
    playlist = _owned_playlist(playlist_id, "You cannot add tracks to a playlist you don't own.")
    uris, position = _uris_and_position()
    return jsonify({"snapshot_id": _state().add_playlist_items(playlist, uris, position)}), 201


@web_api.put("/playlists/<playlist_id>/items")
@requires_scope("playlist-modify-public", "playlist-modify-private")
def replace_items(playlist_id):
    """Replace every item (``uris`` in the query or the body, at most 100); reordering by
    ``range_start`` is not emulated: the app never reorders."""
    playlist = _owned_playlist(playlist_id, "You cannot change a playlist you don't own.")
    uris, _position = _uris_and_position()
    return jsonify({"snapshot_id": _state().replace_playlist_items(playlist, uris)}), 200


@web_api.get("/playlists/<playlist_id>/items")
def playlist_items(playlist_id):
    playlist = _owned_playlist(playlist_id, "Forbidden")
    limit, offset = _int_arg("limit", 20, 1, 50), _int_arg("offset", 0, 0, 10**6)
    items = [objects.playlist_item(_base(), playlist, uri, at) for uri, at in playlist.items[offset : offset + limit]]
    return jsonify(objects.page(_base(), request.path, items, offset, limit, len(playlist.items)))


@web_api.get("/audio-features")
def audio_features():
    if not _state().faults.audio_features_enabled:
        raise ApiError(403, "Forbidden")
    ids = [i for i in request.args.get("ids", "").split(",") if i]
    if not ids:
        raise ApiError(400, "Missing required parameter: ids")
    if len(ids) > 100:
        raise ApiError(400, "Too many ids requested")
    tracks = get_catalogue().tracks
    return jsonify(
        {"audio_features": [objects.audio_features_object(_base(), i) if i in tracks else None for i in ids]}
    )


def _owned_playlist(playlist_id: str, forbidden: str):
    playlist = _state().playlists.get(playlist_id)
    if playlist is None:
        raise ApiError(404, "Resource not found")
    if playlist.owner_id != g.token.user_id:
        raise ApiError(403, forbidden)
    return playlist


def _uris_and_position() -> tuple:
    body = request.get_json(silent=True)
    position = request.args.get("position")
    if request.args.get("uris"):  # the query string wins over the body, as documented
        uris = request.args["uris"].split(",")
    elif isinstance(body, list):  # spotipy sends a bare JSON array
        uris = body
    elif isinstance(body, dict) and isinstance(body.get("uris"), list):
        uris, position = body["uris"], body.get("position", position)
    else:
        raise ApiError(400, "Missing required field: uris")
    if len(uris) > 100:
        raise ApiError(400, "You can add a maximum of 100 tracks per request.")
    for uri in uris:
        match = _TRACK_URI.match(str(uri))
        if not match or match.group(1) not in get_catalogue().tracks:
            raise ApiError(400, f"Invalid track uri: {uri}")
    try:
        return uris, None if position in (None, "") else int(position)
    except (TypeError, ValueError):
        raise ApiError(400, "Invalid position") from None


def _recently_played_page() -> dict:
    limit = _int_arg("limit", 20, 1, 50)
    after, before = _int_arg("after", -1, 0, 10**15), _int_arg("before", -1, 0, 10**15)
    if after >= 0 and before >= 0:
        raise ApiError(400, "Only one of the cursors 'after' and 'before' can be specified")
    plays = [
        (item, at, int(at.timestamp() * 1000))
        for item, at in recently_played_now(
            g.token.user_id, _state().now(), _state().started_at, _state().play_interval
        )
    ]
    window = [p for p in plays if p[2] > after and (before < 0 or p[2] < before)]
    shown, base = window[:limit], _base()
    query = {"after": after} if after >= 0 else {}
    older = (
        f"{base}{request.path}?" + urlencode(query | {"before": shown[-1][2], "limit": limit})
        if len(window) > limit
        else None
    )
    href_query = query | ({"before": before} if before >= 0 else {}) | {"limit": limit}
    return {
        "href": f"{base}{request.path}?{urlencode(href_query)}",
        "items": [_play_history_item(base, item, at) for item, at, _ in shown],
        "next": older,
        "limit": limit,
        "cursors": {"after": str(shown[0][2]), "before": str(shown[-1][2])} if shown else None,
    }


def _play_history_item(base: str, item: str, at: datetime) -> dict:
    played_at = objects.timestamp(at, True)
    kind, *what = parse_played_item(item)
    if kind == "episode":
        episode = objects.episode_object(base, *what)
        context = {k: episode["show"][k] for k in ("href", "external_urls", "uri")} | {"type": "show"}
        return {"track": episode, "played_at": played_at, "context": context}
    if kind == "local":  # played from the listener's disk: no context Spotify knows
        return {"track": objects.local_track_object(what[0]), "played_at": played_at}
    return {"track": objects.track_object(base, item), "played_at": played_at, "context": _album_context(base, item)}


def _album_context(base: str, track_id: str) -> dict:
    album_id = get_catalogue().tracks[track_id].album_id
    return {
        "type": "album",
        "href": f"{base}/v1/albums/{album_id}",
        "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
        "uri": f"spotify:album:{album_id}",
    }


_QUERY_TOKEN = re.compile(r'(\w+):"([^"]*)"|(\w+):(\S+)|"([^"]*)"|(\S+)')


def parse_search_query(q: str) -> tuple:
    """Free words and field filters of a Spotify search query (year:1990-1999, artist:"x")."""
    words, filters = [], {}
    for field_q, value_q, field_p, value_p, phrase, word in _QUERY_TOKEN.findall(q):
        field, value = (field_q, value_q) if field_q else (field_p, value_p)
        if field.lower() == "year":
            match = re.fullmatch(r"(\d{4})(?:-(\d{4}))?", value)
            low, high = (int(match.group(1)), int(match.group(2) or match.group(1))) if match else (1, 0)
            filters["year"] = (low, high)
        elif field.lower() in ("artist", "track", "album", "isrc"):
            filters[field.lower()] = value
        else:
            words.append(phrase or word or f"{field}:{value}")
    return words, filters


def _search_results() -> dict:
    q, types = request.args.get("q", ""), request.args.get("type", "")
    if not q.strip():
        raise ApiError(400, "No search query")
    if not types:
        raise ApiError(400, "Missing parameter type")
    wanted = types.split(",")
    if any(t not in SEARCH_TYPES for t in wanted):
        raise ApiError(400, "Bad search type field")
    limit, offset = _int_arg("limit", 5, 1, 10), _int_arg("offset", 0, 0, 1000)
    base, answer = _base(), {}
    for kind in wanted:
        # only tracks are catalogued; other types answer an empty page, as for a miss
        hits = search_tracks(*parse_search_query(q)) if kind == "track" else []
        items = [objects.track_object(base, t.id) for t in hits[offset : offset + limit]]
        answer[kind + "s"] = objects.page(base, request.path, items, offset, limit, len(hits), q=q, type=kind)
    return answer
