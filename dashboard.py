"""The signed-in dashboard: your sync, your top tracks and the charts of how your taste
moves, plus the charts' JSON under /api/charts.

The numbers come from snapshots.py (taste over time) and insights_db.py (library and
track profile); this module only labels them for Chart.js (static/charts.js draws them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for

import history_db
import insights_db
import library_db
import snapshots
import spotify
import sync
import sync_runs_db
import users_db
from auth import login_required, require_user_id
from database import transaction

bp = Blueprint("dashboard", __name__)

# label, days back from today (None: everything)
PERIODS = {
    "3m": ("Last 3 months", 91),
    "6m": ("Last 6 months", 183),
    "1y": ("Last 12 months", 365),
    "all": ("All history", None),
}
DEFAULT_TIME_RANGE, DEFAULT_PERIOD = "medium_term", "1y"
NEEDS_TWO_SNAPSHOTS = "Needs two snapshots of this time range: your next sync adds the second."
NO_SNAPSHOT = "No snapshot of this time range yet: run a sync."


@dataclass(frozen=True)
class Filters:
    time_range: str
    period: str

    @property
    def since(self) -> date | None:
        days = PERIODS[self.period][1]
        return None if days is None else date.today() - timedelta(days=days)

    def as_dict(self) -> dict:
        return {
            "time_range": self.time_range,
            "period": self.period,
            "since": self.since.isoformat() if self.since else None,
        }


def read_filters(args) -> Filters:
    """The filters from the query string; anything unknown is a 400 with a message."""
    time_range = args.get("time_range", DEFAULT_TIME_RANGE)
    period = args.get("period", DEFAULT_PERIOD)
    if time_range not in spotify.TIME_RANGES:
        abort(400, f"Unknown time range {shorten(time_range)}: choose one of {', '.join(spotify.TIME_RANGES)}.")
    if period not in PERIODS:
        abort(400, f"Unknown period {shorten(period)}: choose one of {', '.join(PERIODS)}.")
    return Filters(time_range, period)


def shorten(value: str, limit: int = 40) -> str:
    """Quote a bad input back to the person without echoing kilobytes of it."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


# -- charts: rows in, Chart.js-ready data out ---------------------------------------
def chart(
    name: str, title: str, kind: str, labels=(), datasets=(), *, summary: str = "", empty: str | None = None, **axes
) -> dict:
    """One chart's data. ``kind`` is line, bar, hbar or doughnut; ``axes`` carries
    x_title, y_title, y_reverse, y_max, unit for static/charts.js."""
    if empty:
        labels, datasets, summary = [], [], ""
    return {
        "name": name,
        "title": title,
        "kind": kind,
        "labels": list(labels),
        "datasets": list(datasets),
        "summary": summary,
        "empty": empty,
        **axes,
    }


def day(value: date) -> str:
    return value.isoformat()


def month(value: date) -> str:
    return value.strftime("%Y-%m")


def rank_movement_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = snapshots.rank_movement(cur, user_id, f.time_range, f.since)
    title = "Your current top 10: rank over time"
    if not rows:
        return chart("rank-movement", title, "line", empty=NO_SNAPSHOT)
    if rows[0]["days"] < 2:
        return chart("rank-movement", title, "line", empty=NEEDS_TWO_SNAPSHOTS)
    datasets = [
        {"label": f"#{r['current_rank']} {r['name']} — {r['artist_name'] or 'unknown artist'}", "data": r["ranks"]}
        for r in rows
    ]
    return chart(
        "rank-movement",
        title,
        "line",
        [day(d) for d in rows[0]["dates"]],
        datasets,
        summary=f"Rank of today's top {rows[0]['tracks_shown']} on each of {rows[0]['days']} snapshot "
        "days (1 is the top; a gap means out of the list).",
        x_title="Snapshot day",
        y_title="Rank",
        y_reverse=True,
    )


