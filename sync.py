"""A user's sync: top tracks for three ranges, the library and recently played.

Everything is fetched from Spotify first, with no transaction open (a slow Spotify must
not hold a database connection or locks), then written in ONE transaction, one statement
per thousand rows, never one per row. A failure anywhere leaves the database as it was. Progress and the
outcome go to ``sync_runs`` in small transactions of their own, so another worker can show
them while the sync runs.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta

import click
import psycopg2
from flask import current_app
from flask.cli import with_appcontext
from psycopg2.extras import Json

import library_db
import snapshots
import sync_runs_db
import tracks_db
import users_db
from database import DatabaseUnavailable, analyze_tables, long_running, transaction, write_despite_outage
from page_cache import store as page_store
from spotify import (
    TIME_RANGE_LABELS,
    TIME_RANGES,
    QuotaExceeded,
    SpotifyClient,
    SpotifyError,
    SpotifySettings,
    carried,
    catalogue_track,
    item_kind,
    settings_for,
)

log = logging.getLogger(__name__)


class SyncAlreadyRunning(Exception):
    pass


@dataclass
class Fetched:
    top: dict = field(default_factory=dict)  # time range -> track objects, best first
    saved: list = field(default_factory=list)  # {added_at, track}
    plays: list = field(default_factory=list)  # {played_at, track}
    history: dict = field(default_factory=dict)  # (day, range) -> track objects (demo backfill)


def fetch_everything(client: SpotifyClient, report, backfill_from: date | None, backfill_weeks: int = 0) -> Fetched:
    fetched = Fetched()
    for time_range in TIME_RANGES:
        report(f"Reading your {time_range.replace('_', ' ')} top tracks")
        fetched.top[time_range] = client.top_tracks(time_range)
    fetched.saved = client.saved_tracks(
        on_page=lambda done, total: report(f"Reading your library: {done} of {total or '?'} tracks")
    )
    report("Reading what you played recently")
    fetched.plays = client.recently_played()
    if backfill_from is not None:
        for week in range(1, backfill_weeks + 1):
            report(f"Reading demo history: week {week} of {backfill_weeks}")
            day = backfill_from - timedelta(weeks=week)
            for time_range in TIME_RANGES:
                fetched.history[(day, time_range)] = client.top_tracks(time_range, as_of=day)
    return fetched


def track_id(track) -> str | None:
    """The id of a catalogue track; None for an episode, a local file or a removed track."""
    found = catalogue_track(track)
    return found["id"] if found else None


def skipped_items(fetched: Fetched) -> dict:
    """Library and recently-played items that are not catalogue tracks, by kind: counted in
    the summary, never stored as tracks."""
    kinds = Counter(item_kind(i) for i in [*fetched.saved, *fetched.plays])
    kinds.update(
        "local file" if isinstance(t, dict) and t.get("is_local") else "unavailable"
        for ts in fetched.top.values()
        for t in ts
        if track_id(t) is None
    )
    kinds.pop("track", None)
    return dict(sorted(kinds.items()))


def store_everything(cur, user_id: int, day: date, fetched: Fetched) -> dict:
    """Write one sync in one transaction: the shared catalogue first (in a global lock
    order, see tracks_db), then this user's snapshots, library and plays."""
    every_track = [
        catalogue_track(t)
        for t in [
            *(t for ts in [*fetched.top.values(), *fetched.history.values()] for t in ts),
            *(carried(i) for i in fetched.saved),
            *(carried(i) for i in fetched.plays),
        ]
    ]
    new = tracks_db.upsert_catalogue(cur, [t for t in every_track if t is not None])
    summary = {
        "day": day.isoformat(),
        "top": {},
        "new_tracks": new["tracks"],
        "new_artists": new["artists"],
        # episodes, local files and tracks Spotify withdrew: counted, never stored as tracks
        "skipped": skipped_items(fetched),
    }

    for time_range, tracks in fetched.top.items():
        summary["top"][time_range] = snapshots.store_top_tracks(
            cur, user_id, day, time_range, [track_id(t) for t in tracks]
        )
    for (past_day, time_range), tracks in sorted(fetched.history.items()):
        snapshots.store_top_tracks(cur, user_id, past_day, time_range, [track_id(t) for t in tracks])
    summary["backfilled_snapshots"] = len({d for d, _ in fetched.history})

    saved = [(track_id(carried(i)), i["added_at"]) for i in fetched.saved if track_id(carried(i))]
    newly_saved = sum(
        library_db.store_saved_tracks(cur, user_id, [s[0] for s in chunk], [s[1] for s in chunk])
        for chunk in tracks_db.chunks(saved)
    )
    removed = library_db.forget_unsaved(cur, user_id, [s[0] for s in saved])
    summary["library"] = {"saved": len({s[0] for s in saved}), "newly_saved": newly_saved, "removed": removed}

    plays = [(track_id(carried(i)), i["played_at"]) for i in fetched.plays if track_id(carried(i))]
    summary["new_plays"] = library_db.store_plays(cur, user_id, [p[0] for p in plays], [p[1] for p in plays])
    users_db.mark_synced(cur, user_id)
    return summary


