"""A faithful local Spotify: accounts service plus the Web API subset this app uses.

Run it alone:    python -m emulator --port 8765
Or in-process:   server = serve_in_thread()   # tests, the app's demo mode
                 server.faults.rate_limit(retry_after=30, times=1)
                 ...; server.stop()

It behaves like Spotify for a development-mode app in 2026 (README.md, "Spotify as it is in late 2026"):
no popularity or genres, search limit at most 10, audio features 403 unless
switched on, playlists via POST /me/playlists and /playlists/{id}/items with
at most 100 URIs, refresh tokens that die six months after consent, top tracks
empty from offset 50 on, and the endpoints removed in February 2026 (batch
lookups, other users' playlists, artist top tracks) answering 403.

Emulator-only extensions, which real Spotify never sends or accepts:
  * `as_of=YYYY-MM-DD` on GET /v1/me/top/tracks and /v1/me/tracks: the data as
    it was on that day, so an app can backfill dated snapshots;
  * GET/POST/DELETE /_emulator/faults: show, add, reset fault switches
    (POST body: see `configure_from_json`);
  * GET /_emulator/users: the demo listeners; /_emulator/images/...: cover art;
  * GET /_emulator/privacy and /_emulator/data-export/<user>.zip: "Download your data"
    at once, a synthetic export of the listener's own plays (data_export.py);
  * an `X-Emulator-Fault` header on every response a fault switch produced;
  * GET/POST/DELETE /_emulator/rate-limit: the per-app rate limit and the latency of
    every call (rate_limit.py): show it with its counts (calls admitted, refused with
    429, the most in one window), set it, zero the counts;
  * POST /_emulator/crowd {"count": N}: simulated listeners crowd-1 ... crowd-N with a
    token pair each, for benchmarks (crowd.py).

Module map: catalogue (tracks), listeners (demo users, taste
drift), live (plays in real time), crowd (simulated listeners in bulk), rate_limit (the
per-app limit, latency), state (tokens, playlists, clock, faults), objects
(JSON shapes), accounts (/authorize, /api/token), web_api (/v1), data_export
(the synthetic data export).
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from datetime import date, datetime

from flask import Flask, Response, current_app, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from . import objects, rate_limit
from .accounts import accounts
from .catalogue import get_catalogue
from .data_export import data_export
from .listeners import DEMO_USERS, TIME_RANGES, served_top_track_ids
from .open_pages import open_pages
from .state import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, EmulatorState, Faults
from .web_api import api_error, web_api

__all__ = [
    "create_app",
    "serve_in_thread",
    "EmulatorServer",
    "EmulatorState",
    "Faults",
    "top_tracks_as_of",
    "DEMO_USERS",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "TIME_RANGES",
]


class _SpotifyOrderJSON(DefaultJSONProvider):
    sort_keys = False  # keys in the order the objects are built, as Spotify sends them


def create_app(state: EmulatorState | None = None) -> Flask:
    """The emulator as a WSGI app; `state` is shared by all its request threads."""
    app = Flask("spotify_emulator")
    app.json = _SpotifyOrderJSON(app)
    app.config["EMULATOR_STATE"] = state or EmulatorState()
    app.before_request(_apply_latency)
    app.before_request(_apply_faults)
    app.register_error_handler(HTTPException, _http_error)
    app.register_blueprint(accounts)
    app.register_blueprint(web_api)
    app.register_blueprint(data_export)  # /_emulator/privacy: the synthetic data export
    app.register_blueprint(open_pages)  # /open/<kind>/<id>: demo mode's 'Open in Spotify'
    app.add_url_rule("/_emulator/faults", view_func=_faults_view, methods=["GET", "POST", "DELETE"])
    app.add_url_rule("/_emulator/rate-limit", view_func=_rate_limit_view, methods=["GET", "POST", "DELETE"])
    app.add_url_rule("/_emulator/crowd", view_func=_crowd_view, methods=["POST"])
    app.add_url_rule("/_emulator/users", view_func=_users_view)
    app.add_url_rule("/_emulator/images/<kind>/<obj_id>.svg", view_func=_image_view)
    app.add_url_rule("/favicon.ico", view_func=_favicon_view)  # browsers ask for it on the consent page
    app.wsgi_app = _TolerateTrailingSlash(app.wsgi_app)  # type: ignore[method-assign]  # Flask's middleware idiom
    get_catalogue()  # build now, not inside the first request
    return app


class _TolerateTrailingSlash:
    """Spotify answers /v1/me/ like /v1/me, and spotipy sends both spellings."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if len(path) > 1 and path.endswith("/"):
            environ["PATH_INFO"] = path.rstrip("/") or "/"
        return self.wsgi_app(environ, start_response)


def _state() -> EmulatorState:
    return current_app.config["EMULATOR_STATE"]


