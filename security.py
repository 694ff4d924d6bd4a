"""Secure defaults: secret key policy, cookie flags, proxy headers, response headers.

"Production" means real Spotify credentials and neither debug nor testing: then start-up
refuses a missing or weak FLASK_SECRET_KEY, cookies are Secure, HSTS is sent, and
Railway's proxy headers (X-Forwarded-Proto/For/Host) are trusted, one hop deep.
"""

from __future__ import annotations

from urllib.parse import urlsplit

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
    return response


def init_app(app) -> None:
    """Call after check_production_settings (create_app runs it before any fallback key exists)."""
    production = is_production(app)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=production)
    if production:
        app.config["PREFERRED_URL_SCHEME"] = "https"
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)
    app.after_request(lambda response: add_security_headers(response, app, production))
