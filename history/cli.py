"""``flask --app app import-history PATH... --user SPOTIFY_ID``: import files on the server.

Runs inline, in one transaction (no worker needed for the import itself), then queues the
catalogue enrichment of the tracks it named (history/tasks.py): a job worker fetches them,
or housekeeping queues it again later. Exit codes: 0 imported (also when nothing was new),
1 bad input or database trouble (one line, nothing changed), 2 usage.
"""

from __future__ import annotations

import sys

import click
import psycopg2
from flask.cli import with_appcontext

import db_config
from database import DatabaseUnavailable, connection, long_running, transaction

from .archive import BadInput
from .importer import describe, import_files, owner


def valid_spotify_id(ctx, param, value: str) -> str:
    if not value.strip() or any(c.isspace() for c in value):
        raise click.BadParameter("must be a Spotify user id (no spaces)")
    return value


def print_progress(stage: str, done: int, total: int, rows: int) -> None:
    if sys.stderr.isatty():
        share = f"{100 * done / total:.0f}%" if total else ""
        click.echo(f"\r{stage[:60]:<60} {rows:>10,} rows {share:>5}", nl=False, err=True)


@click.command("import-history")
@click.argument("paths", nargs=-1, required=True)
@click.option(
    "--user",
    "spotify_id",
    required=True,
    callback=valid_spotify_id,
    help="Spotify user id the history belongs to; created as a user without a login if unknown.",
)
@with_appcontext
def import_history_command(paths: tuple[str, ...], spotify_id: str) -> None:
    """Import Spotify data-export files (the zip, or its JSON files) into a user's plays."""
    try:
        with connection() as conn, transaction(conn) as cur:
            long_running(cur)  # minutes of work for a heavy listener's export
            user_id = owner(cur, spotify_id)
            summary = import_files(conn, user_id, [(path, None) for path in paths], print_progress)
    except BadInput as exc:
        raise click.ClickException(f"{exc}; nothing was imported") from None
    except (DatabaseUnavailable, db_config.DatabaseConfigError) as exc:
        raise click.ClickException(str(exc)) from None
    except psycopg2.Error as exc:
        raise click.ClickException(f"the database failed: {db_config.first_line(exc)}; nothing was imported") from None
    if sys.stderr.isatty():
        click.echo(err=True)
    click.echo(f"{spotify_id}: {describe(summary)}")
    queue_enrichment(user_id)


def queue_enrichment(user_id: int) -> None:
    """The tracks the export only named are fetched by a job worker; the import stands
    whether or not this works (housekeeping queues the enrichment again later)."""
    from .tasks import queue_enrichment as queue

    try:
        queue(user_id)
    except Exception as exc:  # the import is committed: say what failed, exit 0
        click.echo(
            f"the catalogue enrichment could not be queued ({db_config.first_line(exc)}); housekeeping queues it later",
            err=True,
        )


def init_app(app) -> None:
    app.cli.add_command(import_history_command)
