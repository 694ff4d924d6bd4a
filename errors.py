"""What a person sees when something goes wrong: a clear page or JSON, never a traceback."""

from __future__ import annotations

import logging

import psycopg2
from flask import Response, jsonify, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

import db_config
import spotify
from database import DatabaseUnavailable, PoolTimeout

log = logging.getLogger(__name__)


def logged_path() -> str:
    """The path for a log line: decoded, a "%0a" in it would end the line and forge the next."""
    return request.path.encode("unicode_escape").decode("ascii").replace('"', "\\x22")


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.path == "/healthz":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, title: str, message: str, retry_after: int | None = None) -> ResponseReturnValue:
    body: Response | str
    if wants_json():
        body = jsonify(error={"status": status, "title": title, "message": message})
    else:
        body = render_template("errors/error.html", status=status, title=title, message=message)
    return body, status, {"Retry-After": str(retry_after)} if retry_after else {}


def database_503(title: str, message: str, retry_after: int, logged: str):
    log.warning("503 on %s: %s", logged_path(), logged)
    return error_response(503, title, f"{message} Please try again in a moment.", retry_after=retry_after)


def database_unavailable(exc: DatabaseUnavailable):
    if isinstance(exc, PoolTimeout):  # the database is fine; too many people at once
        return database_503("Busy right now", "Too many requests at once.", exc.retry_after, str(exc))
    return database_503("Database unavailable", "The database is not answering right now.", exc.retry_after, str(exc))


def database_too_slow(exc: psycopg2.Error):
    # A statement ran past DB_STATEMENT_TIMEOUT or waited past DB_LOCK_TIMEOUT (a table
    # locked by a migration, a stuck transaction): the same quick answer as a full pool.
    return database_503("Busy right now", "The database is busy.", PoolTimeout.retry_after, db_config.first_line(exc))


def database_connection_lost(exc: psycopg2.Error):
    # The server went away while this request was using its connection (a restart).
    return database_503(
        "Database unavailable",
        "The connection to the database was lost.",
        DatabaseUnavailable.retry_after,
        f"database connection lost: {db_config.first_line(exc)}",
    )


def spotify_error(exc: spotify.SpotifyError):
    if isinstance(exc, spotify.QuotaExceeded):  # spotify.py logged the operator's line already
        return error_response(503, "Spotify quota used up", exc.message, retry_after=exc.retry_after)
    log.warning("%s on %s: %s", type(exc).__name__, logged_path(), exc.message)
    if isinstance(exc, spotify.ReloginNeeded):  # still signed in here: only Spotify needs a new login
        return error_response(401, "Please log in with Spotify again", exc.message)
    if isinstance(exc, spotify.LoginRequired):
        session.pop("user_id", None)
        if not wants_json():
            return redirect(url_for("auth.login_page"))
        return error_response(401, "Please log in again", exc.message)
    if isinstance(exc, spotify.RateLimited):
        return error_response(503, "Spotify asked us to wait", exc.message, retry_after=exc.retry_after)
    if isinstance(exc, spotify.UserNotRegistered):
        return error_response(403, "Not on this app's list of Spotify users", exc.message)
    return error_response(exc.status, "Spotify is not answering", exc.message)


def schema_out_of_date(exc: psycopg2.Error):
    log.error(
        "503 on %s: the schema is missing or out of date (%s): run `flask --app app init-db`",
        logged_path(),
        db_config.first_line(exc),
    )
    return error_response(
        503,
        "Database not ready",
        "The database needs an update. The administrator has been told how in the log.",
        retry_after=30,
    )


def http_error(exc: HTTPException):
    return error_response(exc.code or 500, exc.name, exc.description or "")


def unexpected_error(exc: Exception):
    log.exception("500 on %s", logged_path())
    return error_response(500, "Something went wrong", "An unexpected error happened on our side. It has been logged.")


def init_app(app) -> None:
    app.register_error_handler(DatabaseUnavailable, database_unavailable)
    app.register_error_handler(db_config.DatabaseConfigError, database_unavailable_config)
    app.register_error_handler(psycopg2.errors.UndefinedTable, schema_out_of_date)
    app.register_error_handler(psycopg2.errors.UndefinedColumn, schema_out_of_date)
    app.register_error_handler(psycopg2.errors.UndefinedFunction, schema_out_of_date)
    app.register_error_handler(psycopg2.errors.QueryCanceled, database_too_slow)
    app.register_error_handler(psycopg2.errors.LockNotAvailable, database_too_slow)
    app.register_error_handler(psycopg2.OperationalError, database_connection_lost)
    app.register_error_handler(psycopg2.InterfaceError, database_connection_lost)
    app.register_error_handler(spotify.SpotifyError, spotify_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)


def database_unavailable_config(exc: db_config.DatabaseConfigError):
    log.error("503 on %s: %s", logged_path(), exc)
    return error_response(
        503,
        "Database not configured",
        "The app cannot reach its database. The administrator has been told why in the log.",
        retry_after=30,
    )