def _http_error(error: HTTPException):
    if request.path.startswith("/v1/"):  # unknown API routes answer in Spotify's JSON shape
        return api_error(error.code or 500, "Service not found" if error.code == 404 else error.name)
    return error


def _apply_latency():
    """Every call to Spotify's side (not the emulator's own /_emulator pages) takes as long
    as a network round trip would."""
    latency = _state().rate_limit.latency
    if latency > 0 and not request.path.startswith("/_emulator/"):
        time.sleep(latency)


def _apply_faults():
    for rule in _state().faults.take(request.path):
        if rule.kind == "slow":
            time.sleep(rule.delay)
            continue
        if rule.kind == "invalid_grant":
            if request.form.get("grant_type") != "refresh_token":
                continue
            response = jsonify({"error": "invalid_grant", "error_description": "Refresh token revoked"})
            response.status_code = 400
        elif rule.kind == "rate_limit":
            # A short limit says only that; a used-up quota carries the July 2026 reason
            # (and is not worth retrying). Retry-After is there either way.
            error = {"status": 429, "message": "API rate limit exceeded"}
            if rule.reason:
                error = {"status": 429, "message": "Too many requests", "reason": rule.reason}
            response = jsonify({"error": error})
            response.status_code = 429
            response.headers["Retry-After"] = str(rule.retry_after)
        elif rule.kind == "server_error":
            response = api_error(
                rule.status, {502: "Bad gateway.", 503: "Service unavailable"}.get(rule.status, "Server error.")
            )
        else:  # garbage: a 200 whose JSON stops halfway, like a connection cut mid-body
            response = Response('{"href": "https://api.spotify.com/v1/me/tr', 200, mimetype="application/json")
        response.headers["X-Emulator-Fault"] = rule.kind
        return response
    return None


def configure_from_json(state: EmulatorState, body: dict):
    """Apply an admin request, e.g.
    {"rate_limit": {"retry_after": 30, "times": 2, "path_prefix": "/v1/me/top", "reason": "QUOTA_EXCEEDED"},
     "server_error": {"status": 503}, "slow": {"delay": 2}, "garbage": {"times": 1},
     "invalid_grant": {"times": 1}, "audio_features": true,
     "allowed_users": ["ava", "bruno"] | null, "revoke_refresh_tokens": true | "<user id>",
     "expire_refresh_tokens": ..., "expire_access_tokens": ..., "now": "2026-06-01T12:00:00Z" | null}
    Fault values may be one object or a list of them.
    """
    adders: dict[str, Callable[..., None]] = {
        "rate_limit": state.faults.rate_limit,
        "server_error": state.faults.server_error,
        "slow": state.faults.slow,
        "garbage": state.faults.garbage,
        "invalid_grant": state.faults.invalid_grant,
    }
    for key, value in body.items():
        if key in adders:
            for options in value if isinstance(value, list) else [value]:
                adders[key](**(options if isinstance(options, dict) else {}))
        elif key == "audio_features":
            state.faults.set_audio_features(bool(value))
        elif key == "allowed_users":
            if value is not None and not isinstance(value, list):
                raise ValueError("allowed_users: a list of user ids, or null for everyone")
            state.set_allowed_users(value)
        elif key in ("revoke_refresh_tokens", "expire_refresh_tokens", "expire_access_tokens"):
            if value:
                getattr(state, key)(None if value is True else str(value))
        elif key == "now":
            state.set_now(datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None)
        else:
            raise ValueError(f"unknown switch {key!r}")


def _faults_view():
    state = _state()
    if request.method == "DELETE":
        state.faults.reset()
    elif request.method == "POST":
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return jsonify({"error": "expected a JSON object"}), 400
        try:
            configure_from_json(state, body)
        except (TypeError, ValueError) as error:
            return jsonify({"error": str(error)}), 400
    allowed = None if state.allowed_users is None else sorted(state.allowed_users)
    # when the live listeners started and how often they play: what a drill checks captured plays against
    live = {"started_at": state.started_at.isoformat(), "play_interval": state.play_interval}
    return jsonify(state.faults.describe() | {"now": state.now().isoformat(), "allowed_users": allowed} | live)


def _rate_limit_view():
    limit = _state().rate_limit
    if request.method == "DELETE":
        limit.reset_counts()
    elif request.method == "POST":
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not set(body) <= {"requests", "window", "latency_ms"}:
            return jsonify({"error": 'expected {"requests": N or null, "window": seconds, "latency_ms": ms}'}), 400
        try:
            limit.configure(
                body.get("requests"),
                body.get("window", rate_limit.DEFAULT_WINDOW),
                float(body.get("latency_ms", 0)) / 1000,
            )
        except (TypeError, ValueError) as error:
            return jsonify({"error": str(error)}), 400
    return jsonify(limit.describe() | {"started_at": _state().started_at.isoformat()})