def enrich_with_audio_features(client: SpotifyClient, track_ids: list) -> str:
    """Optional: new Spotify apps get 403 here, which must never fail a sync."""
    with transaction() as cur:
        missing = tracks_db.tracks_without_audio_features(cur, track_ids)
    try:
        features = client.audio_features(missing)
    except SpotifyError as exc:
        log.info("audio features skipped: %s", exc.message)
        return "skipped: " + exc.message
    if client.settings.audio_features_forbidden["value"]:
        return "not available to this Spotify app"
    with transaction() as cur:
        return f"added for {tracks_db.store_audio_features(cur, Json(features))} tracks"


def sync_user(settings: SpotifySettings, user_id: int, day: date | None = None, report=None) -> dict:
    """Fetch and store one user's Spotify data as the snapshot of ``day`` (default today)."""
    day = day or date.today()
    report = report or (lambda stage: None)
    client = SpotifyClient.for_user(settings, user_id)
    with transaction() as cur:
        first_sync = not snapshots.has_snapshots(cur, user_id)
    fetched = fetch_everything(
        client,
        report,
        backfill_from=day if settings.demo and first_sync else None,
        backfill_weeks=settings.demo_backfill_weeks,
    )
    report("Saving")
    with transaction() as cur:
        long_running(cur)  # thousands of rows, and other syncs' row locks to wait for
        summary = store_everything(cur, user_id, day, fetched)
    if first_sync:
        with transaction() as cur:
            long_running(cur)
            analyze_tables(cur)
    report("Adding audio features")
    ids = sorted({tid for ts in fetched.top.values() for t in ts if (tid := track_id(t))})
    summary["audio_features"] = enrich_with_audio_features(client, ids)
    # before the run says "succeeded": the page that reloads then reads, not computes
    report("Preparing your charts")
    page_store.warm(user_id)
    return summary


def run_sync(settings: SpotifySettings, user_id: int, run_id: int, day: date | None = None) -> dict:
    """Run a recorded sync to its end, recording success or a message a person can read."""

    def report(stage: str) -> None:
        with transaction() as cur:
            sync_runs_db.set_stage(cur, run_id, stage)

    outcome: dict
    try:
        summary = sync_user(settings, user_id, day, report)
    except QuotaExceeded as exc:  # the whole app's quota: whoever runs syncs should stop
        outcome = {"error": exc.message, "quota_exceeded": True}
    except Exception as exc:
        outcome = {"error": failure_message(exc, f"sync {run_id}")}
    else:
        outcome = {"summary": summary}
    record_outcome(run_id, outcome)
    return outcome


def failure_message(exc: BaseException, what: str) -> str:
    """What a person reads about a failed sync (logged for the operator as well)."""
    if isinstance(exc, SpotifyError):
        return exc.message
    if isinstance(exc, psycopg2.DataError):
        log.error("%s: Spotify data did not fit the schema", what, exc_info=exc)
        return "Spotify sent data we could not store; nothing was changed. Please try again later."
    if isinstance(exc, (psycopg2.Error, DatabaseUnavailable)):
        log.warning("%s: database error: %s", what, exc)
        return "The database failed during the sync; nothing was changed. Please try again."
    log.error("%s failed unexpectedly", what, exc_info=exc)
    return "The sync failed unexpectedly; nothing was changed. It has been logged."