def turnover_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = snapshots.turnover(cur, user_id, f.time_range, f.since)
    title = "Turnover: share of the list new since the previous snapshot"
    if not rows:
        return chart("turnover", title, "line", empty=NEEDS_TWO_SNAPSHOTS)
    last = rows[-1]
    return chart(
        "turnover",
        title,
        "line",
        [day(r["snapshot_date"]) for r in rows],
        [{"label": "Turnover", "data": [r["turnover_pct"] for r in rows]}],
        summary=f"Latest: {last['turnover_pct']:g}% ({last['entered']} of {last['tracks']} tracks) "
        f"were not in the {day(last['previous_date'])} snapshot.",
        x_title="Snapshot day",
        y_title="Tracks new to the list (%)",
        y_max=100,
        unit="%",
    )


def discovery_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = snapshots.discovery(cur, user_id, f.time_range, f.since)
    title = "Discovery: tracks in your top list for the first time"
    if not rows:
        return chart("discovery", title, "bar", empty=NEEDS_TWO_SNAPSHOTS)
    last = rows[-1]
    return chart(
        "discovery",
        title,
        "bar",
        [day(r["snapshot_date"]) for r in rows],
        [{"label": "First-time tracks", "data": [r["discovered"] for r in rows]}],
        summary=f"Latest: {last['discovered']} of {last['tracks']} tracks "
        f"({last['discovery_pct']:g}%) had never been in this list before.",
        x_title="Snapshot day",
        y_title="Tracks",
    )


def artist_diversity_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = snapshots.artist_diversity(cur, user_id, f.time_range, f.since)
    title = "Artist diversity per month"
    if not rows:
        return chart("artist-diversity", title, "bar", empty=NO_SNAPSHOT)
    last = rows[-1]
    return chart(
        "artist-diversity",
        title,
        "bar",
        [month(r["month"]) for r in rows],
        [
            {"label": "Distinct artists", "data": [r["artists"] for r in rows]},
            {"label": "Distinct tracks", "data": [r["tracks"] for r in rows]},
        ],
        summary=f"{month(last['month'])}: {last['artists']} artists across {last['tracks']} tracks "
        f"({last['artists_per_100_tracks']:g} per 100 tracks).",
        x_title="Month",
        y_title="Count in that month's snapshots",
    )


def consistent_artists_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = snapshots.consistent_artists(cur, user_id, f.time_range, f.since)
    title = "Most consistent artists"
    if not rows:
        return chart("consistent-artists", title, "hbar", empty=NO_SNAPSHOT)
    top = rows[0]
    return chart(
        "consistent-artists",
        title,
        "hbar",
        [r["artist_name"] for r in rows],
        [{"label": "Snapshot days present", "data": [r["presence_pct"] for r in rows]}],
        summary=f"{top['artist_name']} is in {top['snapshot_days']} of {top['total_days']} snapshots.",
        x_title="Share of snapshot days with at least one of their tracks (%)",
        y_max=100,
        unit="%",
    )


def library_growth_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = insights_db.library_growth(cur, user_id, f.since)
    title = "Library growth"
    if not rows:
        return chart("library-growth", title, "line", empty="No saved tracks in this period.")
    last = rows[-1]
    return chart(
        "library-growth",
        title,
        "line",
        [month(r["month"]) for r in rows],
        [{"label": "Saved tracks", "data": [r["library_size"] for r in rows]}],
        summary=f"{last['library_size']} saved tracks at the end of {month(last['month'])} "
        f"(+{last['added']} that month).",
        x_title="Month",
        y_title="Tracks in your library",
    )


def release_years_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = insights_db.release_years(cur, user_id, f.since)
    known = [r for r in rows if r["year"] is not None]
    unknown = next((r["tracks"] for r in rows if r["year"] is None), 0)
    title = "Release years"
    if not known:
        return chart("release-years", title, "bar", empty="None of your tracks in this period has a release date.")
    return chart(
        "release-years",
        title,
        "bar",
        [str(r["year"]) for r in known],
        [
            {"label": "Tracks", "data": [r["tracks"] for r in known]},
            {
                "label": "of which the date is known only to the year",
                "data": [r["year_precision"] for r in known],
                "hidden": True,
            },
        ],
        summary=f"From {known[0]['year']} to {known[-1]['year']}"
        + (f"; {unknown} tracks without a usable release date." if unknown else "."),
        x_title="Release year",
        y_title="Tracks",
    )