def _crowd_view():
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("count"), int):
        return jsonify({"error": 'expected {"count": N}'}), 400
    try:
        listeners = _state().add_crowd(body["count"], body.get("client_id", DEMO_CLIENT_ID))
    except ValueError as error:
        return jsonify({"error": str(error)}), 400
    return jsonify({"listeners": listeners, "play_interval": _state().play_interval})


def _users_view():
    return jsonify(
        {
            "users": [{"id": u.id, "display_name": u.display_name} for u in DEMO_USERS.values()],
            "client_id": DEMO_CLIENT_ID,
        }
    )


def _image_view(kind: str, obj_id: str):
    size = max(16, min(request.args.get("size", 300, type=int), 1024))
    response = Response(objects.cover_svg(kind, obj_id, size), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


def _favicon_view():
    return Response(objects.cover_svg("app", "favicon", 32), mimetype="image/svg+xml")


def top_tracks_as_of(user_id: str, time_range: str, as_of: date, base_url: str) -> list:
    """Full track objects of a demo user's top tracks on a past day (best first).

    The in-process twin of GET /v1/me/top/tracks?time_range=...&as_of=...: for
    backfilling a snapshot a week without an HTTP round trip per week.
    """
    return [objects.track_object(base_url.rstrip("/"), i) for i in served_top_track_ids(user_id, time_range, as_of)]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # tests and demo mode: no access log noise
        pass


class EmulatorServer:
    """A running emulator: its URLs, its switches (`faults`, `state`) and `stop()`."""

    def __init__(self, state: EmulatorState, server, thread: threading.Thread):
        self.state, self._server, self._thread = state, server, thread
        host = server.host if ":" not in server.host else f"[{server.host}]"
        self.base_url = f"http://{host}:{server.port}"
        self.accounts_url = self.base_url  # OAUTH_AUTHORIZE_URL = accounts_url + "/authorize"
        self.api_url = self.base_url  # spotipy prefix = api_url + "/v1/"
        self.authorize_url = self.accounts_url + "/authorize"
        self.token_url = self.accounts_url + "/api/token"
        self.client_id, self.client_secret = DEMO_CLIENT_ID, DEMO_CLIENT_SECRET

    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def rate_limit(self) -> rate_limit.AppRateLimit:
        return self.state.rate_limit

    def top_tracks_as_of(self, user_id: str, time_range: str, as_of: date) -> list:
        return top_tracks_as_of(user_id, time_range, as_of, self.api_url)

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def serve_in_thread(host: str = "127.0.0.1", port: int = 0, state: EmulatorState | None = None) -> EmulatorServer:
    """Start the emulator on a daemon thread (port 0: any free port) and return at once."""
    state = state or EmulatorState()
    server = make_server(host, port, create_app(state), threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="spotify-emulator", daemon=True)
    thread.start()
    return EmulatorServer(state, server, thread)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the local Spotify emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--rate-limit",
        type=int,
        metavar="N",
        help="at most N Web API calls per app in any --rate-window seconds; more answer 429 "
        "with Retry-After (default EMULATOR_RATE_LIMIT, or no limit)",
    )
    parser.add_argument(
        "--rate-window", type=float, default=rate_limit.DEFAULT_WINDOW, metavar="S", help="the window (default 30 s)"
    )
    parser.add_argument("--latency-ms", type=float, metavar="MS", help="every call waits this long (default 0)")
    parser.add_argument("--play-interval", type=float, metavar="S", help="seconds between live plays (default 180)")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    args = parser.parse_args(argv)
    try:
        state = EmulatorState()
    except ValueError as error:  # EMULATOR_RATE_LIMIT / EMULATOR_LATENCY_MS misspelt
        parser.error(str(error))
    limit = state.rate_limit
    try:
        limit.configure(
            args.rate_limit if args.rate_limit is not None else limit.requests,
            args.rate_window if args.rate_limit is not None else limit.window,
            args.latency_ms / 1000 if args.latency_ms is not None else limit.latency,
        )
    except ValueError as error:
        parser.error(str(error))
    if args.play_interval is not None:
        state.play_interval = max(args.play_interval, 0.5)
    handler = _QuietHandler if args.quiet else WSGIRequestHandler
    server = make_server(args.host, args.port, create_app(state), threaded=True, request_handler=handler)
    described = limit.describe()
    limited = f"{described['requests']} calls per {described['window']:g} s" if limit.requests else "no rate limit"
    print(
        f"Spotify emulator on http://{args.host}:{server.port}  "
        f"client_id={DEMO_CLIENT_ID} client_secret={DEMO_CLIENT_SECRET}  "
        f"{limited}, {described['latency_ms']:g} ms latency",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
