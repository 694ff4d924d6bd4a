"""Background work on procrastinate (a PostgreSQL job queue): syncs, recently-played
capture, daily snapshots, housekeeping, and anything another module registers.

- ``engine``: the procrastinate App, its connectors, running workers, how to register
  and defer a task (its docstring);
- ``sync_tasks``: a person's sync (the button, and the daily snapshot spread over the day);
- ``capture``: recently played every CAPTURE_INTERVAL seconds per person, gaps recorded;
- ``housekeeping``: the schedule's fan-out, stalled-job retry, token refresh, old job rows;
- ``retries``: backoff and its bound, Spotify's Retry-After honoured;
- ``rate_budget``: one Spotify rate budget for the deployment, in PostgreSQL.

SQL lives in ``jobs_db`` (queue health, capture state), the package's data module.

How it runs: ``flask --app app worker`` anywhere that reaches the database; ``flask run``
and the Procfile's web process (gunicorn.conf.py) each start one worker of their own
unless JOBS_EMBEDDED_WORKER=0.
"""

from __future__ import annotations

import logging

import click
from flask import current_app
from flask.cli import with_appcontext

import spotify

from . import engine, rate_budget


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 256), default=None, help="Jobs at once (JOBS_CONCURRENCY).")
@with_appcontext
def worker_command(concurrency: int | None) -> None:
    """Run a job worker until Ctrl-C or SIGTERM (as many as you like, on any machine)."""
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    overrides: dict = {"concurrency": concurrency} if concurrency else {}
    click.echo(f"job worker on {engine.database_description()}", err=True)
    engine.run_worker(app, **overrides)


@click.command("jobs-resume")
@with_appcontext
def resume_command() -> None:
    """Resume scheduled work stopped by a used-up Spotify quota (429 QUOTA_EXCEEDED)."""
    from database import transaction
    from jobs import jobs_db

    with transaction() as cur:
        was = jobs_db.budget_state(cur)
        jobs_db.clear_quota_exceeded(cur)
    if was.get("quota_exceeded"):
        click.echo(f"Scheduled work resumes at the next tick (it had stopped: {was.get('quota_message')}).")
    else:
        click.echo("Scheduled work was not stopped; it resumes as it was.")


def health() -> dict:
    """The queue for /healthz; {"error": ...} rather than a failed health check when the
    engine's tables are missing (init-db not run yet)."""
    import psycopg2

    from database import transaction
    from jobs import jobs_db

    live_within = float(current_app.config.get("JOBS_STALLED_AFTER") or 30)
    try:
        with transaction() as cur:
            report = jobs_db.queue_health(cur, live_within)
            report |= jobs_db.failing_jobs(cur)
            report["spotify"] = jobs_db.budget_state(cur)
    except psycopg2.Error as exc:
        return {"error": f"job queue unreadable: {str(exc).strip().splitlines()[0]}"}
    return report


def init_app(app) -> None:
    engine.bind_flask_app(app)
    if app.config.get("LOG_LEVEL") != "DEBUG":
        logging.getLogger("procrastinate").setLevel(logging.WARNING)  # a line per job start and end
    max_rps = app.config.get("SPOTIFY_MAX_RPS")
    spotify.use_budget(rate_budget.SharedBudget(float(max_rps) if max_rps else None))
    app.cli.add_command(worker_command)
    app.cli.add_command(resume_command)
    if engine.started_by_flask_run() and engine.embedded_worker_wanted():
        app.extensions["jobs_worker"] = engine.WorkerThread(app).start()