def decades_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = insights_db.release_decades(cur, user_id, f.since)
    if not rows:
        return chart("decades", "Decades", "bar", empty="None of your tracks in this period has a release date.")
    return chart(
        "decades",
        "Decades",
        "bar",
        [f"{r['decade']}s" for r in rows],
        [{"label": "Tracks", "data": [r["tracks"] for r in rows]}],
        x_title="Release decade",
        y_title="Tracks",
    )


def explicit_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    share = insights_db.explicit_share(cur, user_id, f.since)
    title = "Explicit lyrics"
    if not share["tracks"]:
        return chart("explicit", title, "doughnut", empty="No tracks in this period.")
    parts = [("Explicit", share["explicit"]), ("Clean", share["clean"]), ("Not known", share["unknown"])]
    parts = [p for p in parts if p[1]] or parts
    summary = (
        f"{share['explicit_pct']:g}% explicit ({share['explicit']} of {share['known']} tracks with a known flag)."
        if share["explicit_pct"] is not None
        else "No track says whether it is explicit."
    )
    return chart(
        "explicit",
        title,
        "doughnut",
        [p[0] for p in parts],
        [{"label": "Tracks", "data": [p[1] for p in parts]}],
        summary=summary,
        unit=" tracks",
    )


def durations_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = insights_db.durations(cur, user_id, f.since)
    if not rows:
        return chart("durations", "Track length", "bar", empty="No track lengths in this period.")
    median = rows[0]["median_ms"] // 1000
    return chart(
        "durations",
        "Track length",
        "bar",
        [f"{r['minute']}+ min" if r["minute"] == 10 else f"{r['minute']}–{r['minute'] + 1} min" for r in rows],
        [{"label": "Tracks", "data": [r["tracks"] for r in rows]}],
        summary=f"Median length {median // 60}:{median % 60:02d}.",
        x_title="Length",
        y_title="Tracks",
    )


def no_audio_features(coverage: dict) -> str:
    return (
        "Mood charts need Spotify audio features, which Spotify no longer gives new apps: "
        f"none of your {coverage['tracks']} tracks in this period has them."
    )


def energy_chart(cur, user_id: int, f: Filters, audio: dict | None) -> dict:
    title = "Energy"
    audio = audio or insights_db.audio_feature_coverage(cur, user_id, f.since)
    if not audio["with_features"]:
        return chart("energy", title, "bar", empty=no_audio_features(audio))
    rows = insights_db.energy_distribution(cur, user_id, f.since)
    return chart(
        "energy",
        title,
        "bar",
        [f"{r['low']:.1f}–{r['high']:.1f}" for r in rows],
        [{"label": "Tracks", "data": [r["tracks"] for r in rows]}],
        summary=f"Energy is known for {audio['with_features']} of your {audio['tracks']} tracks.",
        x_title="Energy (0 calm – 1 intense)",
        y_title="Tracks",
    )


def mood_chart(cur, user_id: int, f: Filters, audio: dict | None) -> dict:
    title = "Mood: energy × valence"
    audio = audio or insights_db.audio_feature_coverage(cur, user_id, f.since)
    if not audio["with_features"]:
        return chart("mood", title, "bar", empty=no_audio_features(audio))
    rows = insights_db.mood_quadrants(cur, user_id, f.since)
    meaning = "; ".join(
        f"{r['quadrant']}: {'high' if r['high_energy'] else 'low'} energy, "
        f"{'positive' if r['high_valence'] else 'negative'}"
        for r in rows
    )
    return chart(
        "mood",
        title,
        "bar",
        [r["quadrant"] for r in rows],
        [{"label": "Share of tracks", "data": [r["share_pct"] for r in rows]}],
        summary=f"{meaning} (split at 0.5 energy and 0.5 valence, Spotify's musical positiveness).",
        x_title="Quadrant",
        y_title="Share of tracks with audio features (%)",
        y_max=100,
        unit="%",
    )


