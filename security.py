"""Secure defaults: secret key policy, cookie flags, proxy headers, response headers.

"Production" means real Spotify credentials and neither debug nor testing: then start-up
refuses a missing or weak FLASK_SECRET_KEY, cookies are Secure, HSTS is sent, and
Railway's proxy headers (X-Forwarded-Proto/For/Host) are trusted, one hop deep.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from flask import abort, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

import database
import db_config
import spotify

# Values seen in tutorials and .env examples: a key anyone can read is no key.
KNOWN_WEAK_KEYS = {
    "dev",
    "development",
    "secret",
    "changeme",
    "change-me",
    "your-secret-key",
    "supersecretkey",
    "super-secret-key",
    "replace-me",
    "test",
}
MIN_KEY_LENGTH = 32


class InsecureConfiguration(SystemExit):
    """Raised at start-up; SystemExit so gunicorn and the CLI print one line and stop."""


def is_production(app) -> bool:
    return bool(app.config.get("SPOTIPY_CLIENT_ID")) and not app.debug and not app.testing


def check_production_settings(app, secret_key: str | None) -> None:
    """Refuse to start production on settings that would leak sessions or lose data."""
    if not is_production(app):
        return
    if db_config.uses_embedded_server(database.database_environ(app.config)):
        raise InsecureConfiguration(
            "DATABASE_URL is not set: production needs a persistent PostgreSQL "
            "(an embedded one inside a container is lost on every deploy)"
        )
    key = secret_key or ""
    if not key:
        raise InsecureConfiguration(
            "FLASK_SECRET_KEY is not set: production needs a random key of at least "
            f"{MIN_KEY_LENGTH} characters (python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    if key.lower() in KNOWN_WEAK_KEYS or len(key) < MIN_KEY_LENGTH:
        raise InsecureConfiguration(
            f"FLASK_SECRET_KEY is a default or too short: use a random key of at least {MIN_KEY_LENGTH} characters"
        )


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(app) -> str:
    """Only our own scripts and styles. Forms may also lead to Spotify's login page (the
    /login POST redirects there); images may come from Spotify's cover-art host."""
    if "csp" in app.extensions:
        return app.extensions["csp"]
    settings = spotify.settings_for(app)
    spotify_origins = " ".join(sorted({origin(settings.accounts_url), origin(settings.api_url)}))
    app.extensions["csp"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data: https://i.scdn.co {spotify_origins}; "
        f"form-action 'self' {spotify_origins}; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
    )
    return app.extensions["csp"]


def add_security_headers(response, app, production: bool):
    headers = response.headers
    headers.setdefault("Content-Security-Policy", content_security_policy(app))
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    if production:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    # Pages and API answers carry someone's listening history: no shared or browser cache
    # keeps them. The default only; a view that sets its own Cache-Control keeps it (a page
    # with an ETag sends "private, no-cache"), and static files carry the one send_file set.
    if "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response


# -- links and images that come from data ---------------------------------------------
# A track's external_urls, a migrated spotify_url or an album's images are data: a
# hostile or broken one ("javascript:...", another site) must never become a link.
SPOTIFY_LINK_HOSTS = frozenset({"open.spotify.com"})
SPOTIFY_IMAGE_HOSTS = frozenset({"i.scdn.co"})


def _url_on(url, hosts: frozenset, demo_origin: str | None) -> str | None:
    if not isinstance(url, str) or any(c in url for c in "\\\x00\t\r\n "):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme == "https" and host in hosts and not parts.username and not parts.password:
        return url
    if demo_origin and origin(url) == demo_origin and parts.path.startswith("/"):
        return url  # demo mode: the emulator's own pages and cover art
    return None


def _demo_origin() -> str | None:
    settings = spotify.settings_for(current_app)
    return origin(settings.api_url) if settings.demo else None


def spotify_link(url) -> str | None:
    """The URL when it is an https link to Spotify's web player (or, in demo mode, to
    the emulator), else None: templates render a link from data only through this. In
    demo mode a web-player link goes to the emulator's page of the same object: the
    emulator's ids are unknown to open.spotify.com, and its answers keep Spotify's URLs."""
    demo_origin = _demo_origin()
    checked = _url_on(url, SPOTIFY_LINK_HOSTS, demo_origin)
    if checked is None or demo_origin is None:
        return checked
    parts = urlsplit(checked)
    return demo_origin + "/open" + parts.path if parts.hostname in SPOTIFY_LINK_HOSTS else checked


def spotify_image(url) -> str | None:
    """The URL when it is an image on Spotify's cover-art host (or the emulator's)."""
    return _url_on(url, SPOTIFY_IMAGE_HOSTS, _demo_origin())


# -- request size -------------------------------------------------------------------
def body_limit(config_key: str):
    """Let one view take bodies up to ``app.config[config_key]`` bytes instead of
    MAX_CONTENT_LENGTH (the history upload: ``@body_limit("HISTORY_UPLOAD_MAX_BYTES")``)."""

    def mark(view):
        view.body_limit_key = config_key
        return view

    return mark


def refuse_oversized_body():
    """413 before anything reads the body (CSRF's form parsing included) when its declared
    length is over the limit; a chunked body is cut off by Werkzeug at the same limit."""
    view = current_app.view_functions.get(request.endpoint or "")
    key = getattr(view, "body_limit_key", None)
    limit = current_app.config.get(key) if key else current_app.config.get("MAX_CONTENT_LENGTH")
    request.max_content_length = limit
    if limit is None:
        return
    if (request.content_length or 0) > limit:
        abort(413, too_large(limit))
    if request.content_length is None and not key and request.headers.get("Transfer-Encoding"):
        # A chunked body declares no length, and Werkzeug's form parser would silently stop
        # at the limit. Bodies this small can be buffered: read to the limit, then one byte
        # more, which the limited stream refuses with a 413 when the body goes on.
        request.get_data(cache=True)
        try:
            request.stream.read(1)
        except RequestEntityTooLarge:
            abort(413, too_large(limit))


def too_large(limit: int) -> str:
    return f"This request is larger than the {limit:,} bytes this page accepts."


# A request line in the development server's access log: "GET /callback?code=...&state=... HTTP/1.1".
_REQUEST_LINE_QUERY = re.compile(r'("(?:\x1b\[[\d;]*m)*[A-Z]+ [^\s?"]*)\?[^\s"]*')


class QueryStringsOutOfAccessLog(logging.Filter):
    """`flask run` logs each request line whole, and the login callback's carries the OAuth
    code and state: keep the path, drop the query (as gunicorn.conf.py's %(U)s does)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        stripped = _REQUEST_LINE_QUERY.sub(r"\1", message)
        if stripped != message:
            record.msg, record.args = stripped, ()
        return True


def keep_query_strings_out_of_the_access_log() -> None:
    werkzeug_log = logging.getLogger("werkzeug")
    if not any(isinstance(f, QueryStringsOutOfAccessLog) for f in werkzeug_log.filters):  # once per process
        werkzeug_log.addFilter(QueryStringsOutOfAccessLog())


def init_app(app) -> None:
    """Call after check_production_settings (create_app runs it before any fallback key exists)."""
    production = is_production(app)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=production)
    if production:
        app.config["PREFERRED_URL_SCHEME"] = "https"
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.after_request(lambda response: add_security_headers(response, app, production))
    app.before_request(refuse_oversized_body)  # before CSRFProtect's hook parses any form
    keep_query_strings_out_of_the_access_log()
    app.add_template_filter(spotify_link)
    app.add_template_filter(spotify_image)
