"""What you really played, from ``plays``: the listening page (minutes, the hour × weekday
heatmap, top tracks / artists / albums by plays or minutes, skip rate, discoveries, the
longest streak, on this day) for any date range, a Year in review page per year, the
dashboard's listening card, and the person's time zone, which the browser reports.

The numbers come from plays_insights_db (SQL aggregates); this module picks the period
and labels them for Chart.js (static/charts.js draws them). Every chart also carries its
numbers as a table (``table``: columns and rows), shown under it for screen readers, for
print and for anyone who prefers numbers.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for

import dashboard
import plays_insights_db as pdb
from auth import checks_own_session, login_required, require_user_id
from database import transaction
from page_cache import conditional
from page_cache import store as page_store
from page_cache import views as page_views
from wording import counted

bp = Blueprint("listening", __name__)

PRESETS = {"12m": "Last 12 months", "year": "This year", "all": "All history"}
DEFAULT_PRESET = "12m"
GRAIN_LABELS = {"day": "Day", "week": "Week", "month": "Month"}
BY_LABELS = {"minutes": "Minutes", "plays": "Plays"}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
EARLIEST, LATEST = date(1990, 1, 1), date(2100, 12, 31)  # Spotify began in 2006; room for odd clocks
HEAT_LEVELS = 6  # shading classes heat-0 … heat-5 in listening.css
TOP_N = 10


class Period:
    """The days asked for: ``first`` to ``last`` inclusive, local dates (None: open)."""

    def __init__(self, first: date | None, last: date | None, label: str, preset: str | None):
        self.first, self.last, self.label, self.preset = first, last, label, preset

    def grain(self, span: dict) -> str:
        """Days for two months or less, weeks up to two years, months beyond."""
        first = self.first or span["first_day"]
        last = self.last or span["last_day"]
        if first is None or last is None:
            return "month"
        days = (last - first).days
        return "day" if days <= 62 else "week" if days <= 731 else "month"

    def query(self) -> dict:
        if self.preset:
            return {"preset": self.preset}
        return {"from": self.first.isoformat() if self.first else "", "to": self.last.isoformat() if self.last else ""}


def parse_day(raw: str, what: str) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        abort(400, f"The {what} date {dashboard.shorten(raw)} is not a date: use YYYY-MM-DD, for example 2024-06-01.")
    if not EARLIEST <= day <= LATEST:
        abort(400, f"Pick {what} dates between {EARLIEST.isoformat()} and {LATEST.isoformat()}.")
    return day


def read_period(args, today: date) -> Period:
    """The period from the query string: ``from``/``to`` dates, or a preset; bad input is
    a 400 with a message."""
    if args.get("from", "").strip() or args.get("to", "").strip():
        first, last = parse_day(args.get("from", ""), "start"), parse_day(args.get("to", ""), "end")
        if first and last and first > last:
            abort(400, f"The period starts ({first.isoformat()}) after it ends ({last.isoformat()}).")
        label = f"{first.isoformat() if first else 'the start'} to {last.isoformat() if last else 'today'}"
        return Period(first, last, label, None)
    preset = args.get("preset") or DEFAULT_PRESET
    if preset not in PRESETS:
        abort(
            400,
            f"Unknown period {dashboard.shorten(preset)}: choose one of {', '.join(PRESETS)} or give from/to dates.",
        )
    if preset == "12m":
        return Period(today.replace(year=today.year - 1) + timedelta(days=1), today, PRESETS[preset], preset)
    if preset == "year":
        return Period(date(today.year, 1, 1), date(today.year, 12, 31), PRESETS[preset], preset)
    return Period(None, None, PRESETS[preset], preset)


def read_choice(args, name: str, choices: dict, default: str) -> str:
    value = args.get(name, default)
    if value not in choices:
        abort(400, f"Unknown {name} {dashboard.shorten(value)}: choose one of {', '.join(choices)}.")
    return value


# -- charts: rows in, Chart.js-ready data (and its table) out --------------------------
def chart(
    name: str, title: str, kind: str, labels=(), datasets=(), *, summary: str = "", empty: str | None = None, **axes
) -> dict:
    """One chart's data in static/charts.js's shape (as dashboard.chart, with its own
    title: these charts are not in the dashboard's registry)."""
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


def with_table(data: dict, columns: list, rows: list) -> dict:
    data["table"] = {"columns": columns, "rows": rows}
    return data


def minutes_chart(rows: list[dict], grain: str) -> dict:
    title = f"Listening minutes per {grain}"
    if not rows:
        return chart("listening-minutes", title, "bar", empty="No plays in this period.")
    label = (lambda d: d.strftime("%Y-%m")) if grain == "month" else (lambda d: d.isoformat())
    total = sum(r["minutes"] for r in rows)
    busiest = max(rows, key=lambda r: r["minutes"])
    data = chart(
        "listening-minutes",
        title,
        "bar",
        [label(r["period"]) for r in rows],
        [{"label": "Minutes", "data": [r["minutes"] for r in rows]}],
        summary=f"{total:,.0f} minutes in all; the most in the {grain} of {label(busiest['period'])} "
        f"({busiest['minutes']:,.0f} minutes, {busiest['plays']:,} plays).",
        x_title=GRAIN_LABELS[grain] + (" (from Monday)" if grain == "week" else ""),
        y_title="Minutes listened",
    )
    return with_table(
        data, [GRAIN_LABELS[grain], "Minutes", "Plays"], [[label(r["period"]), r["minutes"], r["plays"]] for r in rows]
    )


def heatmap(rows: list[dict], by: str) -> dict:
    """The 7 × 24 grid with a shading level per cell (an HTML table: it is its own data
    table, and prints and reads on a phone as a grid)."""
    values = [r[by] for r in rows]
    top = max(values, default=0)
    grid = [[None] * 24 for _ in WEEKDAYS]
    for r in rows:
        level = 0 if not r[by] else 1 + int((HEAT_LEVELS - 2) * r[by] / top)
        grid[r["weekday"] - 1][r["hour"]] = {"plays": r["plays"], "minutes": r["minutes"], "level": level}
    busiest = max(rows, key=lambda r: r[by]) if top else None
    summary = (
        f"Most {BY_LABELS[by].lower()} on {WEEKDAYS[busiest['weekday'] - 1]}s at {busiest['hour']}:00–"
        f"{busiest['hour']}:59 ({busiest['plays']:,} plays, {busiest['minutes']:,.0f} minutes)."
        if busiest
        else ""
    )
    return {
        "weekdays": WEEKDAYS,
        "grid": grid,
        "summary": summary,
        "empty": None if top else "No plays in this period.",
    }


def top_chart(rows: list[dict], kind: str, by: str) -> dict:
    name = f"top-{kind}"
    title = f"Top {kind} by {BY_LABELS[by].lower()}"
    if not rows:
        return chart(name, title, "hbar", empty="No plays in this period.")
    labels = [item_label(r, kind) for r in rows]
    data = chart(
        name,
        title,
        "hbar",
        labels,
        [{"label": BY_LABELS[by], "data": [r[by] for r in rows]}],
        summary=f"#1: {labels[0]} — {rows[0]['minutes']:,.0f} minutes, {rows[0]['plays']:,} plays.",
        x_title=BY_LABELS[by],
    )
    return with_table(
        data,
        ["#", kind[:-1].capitalize(), "Minutes", "Plays", "Skips"],
        [
            [n, label, r["minutes"], r["plays"], r["skips"]]
            for n, (label, r) in enumerate(zip(labels, rows, strict=True), 1)
        ],
    )


def item_label(row: dict, kind: str) -> str:
    artist = row.get("artist_name") or "unknown artist"
    if kind == "tracks":
        return f"{row['track_name']} — {artist}"
    if kind == "albums":
        return f"{row['album_name']} — {artist}"
    return artist


def skip_chart(rows: list[dict], overall: dict) -> dict:
    title = "Skip rate per month"
    if not rows:
        return chart("skip-rate", title, "line", empty="No play in this period says whether it was skipped.")
    data = chart(
        "skip-rate",
        title,
        "line",
        [r["month"].strftime("%Y-%m") for r in rows],
        [{"label": "Skipped", "data": [r["skip_pct"] for r in rows]}],
        summary=f"{overall['skip_pct']:g}% of {overall['known']:,} plays were skipped "
        f"({overall['skipped']:,}); {overall['plays'] - overall['known']:,} captured plays do not say.",
        x_title="Month",
        y_title="Plays skipped (%)",
        y_max=100,
        unit="%",
    )
    return with_table(
        data,
        ["Month", "Skipped (%)", "Skipped", "Plays that say"],
        [[r["month"].strftime("%Y-%m"), r["skip_pct"], r["skipped"], r["known"]] for r in rows],
    )


def discoveries_chart(rows: list[dict]) -> dict:
    title = "Discoveries: first plays ever, per month"
    if not rows:
        return chart("discoveries", title, "bar", empty="No plays in this period.")
    months = [r["month"].strftime("%Y-%m") for r in rows]
    data = chart(
        "discoveries",
        title,
        "bar",
        months,
        [
            {"label": "New tracks", "data": [r["new_tracks"] for r in rows]},
            {"label": "New artists", "data": [r["new_artists"] for r in rows]},
        ],
        summary=f"{counted(sum(r['new_tracks'] for r in rows), 'track')} and "
        f"{counted(sum(r['new_artists'] for r in rows), 'artist')} heard for the first time.",
        x_title="Month",
        y_title="First plays",
    )
    return with_table(
        data,
        ["Month", "New tracks", "New artists"],
        [[m, r["new_tracks"], r["new_artists"]] for m, r in zip(months, rows, strict=True)],
    )


def listening_charts(cur, user_id: int, period: Period, by: str, grain: str | None = None) -> dict:
    """Everything the listening page shows for a period (pure: user, period, by, grain)."""
    span = pdb.play_span(cur, user_id)
    grain = grain or period.grain(span)
    first, last = period.first, period.last
    overall = pdb.skip_rate(cur, user_id, first, last)
    return {
        "span": span,
        "grain": grain,
        "totals": pdb.totals(cur, user_id, first, last),
        "streak": pdb.longest_streak(cur, user_id, first, last),
        "skips": overall,
        "heatmap": heatmap(pdb.hour_weekday_heatmap(cur, user_id, first, last), by),
        "charts": {
            "listening-minutes": minutes_chart(pdb.listening_minutes(cur, user_id, first, last, grain), grain),
            **{
                f"top-{kind}": top_chart(pdb.top_items(cur, user_id, first, last, kind, by, TOP_N), kind, by)
                for kind in ("artists", "tracks", "albums")
            },
            "skip-rate": skip_chart(pdb.skip_rate_by_month(cur, user_id, first, last), overall),
            "discoveries": discoveries_chart(pdb.discoveries(cur, user_id, first, last)),
        },
    }


def year_review(cur, user_id: int, year: int) -> dict:
    """The Year in review's numbers (pure: user, year)."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    months = pdb.listening_minutes(cur, user_id, first, last, "month")
    by_month = {r["period"].month: r for r in months}
    months = [by_month.get(m, {"period": date(year, m, 1), "plays": 0, "minutes": 0.0}) for m in range(1, 13)]
    discovered = pdb.discoveries(cur, user_id, first, last)
    review = {
        "year": year,
        "totals": pdb.totals(cur, user_id, first, last),
        "top": {kind: pdb.top_items(cur, user_id, first, last, kind, "minutes", 5) for kind in TOP_KINDS},
        "months": months,
        "biggest_month": max(months, key=lambda r: r["minutes"]) if any(r["plays"] for r in months) else None,
        "new_tracks": sum(r["new_tracks"] for r in discovered),
        "new_artists": sum(r["new_artists"] for r in discovered),
        "first_plays": pdb.first_plays(cur, user_id, first, last, 5),
        "most_skipped": pdb.most_skipped(cur, user_id, first, last, 5),
        "streak": pdb.longest_streak(cur, user_id, first, last),
        "skips": pdb.skip_rate(cur, user_id, first, last),
    }
    month_chart = chart(
        "year-minutes",
        f"Minutes per month, {year}",
        "bar",
        [r["period"].strftime("%b") for r in months],
        [{"label": "Minutes", "data": [r["minutes"] for r in months]}],
        x_title="Month",
        y_title="Minutes listened",
    )
    review["charts"] = {
        "year-minutes": with_table(
            month_chart,
            ["Month", "Minutes", "Plays"],
            [[r["period"].strftime("%B"), r["minutes"], r["plays"]] for r in months],
        )
    }
    return review


TOP_KINDS = ("tracks", "artists", "albums")


def dashboard_card(cur, user_id: int) -> dict | None:
    """The dashboard's listening card (last 12 months), or None when there are no plays."""
    pdb.refresh_rollups(cur, user_id)
    if not pdb.has_plays(cur, user_id):
        return None
    period = read_period({}, pdb.local_today(cur, user_id))
    span = pdb.play_span(cur, user_id)
    return {
        "totals": pdb.totals(cur, user_id, period.first, period.last),
        "top_artists": pdb.top_items(cur, user_id, period.first, period.last, "artists", "minutes", 5),
        "years": years_of(span),
        "time_zone": pdb.time_zone(cur, user_id),
    }


def years_of(span: dict) -> list[int]:
    if span["first_day"] is None:
        return []
    return list(range(span["last_day"].year, span["first_day"].year - 1, -1))


# -- stored pages (issue 15) -----------------------------------------------------------
# Both pages are pure functions of the person's plays (data_version), their time zone (a
# change bumps it) and the catalogue; the listening page also of their today (presets,
# "on this day"). So each is kept in the store like a dashboard chart, one answer per
# (person, parameters), served in one round trip until the next change.
YEAR_PAGE, LISTENING_PAGE = "year-in-review", "listening-page"


def year_page(cur, user_id: int, year: int) -> dict:
    """What /listening/<year> shows, JSON-ready (the stored form)."""
    return page_store.json_ready(
        {
            "review": year_review(cur, user_id, year),
            "years": years_of(pdb.play_span(cur, user_id)),
            "time_zone": pdb.stored_time_zone(cur, user_id),
        }
    )


def listening_page(cur, user_id: int, args: dict, by: str, grain: str | None) -> dict:
    """What /listening shows for the query string ``args``, JSON-ready (the stored form)."""
    today = pdb.local_today(cur, user_id)
    data = listening_charts(cur, user_id, read_period(args, today), by, grain)
    return page_store.json_ready(
        {
            "data": data,
            "years": years_of(data["span"]),
            "on_this_day": pdb.on_this_day(cur, user_id, today),
            "time_zone": pdb.stored_time_zone(cur, user_id),
        }
    )


def revive_year(page: dict) -> dict:
    """The stored form back to what the template formats (dates it calls strftime on)."""
    review = page["review"]
    if review["biggest_month"]:
        review["biggest_month"]["period"] = date.fromisoformat(review["biggest_month"]["period"])
    for row in review["first_plays"]:
        row["first_at"] = datetime.fromisoformat(row["first_at"])
    return page


def revive_listening(page: dict) -> dict:
    for day in page["on_this_day"]:
        day["day"] = date.fromisoformat(day["day"])
    return page


def period_key(args) -> str:
    """The stored answer's name for the period the query string asks for, checked (a 400
    with a message for a bad one) before anything is read; a preset's days come from the
    person's today, which the stamp counts."""
    if args.get("from", "").strip() or args.get("to", "").strip():
        period = read_period(args, LATEST)  # dates given: today plays no part
        return f"from={period.first or ''}&to={period.last or ''}"
    preset = args.get("preset") or DEFAULT_PRESET
    if preset not in PRESETS:
        read_period(args, LATEST)  # the 400 with its message
    return f"preset={preset}"


def refresh(user_id: int):
    """The rollups brought up to date, inside the transaction that computes (after it
    read the versions: every play the stamp counts is in the rollups it reads)."""
    return lambda cur: pdb.refresh_rollups(cur, user_id)


# -- views ------------------------------------------------------------------------
@bp.get("/listening")
@checks_own_session
def index():
    by = read_choice(request.args, "by", BY_LABELS, "minutes")
    grain = request.args.get("grain") or None
    if grain is not None:
        grain = read_choice(request.args, "grain", GRAIN_LABELS, "month")
    params = f"{period_key(request.args)}&by={by}&grain={grain or ''}"
    found = page_views.signed_in([LISTENING_PAGE], params, local_day=True)
    today = found.state["local_today"]
    period = read_period(request.args, today)
    tag = conditional.page_etag("listening", found.user_id, params, found.stamp)
    if (answered := conditional.answered_without_work(tag)) is not None:
        return answered
    user_id, args = found.user_id, dict(request.args)
    found, answers = page_views.answers_of(
        found,
        lambda cur, _: {LISTENING_PAGE: listening_page(cur, user_id, args, by, grain)},
        prepare=refresh(user_id),
        local_day=True,
    )
    if found.state["local_today"] != today:  # their midnight passed in between
        today, period = found.state["local_today"], read_period(request.args, found.state["local_today"])
    tag = conditional.page_etag("listening", found.user_id, params, found.stamp)
    page = revive_listening(json.loads(answers[LISTENING_PAGE]))
    html = render_template(
        "listening/index.html",
        period=period,
        by=by,
        data=page["data"],
        years=page["years"],
        on_this_day=page["on_this_day"],
        today=today,
        time_zone=page["time_zone"],
        presets=PRESETS,
        by_labels=BY_LABELS,
        grain_labels=GRAIN_LABELS,
    )
    return conditional.revalidate(Response(conditional.keep_rendered(tag, html)), tag) if tag else Response(html)


@bp.get("/listening/<int:year>")
@checks_own_session
def year_in_review(year: int):
    if not EARLIEST.year <= year <= LATEST.year:
        abort(404, f"There is no year in review for {year}.")
    params = f"year={year}"
    found = page_views.signed_in([YEAR_PAGE], params)
    tag = conditional.page_etag("year", found.user_id, params, found.stamp)
    if (answered := conditional.answered_without_work(tag)) is not None:
        return answered
    user_id = found.user_id
    found, answers = page_views.answers_of(
        found, lambda cur, _: {YEAR_PAGE: year_page(cur, user_id, year)}, prepare=refresh(user_id)
    )
    tag = conditional.page_etag("year", found.user_id, params, found.stamp)
    page = revive_year(json.loads(answers[YEAR_PAGE]))
    html = render_template(
        "listening/year.html", review=page["review"], years=page["years"], time_zone=page["time_zone"]
    )
    return conditional.revalidate(Response(conditional.keep_rendered(tag, html)), tag) if tag else Response(html)


@bp.post("/listening/time-zone")
@login_required
def set_time_zone():
    """The browser's IANA time zone (Intl.DateTimeFormat().resolvedOptions().timeZone),
    checked against PostgreSQL's list; from fetch (JSON answer) or the plain form."""
    raw = (request.form.get("time_zone") or "").strip()
    wants_json = request.accept_mimetypes.best == "application/json"
    with transaction() as cur:
        tz = pdb.valid_time_zone(cur, raw[:64]) if raw else None
        if tz is None:
            named = dashboard.shorten(raw) if raw else "An empty name"
            message = f"{named} is not a time zone PostgreSQL knows, such as Europe/Berlin."
            if wants_json:
                return {"error": {"message": message}}, 400
            abort(400, message)
        changed = pdb.set_time_zone(cur, require_user_id(), tz)
    if wants_json:
        return {"time_zone": tz, "changed": changed}
    flash(f"Times are now shown in {tz}." if changed else f"Times were already shown in {tz}.")
    return redirect(same_site_path(request.form.get("next")) or url_for("listening.index"))


def same_site_path(target: str | None) -> str | None:
    """A path on this site to go back to, or None: never another host (//evil, \\evil)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target:
        return target
    return None
