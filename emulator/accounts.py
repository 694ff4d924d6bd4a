"""The emulator's accounts service: /authorize (consent page) and /api/token.

Answers like accounts.spotify.com: the authorization-code grant with a
single-use code bound to its client and redirect URI (and, with PKCE, to the S256
``code_challenge``: redeemed only with its ``code_verifier``), the refresh-token grant,
client authentication by HTTP Basic or form fields, and OAuth errors as
`{"error": "invalid_grant", "error_description": ...}` with status 400.
"""

from __future__ import annotations

import base64
import binascii
import html
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, current_app, jsonify, redirect, request
from werkzeug.wrappers import Response as BaseResponse

from .listeners import DEMO_USERS, DemoUser
from .state import EmulatorState, GrantError

accounts = Blueprint("emulator_accounts", __name__)

SCOPE_TEXT = {
    "user-read-private": "Access your subscription details",
    "user-read-email": "Get your real email address",
    "user-top-read": "Read your top artists and content",
    "user-library-read": "Access your saved content",
    "user-read-recently-played": "Access your recently played items",
    "playlist-modify-public": "Manage your public playlists",
    "playlist-modify-private": "Manage your private playlists",
    "playlist-read-private": "Access your private playlists",
}

_AUTHORIZE_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<title>Spotify (emulator) - authorize</title><style>
body{{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em;line-height:1.5;
background:#fff;color:#191414}}
a{{color:#0b6b31}}fieldset{{border:1px solid #888;border-radius:.4em}}
label{{display:block;padding:.35em 0}}.about{{display:block;margin-left:1.6em;font-size:.9em;color:#555}}
button{{font-size:1em;padding:.5em 1.2em;margin:0 1em .5em 0}}
@media (prefers-color-scheme: dark){{body{{background:#121212;color:#eee}}a{{color:#6fdc95}}.about{{color:#bbb}}}}
</style></head><body><main><h1>Spotify emulator</h1>
<p><strong>{client}</strong> asks to:</p><ul>{scopes}</ul>
<form method="post" action="{action}">{hidden}
<fieldset><legend>Log in as a demo listener</legend>{users}</fieldset><p>
<button type="submit" name="action" value="approve">Agree</button>
<button type="submit" name="action" value="deny">Cancel</button></p></form>
<p><small>Demo data: a local stand-in for Spotify; no real account is used.
<a href="/_emulator/privacy">Request your data</a> (a listener's data export).</small></p></main></body></html>"""


class AuthorizeError(Exception):
    """A request /authorize cannot send back to the client: shown as a page."""


def _state() -> EmulatorState:
    return current_app.config["EMULATOR_STATE"]


def _error_page(message: str) -> Response:
    return Response(f"<!doctype html><title>Error</title><h1>{html.escape(message)}</h1>", 400, mimetype="text/html")


def valid_redirect_uri(uri: str) -> bool:
    # Spotify (2025+): HTTPS, or plain HTTP only to a loopback IP literal
    parts = urlsplit(uri or "")
    return parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "::1"))


AUTHORIZE_PARAMS = (
    "client_id",
    "response_type",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)


def _authorize_params(source) -> dict:
    params = {k: source.get(k, "") for k in AUTHORIZE_PARAMS}
    if params["client_id"] not in _state().clients:
        raise AuthorizeError("INVALID_CLIENT: Invalid client")
    if not valid_redirect_uri(params["redirect_uri"]):
        raise AuthorizeError("INVALID_CLIENT: Invalid redirect URI")
    if params["response_type"] != "code":
        raise AuthorizeError("unsupported_response_type: response_type must be code")
    if params["code_challenge"] and params["code_challenge_method"] != "S256":
        raise AuthorizeError("invalid_request: code_challenge_method must be S256")  # Spotify: S256 only
    return params


def _back_to_client(params: dict, **answer) -> BaseResponse:
    answer |= {"state": params["state"]} if params["state"] else {}
    separator = "&" if urlsplit(params["redirect_uri"]).query else "?"
    return redirect(params["redirect_uri"] + separator + urlencode(answer), code=303)


def about(listener: DemoUser) -> str:
    """One line on a demo listener's taste, from the same numbers that drive their charts."""
    genres = sorted(listener.genres, key=lambda genre: -listener.genres[genre])[:3]
    era = "every era" if listener.era_width >= 20 else f"mostly the {listener.era // 10 * 10}s"
    return f"{', '.join(genres)}; {era}; {listener.library_size:,} saved tracks"


@accounts.get("/authorize")
def authorize_page():
    try:
        params = _authorize_params(request.args)
    except AuthorizeError as error:
        return _error_page(str(error))
    scopes = (
        "".join(
            f"<li>{html.escape(SCOPE_TEXT.get(s, s))} <code>{html.escape(s)}</code></li>"
            for s in params["scope"].split()
        )
        or "<li>See your public profile</li>"
    )
    hidden = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in params.items())
    users = "".join(
        f'<label><input type="radio" name="user_id" value="{u.id}"{" checked" if i == 0 else ""}> '
        f'{html.escape(u.display_name)}<span class="about">{html.escape(about(u))}</span></label>'
        for i, u in enumerate(DEMO_USERS.values())
    )
    return _AUTHORIZE_PAGE.format(
        client=html.escape(params["client_id"]), scopes=scopes, action="/authorize", hidden=hidden, users=users
    )


@accounts.post("/authorize")
def authorize_decision():
    try:
        params = _authorize_params(request.form)
    except AuthorizeError as error:
        return _error_page(str(error))
    if request.form.get("action") != "approve":
        return _back_to_client(params, error="access_denied")
    user_id = request.form.get("user_id", "")
    if user_id not in DEMO_USERS:
        return _error_page("Choose a demo listener")
    code = _state().issue_code(
        params["client_id"], params["redirect_uri"], user_id, params["scope"].split(), params["code_challenge"]
    )
    return _back_to_client(params, code=code)


@accounts.post("/api/token")
def token():
    client_id, secret = _client_credentials()
    if not _state().client_ok(client_id, secret):
        return _oauth_error("invalid_client", "Invalid client")
    form, grant_type = request.form, request.form.get("grant_type")
    try:
        if grant_type == "authorization_code":
            answer = _state().redeem_code(
                form.get("code", ""), client_id, form.get("redirect_uri"), form.get("code_verifier")
            )
        elif grant_type == "refresh_token":
            answer = _state().refresh(form.get("refresh_token", ""), client_id)
        else:
            return _oauth_error("unsupported_grant_type", "grant_type parameter is missing or unsupported")
    except GrantError as error:
        return _oauth_error(error.error, error.description)
    response = jsonify(answer)
    response.headers["Cache-Control"] = "no-store"  # tokens must not sit in caches
    return response


def _client_credentials() -> tuple:
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return client_id, secret
    return request.form.get("client_id"), request.form.get("client_secret")


def _oauth_error(error: str, description: str) -> Response:
    response = jsonify({"error": error, "error_description": description})
    response.status_code = 400
    return response
