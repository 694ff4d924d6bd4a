"""The landing page, log in with Spotify, the callback, log out. Tokens stay on the server; the session
cookie carries only the user id and the one-time OAuth state."""

from __future__ import annotations

import dataclasses
import functools
import secrets
from urllib.parse import urlsplit, urlunsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

import spotify
import users_db
from database import single_statement, transaction
from jobs.sync_tasks import request_sync

bp = Blueprint("auth", __name__)

# Spotify accepts plain-HTTP redirect URIs only to a loopback IP literal, and cookies set on
# localhost are not sent to 127.0.0.1: a visit to localhost could never finish a login.
LOOPBACK_NAMES = ("localhost", "localhost.")


def init_app(app) -> None:
    """Call first in create_app: the move must come before any hook that could refuse the
    request (CSRF, body size) or set a cookie on the wrong host."""
    app.before_request(send_localhost_to_loopback_ip)


def send_localhost_to_loopback_ip():
    """http://localhost:PORT/... -> http://127.0.0.1:PORT/... (same path and query), before
    anything sets a cookie; 307 keeps the method and body of a stray POST."""
    parts = urlsplit(request.url)
    # Only with a port, the way a development server is opened: a bare "localhost" is how
    # Werkzeug's test client and in-process tools name the app, and nobody logs in on port 80.
    if (parts.hostname or "").lower() not in LOOPBACK_NAMES or parts.port is None:
        return None
    netloc = f"127.0.0.1:{parts.port}"
    return redirect(urlunsplit(parts._replace(netloc=netloc)), code=307)


def settings() -> spotify.SpotifySettings:
    base = spotify.settings_for(current_app)
    if base.redirect_uri:
        return base
    # Demo mode: come back to wherever this app is being served.
    return dataclasses.replace(base, redirect_uri=url_for("auth.callback", _external=True))


# The cookie is signed, not secret: it carries the user id and the users row's session
# version at login. One primary-key read per request (the first use, cached on g) checks it,
# so logout, "log out everywhere" and deleting the account end copies of the cookie too.
SESSION_VERSION = "session_version"


def current_user_id() -> int | None:
    """The signed-in person's id, or None: nobody signed in, the session was ended
    (logout anywhere) or the account is gone (deleted in another tab)."""
    if "signed_in_user_id" not in g:
        g.signed_in_user_id = _session_user_id()
    return g.signed_in_user_id


def _session_user_id() -> int | None:
    user_id = claimed_user_id()
    if user_id is None:
        return None
    with single_statement() as cur:
        version = users_db.session_version(cur, user_id)
    return user_id if confirm_session(user_id, version) else None


def claimed_user_id() -> int | None:
    """The user id the signed cookie names, NOT yet checked against the users row: for a
    view that reads the row's session version in its own first statement (one round trip
    for the check and the page, see dashboard.py) and then calls ``confirm_session``."""
    return session.get("user_id")


def confirm_session(user_id: int, version: int | None) -> bool:
    """Whether the cookie's session is alive, given the users row's session version (None:
    the account is gone); remembered for the request like ``current_user_id``'s check."""
    # cookies from before version 10 carry no version: they count as 0, the column's default
    alive = version is not None and version == session.get(SESSION_VERSION, 0)
    if not alive:
        session.clear()  # a dead session must not come back on the next request
    g.signed_in_user_id = user_id if alive else None
    return alive