# name -> (section, builder); the order is the page's
CHARTS = {
    "rank-movement": ("taste", rank_movement_chart),
    "turnover": ("taste", turnover_chart),
    "discovery": ("taste", discovery_chart),
    "artist-diversity": ("taste", artist_diversity_chart),
    "consistent-artists": ("taste", consistent_artists_chart),
    "library-growth": ("library", library_growth_chart),
    "release-years": ("era", release_years_chart),
    "decades": ("era", decades_chart),
    "explicit": ("sound", explicit_chart),
    "durations": ("sound", durations_chart),
    "energy": ("sound", energy_chart),
    "mood": ("sound", mood_chart),
}
AUDIO_CHARTS = {"energy", "mood"}


def build_charts(cur, user_id: int, filters: Filters, names=CHARTS) -> dict:
    # fetched once for both audio charts (each fetches it itself when called alone)
    audio = insights_db.audio_feature_coverage(cur, user_id, filters.since) if AUDIO_CHARTS & set(names) else None
    return {name: CHARTS[name][1](cur, user_id, filters, audio) for name in names}


# -- views ------------------------------------------------------------------------
@bp.get("/dashboard")
@login_required
def index():
    user_id = require_user_id()
    filters = read_filters(request.args)
    with transaction() as cur:
        user = users_db.get_user(cur, user_id)
        if user is None:  # the account was deleted elsewhere
            session.clear()
            return redirect(url_for("home.index"))
        run = sync_runs_db.latest_run(cur, user_id)
        top = {r: snapshots.latest_top_tracks(cur, user_id, r, limit=10) for r in spotify.TIME_RANGES}
        snapshot_days = snapshots.snapshot_day_count(cur, user_id)
        library = library_db.library_size(cur, user_id)
        has_export_history = history_db.has_export_plays(cur, user_id)
        charts = build_charts(cur, user_id, filters)
    sections: dict[str, list[dict]] = {}
    for name, (section, _) in CHARTS.items():
        sections.setdefault(section, []).append(charts[name])
    return render_template(
        "dashboard/index.html",
        user=user,
        run=run,
        top=top,
        library=library,
        snapshot_days=snapshot_days,
        has_export_history=has_export_history,
        demo=spotify.settings_for(current_app).demo,
        filters=filters,
        charts=charts,
        sections=sections,
        time_ranges=spotify.TIME_RANGE_LABELS,
        periods=PERIODS,
    )


@bp.get("/api/charts")
@login_required
def all_charts_data():
    filters = read_filters(request.args)
    with transaction() as cur:
        charts = build_charts(cur, require_user_id(), filters)
    return jsonify(filters=filters.as_dict(), charts=charts)


@bp.get("/api/charts/<name>")
@login_required
def chart_data(name: str):
    if name not in CHARTS:
        abort(404, f"There is no chart called {shorten(name)}: try one of {', '.join(CHARTS)}.")
    filters = read_filters(request.args)
    with transaction() as cur:
        data = build_charts(cur, require_user_id(), filters, [name])[name]
    return jsonify(filters=filters.as_dict(), chart=data)


@bp.post("/sync")
@login_required
def start_sync():
    try:
        sync.sync_in_background(spotify.settings_for(current_app), require_user_id())
        flash("Sync started.")
    except sync.SyncAlreadyRunning as exc:
        flash(str(exc))
    return redirect(url_for("dashboard.index"))


@bp.get("/api/sync/status")
@login_required
def sync_status():
    with transaction() as cur:
        run = sync_runs_db.latest_run(cur, require_user_id())
    if run is None:
        return jsonify(status="never")
    return jsonify(
        status=run["status"],
        stage=run["stage"],
        error=run["error"],
        summary=run["summary"],
        started_at=run["started_at"].isoformat(),
        finished_at=run["finished_at"].isoformat() if run["finished_at"] else None,
    )
