"""Application factory: configuration from the environment, then each module's init_app."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask
from flask_wtf.csrf import CSRFProtect

import account
import auth
import catalogue.pages
import dashboard
import database
import errors
import health
import history.cli
import jobs
import listening
import playlists
import search
import security
import spotify
import sync
import tracks
import wording
from history import page as import_history
from page_cache import conditional


def create_app(config: dict | None = None) -> Flask:
    load_dotenv()  # an optional .env beside the app; real environment variables win
    app = Flask(__name__, instance_relative_config=True)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(settings_from_env(os.environ))
    if config:
        app.config.update(config)
    app.testing = bool(app.config.get("TESTING"))
    security.check_production_settings(app, app.config.get("SECRET_KEY"))  # before the development key
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(Path(app.instance_path))
    logging.basicConfig(level=app.config["LOG_LEVEL"], format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    auth.init_app(app)
    security.init_app(app)
    conditional.init_app(app)
    database.init_app(app)
    errors.init_app(app)
    spotify.init_app(app)
    sync.init_app(app)
    history.cli.init_app(app)
    jobs.init_app(app)
    wording.init_app(app)
    CSRFProtect(app)  # every state-changing form carries a token
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(dashboard.bp)
    app.register_blueprint(listening.bp)
    app.register_blueprint(search.bp)
    app.register_blueprint(tracks.bp)
    app.register_blueprint(catalogue.pages.bp)
    app.register_blueprint(playlists.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(import_history.bp)
    return app


def settings_from_env(environ) -> dict:
    """Every setting the app reads, with its default (README.md lists the same)."""
    return {
        "SECRET_KEY": environ.get("FLASK_SECRET_KEY"),
        # old keys during a rotation: they still verify session cookies and open stored tokens
        "SECRET_KEY_FALLBACKS": [
            k.strip() for k in environ.get("FLASK_SECRET_KEY_FALLBACKS", "").split(",") if k.strip()
        ],
        "DATABASE_URL": environ.get("DATABASE_URL"),
        "DB_POOL_MIN": number_setting(environ, "DB_POOL_MIN", 2, int),
        "DB_POOL_MAX": number_setting(environ, "DB_POOL_MAX", 10, int),
        "DB_POOL_TIMEOUT": number_setting(environ, "DB_POOL_TIMEOUT", 5.0, float),
        # Bounds on every statement a request runs (seconds; 0 = none), and the longer ones
        # of syncs, exports and the CLI (database.StatementBounds).
        "DB_STATEMENT_TIMEOUT": number_setting(environ, "DB_STATEMENT_TIMEOUT", 5.0, float),
        "DB_LOCK_TIMEOUT": number_setting(environ, "DB_LOCK_TIMEOUT", 0.5, float),
        "DB_IDLE_IN_TRANSACTION_TIMEOUT": number_setting(environ, "DB_IDLE_IN_TRANSACTION_TIMEOUT", 30.0, float),
        "DB_JOB_STATEMENT_TIMEOUT": number_setting(environ, "DB_JOB_STATEMENT_TIMEOUT", 600.0, float),
        "DB_JOB_LOCK_TIMEOUT": number_setting(environ, "DB_JOB_LOCK_TIMEOUT", 60.0, float),
        "DB_JOB_IDLE_IN_TRANSACTION_TIMEOUT": number_setting(
            environ, "DB_JOB_IDLE_IN_TRANSACTION_TIMEOUT", 600.0, float
        ),
        "DB_HEALTH_TIMEOUT": number_setting(environ, "DB_HEALTH_TIMEOUT", 1.0, float),
        "LOG_LEVEL": environ.get("LOG_LEVEL", "INFO").upper(),
        # A session unused this long ends (Flask re-signs the cookie on every request, so this
        # is idle time, checked on the server from the signature's timestamp). A week: a
        # weekly visitor stays in, a copied cookie dies within days even if nobody logs out.
        "PERMANENT_SESSION_LIFETIME": timedelta(days=number_setting(environ, "SESSION_IDLE_DAYS", 7.0, float)),
        # Request bodies: every form here is a few hundred bytes; larger bodies get a 413 before
        # they are read. One view may take more (security.body_limit), like the history upload.
        "MAX_CONTENT_LENGTH": number_setting(environ, "MAX_CONTENT_LENGTH", 1024 * 1024, int),
        "HISTORY_UPLOAD_MAX_BYTES": number_setting(environ, "HISTORY_UPLOAD_MAX_BYTES", 512 * 1024 * 1024, int),
        "SPOTIPY_CLIENT_ID": environ.get("SPOTIPY_CLIENT_ID"),
        "SPOTIPY_CLIENT_SECRET": environ.get("SPOTIPY_CLIENT_SECRET"),
        "SPOTIPY_REDIRECT_URI": environ.get("SPOTIPY_REDIRECT_URI"),
        "SPOTIFY_EMULATOR_URL": environ.get("SPOTIFY_EMULATOR_URL"),
        "SPOTIFY_ACCOUNTS_URL": environ.get("SPOTIFY_ACCOUNTS_URL"),
        "SPOTIFY_API_URL": environ.get("SPOTIFY_API_URL"),
        "SPOTIFY_REQUEST_TIMEOUT": environ.get("SPOTIFY_REQUEST_TIMEOUT"),
        "DEMO_BACKFILL_WEEKS": environ.get("DEMO_BACKFILL_WEEKS"),
        "HISTORY_UNPACKED_MAX_BYTES": number_setting(environ, "HISTORY_UNPACKED_MAX_BYTES", 2 * 1024**3, int),
        "HISTORY_ENRICH_BATCH": number_setting(environ, "HISTORY_ENRICH_BATCH", 200, int),
        # background work (jobs/)
        "CAPTURE_INTERVAL": number_setting(environ, "CAPTURE_INTERVAL", 1800.0, float),
        "SPOTIFY_MAX_RPS": number_setting(environ, "SPOTIFY_MAX_RPS", 0.0, float) or None,
        "JOBS_CONCURRENCY": number_setting(environ, "JOBS_CONCURRENCY", 8, int),
        "JOBS_MAX_ATTEMPTS": number_setting(environ, "JOBS_MAX_ATTEMPTS", 5, int),
        "JOBS_RETRY_BASE": number_setting(environ, "JOBS_RETRY_BASE", 10.0, float),
        "JOBS_STALLED_AFTER": number_setting(environ, "JOBS_STALLED_AFTER", 30.0, float),
        "JOBS_POLL_INTERVAL": number_setting(environ, "JOBS_POLL_INTERVAL", 2.0, float),
        "JOBS_KEEP_HOURS": number_setting(environ, "JOBS_KEEP_HOURS", 72, int),
    }


def number_setting(environ, name: str, default, kind):
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise SystemExit(f"{name} must be a non-negative {'whole ' if kind is int else ''}number (got {raw!r})")
    return value


def instance_secret_key(instance_dir: Path) -> str:
    """A development key kept in instance/, so sessions survive restarts and are shared
    by every worker. Production sets FLASK_SECRET_KEY."""
    key_file = instance_dir / "secret_key"
    if not key_file.exists():
        # Written whole, then linked into place: link() fails if another worker won the
        # race, and nobody can ever read a half-written key.
        draft = instance_dir / f"secret_key.{os.getpid()}"
        draft.write_text(secrets.token_hex(32))
        draft.chmod(0o600)
        try:
            os.link(draft, key_file)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return key_file.read_text().strip()