def checks_own_session(view):
    """Like ``login_required`` for a view that checks the session itself, in the statement
    that reads its page (``claimed_user_id`` + ``confirm_session``): no cookie at all is
    sent to log in here; a dead one is the view's to refuse (``refuse_dead_session``)."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if claimed_user_id() is None:
            return refuse_dead_session()
        return view(*args, **kwargs)

    return wrapped


def refuse_dead_session():
    """What ``login_required`` answers to somebody not signed in."""
    if request.path.startswith("/api/"):
        abort(401, "Please log in with Spotify.")
    return redirect(url_for("auth.login_page"))


def start_session(user_id: int) -> None:
    with transaction() as cur:
        version = users_db.session_version(cur, user_id)
    session.clear()
    session["user_id"] = user_id
    session[SESSION_VERSION] = version
    session.permanent = True  # PERMANENT_SESSION_LIFETIME: the idle lifetime (app.py)


def end_every_session() -> None:
    """Log this person out here and on every other device."""
    user_id = current_user_id()
    if user_id is not None:
        with transaction() as cur:
            users_db.end_sessions(cur, user_id)
    session.clear()


def require_user_id() -> int:
    """The logged-in person's id, for views behind @login_required: the data layer never
    gets a None where a user id belongs."""
    user_id = current_user_id()
    if user_id is None:
        abort(401, "Please log in with Spotify.")
    return user_id


def login_required(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if current_user_id() is None:
            return refuse_dead_session()
        return view(*args, **kwargs)

    return wrapped


@bp.get("/login")
def login_page():
    return render_template("auth/login.html", demo=spotify.settings_for(current_app).demo)


@bp.post("/login")
def login():
    state = secrets.token_urlsafe(32)
    verifier, challenge = spotify.pkce_pair()
    session["oauth_state"] = state
    session["oauth_verifier"] = verifier  # signed cookie of this browser only, like the state
    return redirect(spotify.authorize_url(settings(), state, challenge))


def refuse(message: str, status: int = 400):
    return render_template("auth/login_failed.html", message=message), status


@bp.get("/callback")
def callback():
    expected_state = session.pop("oauth_state", None)  # one use only, whatever happens next
    verifier = session.pop("oauth_verifier", "")
    if request.args.get("error") == "access_denied":  # the person pressed Cancel: their choice, not a failure
        return render_template("auth/login_failed.html", cancelled=True)
    if request.args.get("error"):
        return refuse(f"Spotify did not let you in ({request.args['error']}). Nothing was stored.")
    if not expected_state or not verifier or not secrets.compare_digest(expected_state, request.args.get("state", "")):
        return refuse(
            "This login link is not valid or has already been used (state mismatch). "
            "Please start again from the login page."
        )
    code = request.args.get("code", "")
    if not code:
        return refuse("Spotify came back without a login code. Please start again.")
    try:
        user_id, first_visit = complete_login(code, verifier)
    except spotify.AuthorizationFailed as exc:
        return refuse(exc.message)
    except spotify.UserNotRegistered:
        # development mode: only the owner can fix this, so the page says exactly how
        return render_template("auth/not_registered.html"), 403
    start_session(user_id)
    if first_visit:
        request_sync(user_id)
        flash("Welcome! Your first sync is on its way.")
    return redirect(url_for("dashboard.index"))


def complete_login(code: str, code_verifier: str) -> tuple[int, bool]:
    """Exchange the code, read the profile, store user and tokens in one transaction."""
    config = settings()
    tokens = spotify.exchange_code(config, code, code_verifier)
    profile = spotify.SpotifyClient(config, tokens["access_token"]).me()
    account_id = profile.get("account_id") if isinstance(profile.get("account_id"), str) else None
    with transaction() as cur:
        user = users_db.claim_legacy_placeholder(
            cur, profile["id"], profile.get("display_name"), account_id
        ) or users_db.user_for_login(cur, account_id, profile["id"], profile.get("display_name"))
        if user is None:
            raise spotify.AuthorizationFailed(
                "This Spotify account does not match the account this app knows under the same "
                "Spotify user id, so nothing was changed. Please ask the app's administrator."
            )
        spotify.store_tokens(cur, config, user["id"], tokens, consented=True)
    return user["id"], user["last_synced_at"] is None


@bp.post("/logout")
def logout():
    # One session version per account: logging out ends the copies of this cookie and the
    # sessions of other devices alike (the settings page says so on its own button).
    end_every_session()
    return redirect(url_for("auth.home"))


@bp.get("/")
def home():
    """The landing page: its button starts the login."""
    return render_template("auth/home.html", demo=spotify.settings_for(current_app).demo)
