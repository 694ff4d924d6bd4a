"""The person's account: sync status, token expiry, export everything, delete everything."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from flask import Blueprint, Response, flash, redirect, render_template, request, session, stream_with_context, url_for

import account_db
import sync_runs_db
from auth import end_every_session, login_required, require_user_id
from database import long_running, transaction
from jobs import jobs_db

# The person's account; its page keeps the URL /settings, the name people know it by.
bp = Blueprint("account", __name__)

CONFIRM_WORD = "DELETE"


def account_gone():
    """The account was deleted (in another tab) after the request's sign-in check."""
    session.clear()
    return redirect(url_for("auth.home"))


@bp.get("/settings")
@login_required
def index():
    user_id = require_user_id()
    with transaction() as cur:
        account = account_db.account_status(cur, user_id)
        run = sync_runs_db.latest_run(cur, user_id)
        capture = jobs_db.capture_status(cur, user_id)
        gaps = jobs_db.play_gaps(cur, user_id)
    if account is None:
        return account_gone()
    return render_template(
        "account/index.html", account=account, run=run, capture=capture, gaps=gaps, confirm_word=CONFIRM_WORD
    )


def download_name(user_spotify_id: str, extension: str) -> str:
    safe = "".join(c for c in user_spotify_id if c.isalnum() or c in "-_")[:40] or "account"
    return f"music-time-machine-{safe}-{date.today().isoformat()}.{extension}"


# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets
# (track names come from Spotify or a migrated file: anyone can name a track "=HYPERLINK(...)").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(row) -> list:
    """OWASP's CSV-injection defence: a text cell that a spreadsheet would run as a formula
    gets a leading single quote, so it is shown as the text it is."""
    return [f"'{cell}" if isinstance(cell, str) and cell.startswith(FORMULA_TRIGGERS) else cell for cell in row]


def streamed(generator, mimetype: str, filename: str) -> Response:
    response = Response(stream_with_context(generator), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def download_of_account(chunks, mimetype: str, extension: str):
    """The person's data streamed as a file named after their account, or home when the
    account was deleted meanwhile. ``chunks(user_id)`` yields the file's text."""
    user_id = require_user_id()
    with transaction() as cur:
        account = account_db.account_status(cur, user_id)
    if account is None:
        return account_gone()
    return streamed(chunks(user_id), mimetype, download_name(account["spotify_id"], extension))


def json_export(user_id: int):
    # One read transaction for the whole file, so every section is the same moment; a long
    # history to a slow client may keep it open for minutes.
    with transaction() as cur:
        long_running(cur)
        exported_at = datetime.now().astimezone().isoformat()
        yield f'{{"exported_at": "{exported_at}", "user": {account_db.export_user_row(cur, user_id)}'
        for section in account_db.EXPORT_SECTIONS:
            yield f',\n"{section}": ['
            first = True
            for row in account_db.stream_json_rows(cur.connection, user_id, section):
                yield ("\n" if first else ",\n") + row
                first = False
            yield "]"
        yield "}\n"


def csv_export(user_id: int):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(account_db.CSV_COLUMNS)
    with transaction() as cur:
        long_running(cur)
        for count, row in enumerate(account_db.stream_csv_rows(cur.connection, user_id), 1):
            writer.writerow(spreadsheet_safe(row))
            if count % account_db.EXPORT_BATCH == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


@bp.get("/settings/export.json")
@login_required
def export_json():
    return download_of_account(json_export, "application/json", "json")


@bp.get("/settings/export.csv")
@login_required
def export_csv():
    return download_of_account(csv_export, "text/csv; charset=utf-8", "csv")


@bp.post("/settings/logout-everywhere")
@login_required
def logout_everywhere():
    end_every_session()
    flash("You are logged out on every device, this one included.")
    return redirect(url_for("auth.home"))


@bp.post("/settings/delete")
@login_required
def delete_account():
    user_id = require_user_id()
    with transaction() as cur:
        account = account_db.account_status(cur, user_id)
        if request.form.get("confirm", "").strip() != CONFIRM_WORD:
            run = sync_runs_db.latest_run(cur, user_id)
            return render_template(
                "account/index.html",
                account=account,
                run=run,
                capture=jobs_db.capture_status(cur, user_id),
                gaps=jobs_db.play_gaps(cur, user_id),
                confirm_word=CONFIRM_WORD,
                delete_error=f"Type {CONFIRM_WORD} in the box to confirm.",
            ), 400
        account_db.delete_account(cur, user_id)
    session.clear()
    flash("Your account and all its data were deleted. Playlists already on Spotify stay there.")
    return redirect(url_for("auth.home"))
