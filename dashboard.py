"""The signed-in dashboard: your sync, your top tracks and the charts of how your taste
moves, plus the charts' JSON under /api/charts.

The numbers come from snapshots.py (taste over time) and insights_db.py (library and
track profile); this module only labels them for Chart.js (static/charts.js draws them).

Fast pages (issue 15): /dashboard renders its frame at once (sync status, top tracks,
a reserved box per chart) and static/charts.js fetches the charts from /api/charts. Every
answer is computed once per change of the person's data and then read from the table
chart_cache (see page_cache/), and carries an ETag from the same stamp, so an unchanged
view is a 304 (page_cache/conditional.py).

Adding a chart (this is all it takes; the cache, the ETag and the page follow):

1. a pure function ``my_chart(cur, user_id, filters, audio) -> dict`` that reads SQL
   through a ``*_db.py`` module and returns ``chart("my-chart", kind, labels, datasets,
   summary=..., empty=...)``; it must depend on nothing but the person's rows, the
   catalogue, ``filters`` and constants (those are what the stamp counts);
2. an entry ``"my-chart": Chart(section, title, my_chart)`` in ``CHARTS`` (the order is
   the page's; a new section also needs its heading in ``SECTIONS``);
3. its rows live in snapshots, saved_tracks or plays (their triggers move the person's
   data version) or in the catalogue (tracks, artists: the catalogue version). Anything
   else it reads must move the version itself: ``users_db.bump_data_version(cur, user_id)``
   in the writer's transaction, and an input no version counts (a time zone, "today")
   goes into ``Filters.cache_inputs``;
4. a test that compares the stored answer with the live SQL (tests/test_fast_pages.py
   does it for every entry of ``CHARTS``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NamedTuple

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)

import insights_db
import library_db
import listening
import snapshots
import spotify
import sync_runs_db
from auth import checks_own_session, login_required, require_user_id
from database import transaction
from history import history_db
from jobs.sync_tasks import request_sync
from page_cache import conditional
from page_cache import store as page_store
from page_cache import views as page_views

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

    @property
    def params(self) -> str:
        """Names the stored answer: one per filter combination and person."""
        return f"time_range={self.time_range}&period={self.period}"

    @property
    def cache_inputs(self) -> str:
        """What the answer depends on that no version counts: the first day of the period
        moves every midnight."""
        return self.since.isoformat() if self.since else "all"


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
def chart(name: str, kind: str, labels=(), datasets=(), *, summary: str = "", empty: str | None = None, **axes) -> dict:
    """One chart's data, titled from ``CHARTS``. ``kind`` is line, bar, hbar or doughnut;
    ``axes`` carries for static/charts.js: x_title, y_title, y_reverse, y_min, y_max, y_zero
    (False: the value axis fits the data instead of starting at 0), stacked, unit and
    value_prefix (around a value in tooltips and the data table: "rank 9", "40%"), and
    category_title (the data table's first column when no axis title names it)."""
    if empty:
        labels, datasets, summary = [], [], ""
    return {
        "name": name,
        "title": CHARTS[name].title,
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
    if not rows:
        return chart("rank-movement", "line", empty=NO_SNAPSHOT)
    if rows[0]["days"] < 2:
        return chart("rank-movement", "line", empty=NEEDS_TWO_SNAPSHOTS)
    datasets = [
        {"label": f"#{r['current_rank']} {r['name']} — {r['artist_name'] or 'unknown artist'}", "data": r["ranks"]}
        for r in rows
    ]
    held = [rank for r in rows for rank in r["ranks"] if rank is not None]
    return chart(
        "rank-movement",
        "line",
        [day(d) for d in rows[0]["dates"]],
        datasets,
        summary=f"Rank of today's top {rows[0]['tracks_shown']} on each of {rows[0]['days']} snapshot "
        f"days, between rank {min(held)} and {max(held)} (1 is the top; a gap means out of the list).",
        x_title="Snapshot day",
        y_title="Rank",
        y_reverse=True,
        # zoomed to the ranks these tracks held: ten lines squeezed into 1–50 were unreadable
        y_min=min(held),
        y_max=max(max(held), min(held) + 1),  # a range of one rank would be no axis at all
        value_prefix="rank ",
    )


def turnover_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = snapshots.turnover(cur, user_id, f.time_range, f.since)
    if not rows:
        return chart("turnover", "line", empty=NEEDS_TWO_SNAPSHOTS)
    last = rows[-1]
    return chart(
        "turnover",
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
    if not rows:
        return chart("discovery", "bar", empty=NEEDS_TWO_SNAPSHOTS)
    last = rows[-1]
    return chart(
        "discovery",
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
    if not rows:
        return chart("artist-diversity", "bar", empty=NO_SNAPSHOT)
    last = rows[-1]
    return chart(
        "artist-diversity",
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
    if not rows:
        return chart("consistent-artists", "hbar", empty=NO_SNAPSHOT)
    top = rows[0]
    return chart(
        "consistent-artists",
        "hbar",
        [r["artist_name"] for r in rows],
        # presence alone put every always-there artist at 100 %: how many of their tracks
        # the list holds separates them
        [{"label": "Tracks in the average snapshot", "data": [r["tracks_per_snapshot"] for r in rows]}],
        summary=f"{top['artist_name']} has {top['tracks_per_snapshot']:g} tracks in the average snapshot "
        f"and is in {top['snapshot_days']} of {top['total_days']}.",
        x_title="Their tracks in the list, per snapshot on average",
        category_title="Artist",
    )


def library_growth_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = insights_db.library_growth(cur, user_id, f.since)
    if not rows:
        return chart("library-growth", "line", empty="No saved tracks in this period.")
    last = rows[-1]
    return chart(
        "library-growth",
        "line",
        [month(r["month"]) for r in rows],
        [{"label": "Saved tracks", "data": [r["library_size"] for r in rows]}],
        summary=f"{last['library_size']} saved tracks at the end of {month(last['month'])} "
        f"(+{last['added']} that month).",
        x_title="Month",
        y_title="Tracks in your library",
        y_zero=False,  # from zero, 730 → 734 tracks was a flat line at the top
    )


def release_years_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = insights_db.release_years(cur, user_id, f.since)
    known = [r for r in rows if r["year"] is not None]
    unknown = next((r["tracks"] for r in rows if r["year"] is None), 0)
    if not known:
        return chart("release-years", "bar", empty="None of your tracks in this period has a release date.")
    return chart(
        "release-years",
        "bar",
        [str(r["year"]) for r in known],
        # stacked, both shown: a series hidden at first was a struck-through legend entry
        [
            {"label": "Full release date", "data": [r["tracks"] - r["year_precision"] for r in known]},
            {"label": "Only the year known", "data": [r["year_precision"] for r in known]},
        ],
        summary=f"From {known[0]['year']} to {known[-1]['year']}"
        + (f"; {unknown} tracks without a usable release date." if unknown else "."),
        x_title="Release year",
        y_title="Tracks",
        stacked=True,
    )


def decades_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = insights_db.release_decades(cur, user_id, f.since)
    if not rows:
        return chart("decades", "bar", empty="None of your tracks in this period has a release date.")
    return chart(
        "decades",
        "bar",
        [f"{r['decade']}s" for r in rows],
        [{"label": "Tracks", "data": [r["tracks"] for r in rows]}],
        x_title="Release decade",
        y_title="Tracks",
    )


def explicit_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    share = insights_db.explicit_share(cur, user_id, f.since)
    if not share["tracks"]:
        return chart("explicit", "doughnut", empty="No tracks in this period.")
    parts = [("Explicit", share["explicit"]), ("Clean", share["clean"]), ("Not known", share["unknown"])]
    parts = [p for p in parts if p[1]] or parts
    summary = (
        f"{share['explicit_pct']:g}% explicit ({share['explicit']} of {share['known']} tracks with a known flag)."
        if share["explicit_pct"] is not None
        else "No track says whether it is explicit."
    )
    return chart(
        "explicit",
        "doughnut",
        [p[0] for p in parts],
        [{"label": "Tracks", "data": [p[1] for p in parts]}],
        summary=summary,
        unit=" tracks",
        category_title="Lyrics",
    )


def durations_chart(cur, user_id: int, f: Filters, _audio) -> dict:
    rows = insights_db.durations(cur, user_id, f.since)
    if not rows:
        return chart("durations", "bar", empty="No track lengths in this period.")
    median = rows[0]["median_ms"] // 1000
    return chart(
        "durations",
        "bar",
        [f"{r['minute']}+ min" if r["minute"] == 10 else f"{r['minute']}–{r['minute'] + 1} min" for r in rows],
        [{"label": "Tracks", "data": [r["tracks"] for r in rows]}],
        summary=f"Median length {median // 60}:{median % 60:02d}.",
        x_title="Length",
        y_title="Tracks",
    )


def no_audio_features(coverage: dict) -> str:
    # "none of your 0 tracks" read as a fault on a first visit: say plainly there are none yet
    tracks = coverage["tracks"]
    which = f"none of your {tracks} tracks in this period has them" if tracks else "no tracks in this period yet"
    return f"Mood charts need Spotify audio features, which Spotify no longer gives new apps: {which}."


def energy_chart(cur, user_id: int, f: Filters, audio: dict | None) -> dict:
    audio = audio or insights_db.audio_feature_coverage(cur, user_id, f.since)
    if not audio["with_features"]:
        return chart("energy", "bar", empty=no_audio_features(audio))
    rows = insights_db.energy_distribution(cur, user_id, f.since)
    return chart(
        "energy",
        "bar",
        [f"{r['low']:.1f}–{r['high']:.1f}" for r in rows],
        [{"label": "Tracks", "data": [r["tracks"] for r in rows]}],
        summary=f"Energy is known for {audio['with_features']} of your {audio['tracks']} tracks.",
        x_title="Energy (0 calm – 1 intense)",
        y_title="Tracks",
    )


def mood_chart(cur, user_id: int, f: Filters, audio: dict | None) -> dict:
    audio = audio or insights_db.audio_feature_coverage(cur, user_id, f.since)
    if not audio["with_features"]:
        return chart("mood", "bar", empty=no_audio_features(audio))
    rows = insights_db.mood_quadrants(cur, user_id, f.since)
    meaning = "; ".join(
        f"{r['quadrant']}: {'high' if r['high_energy'] else 'low'} energy, "
        f"{'positive' if r['high_valence'] else 'negative'}"
        for r in rows
    )
    return chart(
        "mood",
        "bar",
        [r["quadrant"] for r in rows],
        [{"label": "Share of tracks", "data": [r["share_pct"] for r in rows]}],
        summary=f"{meaning} (split at 0.5 energy and 0.5 valence, Spotify's musical positiveness).",
        x_title="Quadrant",
        y_title="Share of tracks with audio features (%)",
        y_max=100,
        unit="%",
    )


Builder = Callable[..., dict]  # (cur, user_id, filters, audio coverage or None) -> chart()


class Chart(NamedTuple):
    section: str
    title: str  # also the frame's, before the data arrives
    build: Builder


SECTIONS = {"taste": "Taste over time", "library": "Your library", "era": "Era", "sound": "Sound"}
# the order is the page's
CHARTS = {
    "rank-movement": Chart("taste", "Your current top 10: rank over time", rank_movement_chart),
    "turnover": Chart("taste", "Turnover: share of the list new since the previous snapshot", turnover_chart),
    "discovery": Chart("taste", "Discovery: tracks in your top list for the first time", discovery_chart),
    "artist-diversity": Chart("taste", "Artist diversity per month", artist_diversity_chart),
    "consistent-artists": Chart("taste", "Most consistent artists", consistent_artists_chart),
    "library-growth": Chart("library", "Library growth", library_growth_chart),
    "release-years": Chart("era", "Release years", release_years_chart),
    "decades": Chart("era", "Decades", decades_chart),
    "explicit": Chart("sound", "Explicit lyrics", explicit_chart),
    "durations": Chart("sound", "Track length", durations_chart),
    "energy": Chart("sound", "Energy", energy_chart),
    "mood": Chart("sound", "Mood: energy × valence", mood_chart),
}
AUDIO_CHARTS = {"energy", "mood"}
WIDE_CHARTS = {"rank-movement"}


def build_charts(cur, user_id: int, filters: Filters, names=CHARTS) -> dict:
    """The live answers, straight from SQL (what the store keeps)."""
    # fetched once for both audio charts (each fetches it itself when called alone)
    audio = insights_db.audio_feature_coverage(cur, user_id, filters.since) if AUDIO_CHARTS & set(names) else None
    return {name: CHARTS[name].build(cur, user_id, filters, audio) for name in names}


def chart_lookup(filters: Filters) -> dict[str, Any]:
    """How the store names the charts' answers for these filters (store.lookup's keywords)."""
    return {"inputs": filters.cache_inputs}


# The frame's own numbers (top tracks, counts), stored like a chart; its stamp counts the
# person's today (the listening card's last 12 months move at their midnight), and its
# lookup also reads the users row and the latest sync: the frame in one statement.
OVERVIEW = "dashboard-overview"
FRAME_LOOKUP: dict = {"local_day": True, "frame": True}


def overview(cur, user_id: int) -> dict:
    return {
        "top": {
            r: [
                {key: t[key] for key in ("rank", "spotify_id", "name", "artist_name", "album_name", "cover_url")}
                for t in snapshots.latest_top_tracks(cur, user_id, r, limit=10)
            ]
            for r in spotify.TIME_RANGES
        },
        "snapshot_days": snapshots.snapshot_day_count(cur, user_id),
        "library": library_db.library_size(cur, user_id),
        "has_export_history": history_db.has_export_plays(cur, user_id),
        "listening": listening.dashboard_card(cur, user_id),
    }


@page_store.warmer
def warm_dashboard(cur, user_id: int) -> None:
    """After a sync: the frame and the charts with the default filters, ready."""
    filters = Filters(DEFAULT_TIME_RANGE, DEFAULT_PERIOD)
    page_store.computed(
        cur,
        user_id,
        list(CHARTS),
        filters.params,
        lambda c, missing: build_charts(c, user_id, filters, missing),
        **chart_lookup(filters),
    )
    page_store.computed(cur, user_id, [OVERVIEW], "", lambda c, _: {OVERVIEW: overview(c, user_id)}, **FRAME_LOOKUP)


def page_tag(filters: Filters, found: page_store.Lookup) -> str | None:
    """The frame's ETag: everything the frame shows (see conditional.page_etag): the stored
    numbers' stamp, the filters, and the user and sync rows whole (a notice such as "log in
    again" lives there)."""
    user, run = found.state["user"], found.state["run"]
    run_state = (run["id"], run["status"], run["stage"], run["finished_at"]) if run else None
    return conditional.page_etag(
        "dashboard", found.user_id, filters.params, found.stamp, sorted(user.items()), run_state
    )


# -- views ------------------------------------------------------------------------
@bp.get("/dashboard")
@checks_own_session
def index():
    filters = read_filters(request.args)
    # one statement: the session check, the versions, the stored frame, the user and sync rows
    found = page_views.signed_in([OVERVIEW], "", **FRAME_LOOKUP)
    tag = page_tag(filters, found)
    if (answered := conditional.answered_without_work(tag)) is not None:
        return answered
    user_id = found.user_id
    found, answers = page_views.answers_of(found, lambda c, _: {OVERVIEW: overview(c, user_id)}, **FRAME_LOOKUP)
    tag = page_tag(filters, found)  # the lookup the answer is true under (it may be newer)
    frame = json.loads(answers[OVERVIEW])
    sections: dict[str, list] = {}
    for name, spec in CHARTS.items():
        sections.setdefault(spec.section, []).append({"name": name, "title": spec.title, "wide": name in WIDE_CHARTS})
    html = render_template(
        "dashboard/index.html",
        user=found.state["user"],
        run=found.state["run"],
        top=frame["top"],
        library=frame["library"],
        snapshot_days=frame["snapshot_days"],
        has_export_history=frame["has_export_history"],
        listening=frame.get("listening"),
        demo=spotify.settings_for(current_app).demo,
        filters=filters,
        sections=sections,
        section_titles=SECTIONS,
        charts_url=url_for("dashboard.all_charts_data", time_range=filters.time_range, period=filters.period),
        time_ranges=spotify.TIME_RANGE_LABELS,
        periods=PERIODS,
    )
    if not tag:
        return Response(html)
    return conditional.revalidate(Response(conditional.keep_rendered(tag, html)), tag)


def charts_response(names: list[str], one: bool = False) -> Response:
    """The charts' JSON, from the store, with its ETag; a 304 when the browser has it.
    One statement when stored (the session check included), a transaction when not."""
    filters = read_filters(request.args)
    found = page_views.signed_in(names, filters.params, **chart_lookup(filters))
    tag = conditional.etag("charts", found.user_id, ",".join(names), filters.params, found.stamp)
    if unchanged := conditional.not_modified(tag):
        return unchanged
    user_id = found.user_id
    found, answers = page_views.answers_of(
        found, lambda c, missing: build_charts(c, user_id, filters, missing), **chart_lookup(filters)
    )
    tag = conditional.etag("charts", found.user_id, ",".join(names), filters.params, found.stamp)
    charts = answers[names[0]] if one else page_store.json_object(answers)
    body = page_store.json_object({"filters": json.dumps(filters.as_dict()), "chart" if one else "charts": charts})
    return conditional.revalidate(Response(body, mimetype="application/json"), tag)


@bp.get("/api/charts")
@checks_own_session
def all_charts_data():
    return charts_response(list(CHARTS))


@bp.get("/api/charts/<name>")
@checks_own_session
def chart_data(name: str):
    if name not in CHARTS:
        abort(404, f"There is no chart called {shorten(name)}: try one of {', '.join(CHARTS)}.")
    return charts_response([name], one=True)


@bp.post("/sync")
@login_required
def start_sync():
    _, queued = request_sync(require_user_id())
    flash("Sync queued." if queued else "A sync is already under way: here is its progress.")
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