def record_outcome(run_id: int, outcome: dict, attempts: int = 30, pause: float = 1.0) -> None:
    """Write the run's result, waiting out a database outage (database.write_despite_outage)."""

    def write(cur) -> None:
        if "summary" in outcome:
            sync_runs_db.finish_run(cur, run_id, outcome["summary"])
        else:
            sync_runs_db.fail_run(cur, run_id, outcome["error"])

    write_despite_outage(write, f"sync {run_id}'s outcome", attempts, pause)


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_alive(worker: str | None) -> bool:
    """Whether the process that started a run still exists, when this host can tell."""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another machine's process: only its silence (heartbeat) tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_run(user_id: int) -> int:
    with transaction() as cur:
        run_id = sync_runs_db.start_run(cur, user_id, this_worker(), worker_alive)
    if run_id is None:
        raise SyncAlreadyRunning("A sync is already running for you.")
    return run_id


def sync_now(settings: SpotifySettings, user_id: int, day: date | None = None) -> dict:
    """Start and finish a sync in this thread (the CLI, tests)."""
    return run_sync(settings, user_id, start_run(user_id), day)


@click.command("snapshot")
@with_appcontext
def snapshot_command():
    """Sync every user with a live Spotify token (run daily from cron)."""
    settings = settings_for(current_app)
    with transaction() as cur:
        users = users_db.users_with_tokens(cur)
    failures = 0
    for done, user in enumerate(users, start=1):
        name = user["display_name"] or user["spotify_id"]
        try:
            outcome = sync_now(settings, user["id"])
        except SyncAlreadyRunning:
            click.echo(f"{name}: skipped, a sync is already running")
            continue
        if "error" in outcome:
            failures += 1
            click.echo(f"{name}: FAILED: {outcome['error']}")
        else:
            click.echo(f"{name}: {describe(outcome['summary'])}")
        if outcome.get("quota_exceeded"):  # every further call would be refused the same way
            failures += len(users) - done
            click.echo(f"Stopped: Spotify's quota for this app is used up; {len(users) - done} users not tried.")
            break
    click.echo(f"{len(users) - failures} of {len(users)} users synced.")
    if failures:
        raise SystemExit(1)


def describe(summary: dict) -> str:
    top = ", ".join(
        f"{r.split('_')[0]} {v['ranked']} ({v['entered']} new, {v['moved_up']} up, {v['moved_down']} down)"
        for r, v in summary["top"].items()
    )
    library = summary["library"]
    return (
        f"top tracks {top}; library {library['saved']} (+{library['newly_saved']}, "
        f"-{library['removed']}); {summary['new_tracks']} new tracks; {summary['new_plays']} new plays"
    )


def plain_summary(summary: dict) -> list[str]:
    """A finished sync in plain words for the dashboard, the top lists short → medium →
    long (the stored JSON orders its keys by length, not by meaning)."""

    def tracks(n: int) -> str:
        return f"{n} track" + ("" if n == 1 else "s")

    lines = []
    for time_range, label in TIME_RANGE_LABELS.items():
        top = summary["top"].get(time_range)
        if top is None:
            continue
        moves = [
            f"{top['entered']} new" if top["entered"] else "",
            f"{top['moved_up']} moved up" if top["moved_up"] else "",
        ]
        moves.append(f"{top['moved_down']} moved down" if top["moved_down"] else "")
        changes = ", ".join(m for m in moves if m) or "no change"
        lines.append(
            f"{label}: {tracks(top['ranked'])} in your top list" + (f", {changes}" if top["has_previous"] else "")
        )
    library = summary["library"]
    if library["saved"] and library["newly_saved"] == library["saved"]:
        change = ", all new"
    else:
        parts = [
            f"{library['newly_saved']} new" if library["newly_saved"] else "",
            f"{library['removed']} removed" if library["removed"] else "",
        ]
        change = ": " + (", ".join(p for p in parts if p) or "no change")
    lines.append(f"{tracks(library['saved'])} in your library{change}")
    if summary.get("new_plays"):
        lines.append(f"{summary['new_plays']} new plays")
    return lines


def init_app(app) -> None:
    app.cli.add_command(snapshot_command)
    app.jinja_env.filters["plain_sync_summary"] = plain_summary
