"""Playlists from the past: time machine, forgotten gems, currently obsessed, mood.

Each builder previews its tracks on GET and creates the playlist on POST: on Spotify first
(create, then items in chunks of at most 100), then recorded in ``playlists`` and
``playlist_tracks`` in one transaction, with any tracks found by Spotify search upserted
into the catalogue first.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import date, timedelta

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for

import playlists_db
import plays_insights_db
import spotify
import tracks_db
from auth import login_required, require_user_id
from database import transaction
from wording import counted

bp = Blueprint("playlists", __name__)

FIRST_YEAR = 1900
OWN_TRACKS_LIMIT = 150  # more than 100, so adding items really goes in chunks
TOP_UP_TO = 30  # search fills a short era up to this many tracks
SEARCH_CALLS = 3  # Spotify search answers at most 10 a call
SPOTIFY_PLAYLIST_URL = "https://open.spotify.com/playlist/{}"
KIND_LABELS = {
    "time_machine": "Time machine",
    "forgotten_gems": "Forgotten gems",
    "obsessed": "Currently obsessed",
    "mood": "Mood",
    "legacy": "Imported",
}


class BadInput(ValueError):
    """Input a person can correct: answered 400 with the message on the form."""


@dataclass
class Era:
    first_year: int
    last_year: int
    label: str
    parameters: dict

    @property
    def search_filter(self) -> str:
        if self.first_year == self.last_year:
            return f"year:{self.first_year}"
        return f"year:{self.first_year}-{self.last_year}"


def last_year() -> int:
    return date.today().year + 1


def decades() -> list[int]:
    return list(range(FIRST_YEAR, last_year() // 10 * 10 + 1, 10))


def parse_era(year_raw: str | None, decade_raw: str | None) -> Era | None:
    """The era asked for, None when nothing was asked, BadInput when it cannot be."""
    year_text, decade_text = (year_raw or "").strip(), (decade_raw or "").strip()
    if year_text:
        if not year_text.isascii() or not year_text.isdigit():
            raise BadInput(f"“{year_text[:20]}” is not a year. Type a year such as 1999.")
        year = int(year_text)
        if not FIRST_YEAR <= year <= last_year():
            raise BadInput(f"Pick a year between {FIRST_YEAR} and {last_year()}.")
        return Era(year, year, str(year), {"year": year})
    if decade_text:
        digits = decade_text[:-1] if decade_text.lower().endswith("s") else decade_text
        if not digits.isascii() or not digits.isdigit() or int(digits) not in decades():
            raise BadInput(
                f"There is no decade “{decade_text[:20]}”. Pick one from the list, "
                f"from the {FIRST_YEAR}s to the {decades()[-1]}s."
            )
        start = int(digits)
        return Era(start, start + 9, f"the {start}s", {"decade": start})
    return None


# Meteorological seasons of the northern hemisphere; winter YEAR runs into YEAR + 1.
SEASONS = {"spring": (3, 5), "summer": (6, 8), "autumn": (9, 11), "winter": (12, 14)}
FIRST_PLAYED_YEAR = 2006  # Spotify's first year; nobody played anything on it before


@dataclass
class PlayedPeriod:
    """Local days of what was played: a month, a season or a year."""

    first: date
    last: date
    label: str
    year: int
    part: str  # "", a season, or the month's number "1".."12"

    @property
    def parameters(self) -> dict:
        return {"played": {"from": self.first.isoformat(), "to": self.last.isoformat(), "label": self.label}}


def played_parts() -> list[tuple[str, str]]:
    """The choices of the "what you played" form: the whole year, seasons, months."""
    return [
        ("", "the whole year"),
        *((s, s) for s in SEASONS),
        *((str(m), calendar.month_name[m]) for m in range(1, 13)),
    ]


def month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def parse_played(year_raw: str | None, part_raw: str | None) -> PlayedPeriod | None:
    """The period of plays asked for ("summer 2019", "July 2019", "2019"), None when
    nothing was asked, BadInput when it cannot be."""
    year_text, part = (year_raw or "").strip(), (part_raw or "").strip().lower()
    if not year_text:
        if part:
            raise BadInput("Type the year you played it in, such as 2019.")
        return None
    if not year_text.isascii() or not year_text.isdigit():
        raise BadInput(f"“{year_text[:20]}” is not a year. Type a year such as 2019.")
    year = int(year_text)
    if not FIRST_PLAYED_YEAR <= year <= date.today().year:
        raise BadInput(f"Pick a year you could have played it in, between {FIRST_PLAYED_YEAR} and {date.today().year}.")
    if part in SEASONS:
        first_month, last_month = SEASONS[part]
        first = date(year, first_month, 1)
        last = month_end(year + (last_month - 1) // 12, (last_month - 1) % 12 + 1)
        return PlayedPeriod(first, last, f"{part} {year}", year, part)
    if part.isascii() and part.isdigit() and 1 <= int(part) <= 12:
        month = int(part)
        label = f"{calendar.month_name[month]} {year}"
        return PlayedPeriod(date(year, month, 1), month_end(year, month), label, year, str(month))
    if part not in ("", "year"):
        raise BadInput(f"“{part[:20]}” is not a month or a season: pick one from the list.")
    return PlayedPeriod(date(year, 1, 1), date(year, 12, 31), str(year), year, "")


def select_played(period: PlayedPeriod) -> Selection:
    """What the person played in the period, most played through first (no search top-up:
    the point is what they really played)."""
    user_id = require_user_id()
    with transaction() as cur:
        plays_insights_db.refresh_rollups(cur, user_id)
    with transaction() as cur:
        rows = plays_insights_db.played_tracks(cur, user_id, period.first, period.last, limit=OWN_TRACKS_LIMIT)
    for row in rows:
        row["source"] = "yours"
    return Selection(tracks=rows)


@dataclass
class Selection:
    tracks: list = field(default_factory=list)  # rows shown and added, in order
    from_search: list = field(default_factory=list)  # Spotify track objects to upsert
    note: str | None = None


def spotify_client():
    return spotify.SpotifyClient.for_user(spotify.settings_for(current_app), require_user_id())


def select_era(era: Era, forgiving: bool) -> Selection:
    """The person's own tracks from the era, topped up from Spotify search when short.
    ``forgiving``: a Spotify failure becomes a note (preview) instead of an error page."""
    with transaction() as cur:
        own = playlists_db.era_tracks(cur, require_user_id(), era.first_year, era.last_year, limit=OWN_TRACKS_LIMIT)
    for row in own:
        row["source"] = "yours"
    selection = Selection(tracks=own)
    if len(own) >= TOP_UP_TO:
        return selection
    seen = {row["spotify_id"] for row in own}
    try:
        client = spotify_client()
        for call in range(SEARCH_CALLS):
            found = client.search_tracks(era.search_filter, limit=10, offset=call * 10)
            for track in found:
                if track["id"] in seen or not released_in(track, era):
                    continue
                seen.add(track["id"])
                selection.from_search.append(track)
                selection.tracks.append(search_row(track))
                if len(selection.tracks) >= TOP_UP_TO:
                    return selection
            if len(found) < 10:
                break
    except spotify.SpotifyError as exc:
        if not forgiving:
            raise
        selection.note = f"Spotify search could not add more tracks right now: {exc.message}"
    return selection


def released_in(track: dict, era: Era) -> bool:
    year = str((track.get("album") or {}).get("release_date") or "")[:4]
    return year.isdigit() and era.first_year <= int(year) <= era.last_year


def search_row(track: dict) -> dict:
    album = track.get("album") or {}
    return {
        "spotify_id": track["id"],
        "name": track.get("name") or "",
        "artist_name": ", ".join(a.get("name", "") for a in track.get("artists") or [] if isinstance(a, dict)),
        "album_name": album.get("name"),
        "release_text": album.get("release_date"),
        "source": "search",
    }


def build_on_spotify(kind: str, name: str, description: str, parameters: dict, selection: Selection):
    """Write the playlist to Spotify and record it, then show it. Built before under this
    name: the person first chooses between updating that one and a new one (never a silent
    duplicate); an update of a playlist deleted on Spotify makes a new one and says so."""
    track_ids = [row["spotify_id"] for row in selection.tracks]
    uris = [f"spotify:track:{track_id}" for track_id in track_ids]
    choice = request.form.get("existing")
    with transaction() as cur:
        earlier = playlists_db.built_before(cur, require_user_id(), kind, name)
    if earlier is not None and choice not in ("update", "new"):
        fields = {key: value for key, value in request.form.items() if key not in ("csrf_token", "existing")}
        return render_template("playlists/existing.html", earlier=earlier, count=len(track_ids), fields=fields)
    client = spotify_client()
    if earlier is not None and choice == "update":
        try:
            client.replace_playlist_items(earlier["spotify_id"], uris)
        except spotify.SpotifyNotFound:
            flash(f"“{name}” is no longer on your Spotify, so a new playlist was made.")
        else:
            with transaction() as cur:
                upsert_searched(cur, selection)
                playlists_db.replace_entries(cur, require_user_id(), earlier["id"], parameters, track_ids)
            return shown(earlier["id"], f"Updated “{name}” on Spotify: it now has {counted(len(track_ids), 'track')}.")
    created = client.create_playlist(name, description)
    client.add_to_playlist(created["id"], uris)
    with transaction() as cur:
        upsert_searched(cur, selection)
        playlist_id = playlists_db.record_playlist(
            cur, require_user_id(), kind, name, parameters, created["id"], track_ids
        )
    return shown(playlist_id, f"Created “{name}” on Spotify with {counted(len(track_ids), 'track')}.")


def upsert_searched(cur, selection: Selection) -> None:
    if selection.from_search:
        tracks_db.upsert_catalogue(cur, selection.from_search)


def shown(playlist_id: int, message: str):
    flash(message)
    return redirect(url_for("playlists.show", playlist_id=playlist_id))


@bp.context_processor
def mood_link() -> dict:
    """``mood_available()`` for the builders' links: the mood playlist only for someone
    whose tracks have audio features (asked once, when a page shows the links)."""

    def mood_available() -> bool:
        with transaction() as cur:
            return playlists_db.has_audio_features(cur, require_user_id())

    return {"mood_available": mood_available}


# -- time machine -------------------------------------------------------------------
@bp.route("/time-machine", methods=["GET", "POST"])
@login_required
def time_machine():
    values = request.form if request.method == "POST" else request.args
    context = {
        "decades": decades(),
        "first_year": FIRST_YEAR,
        "last_year": last_year(),
        "year": (values.get("year") or "").strip()[:20],
        "decade": (values.get("decade") or "").strip()[:20],
        "played_year": (values.get("played_year") or "").strip()[:20],
        "played_part": (values.get("played_part") or "").strip()[:20],
        "played_parts": played_parts(),
        "first_played_year": FIRST_PLAYED_YEAR,
    }
    if context["played_year"] or context["played_part"]:
        return played_time_machine(context)
    try:
        era = parse_era(values.get("year"), values.get("decade"))
    except BadInput as exc:
        return render_template("playlists/time_machine.html", error=str(exc), **context), 400
    if era is None:
        if request.method == "POST":
            return render_template("playlists/time_machine.html", error="Pick a year or a decade.", **context), 400
        return render_template("playlists/time_machine.html", **context)
    selection = select_era(era, forgiving=request.method == "GET")
    if request.method == "POST" and selection.tracks:
        name = f"Time machine: {era.label}"
        return build_on_spotify(
            "time_machine", name, f"Your music from {era.label}, by Music Time Machine.", era.parameters, selection
        )
    return render_template("playlists/time_machine.html", era=era, selection=selection, **context)


def played_time_machine(context: dict):
    """The time machine from what was played in a month, a season or a year."""
    try:
        period = parse_played(context["played_year"], context["played_part"])
    except BadInput as exc:
        return render_template("playlists/time_machine.html", played_error=str(exc), **context), 400
    if period is None:  # the caller only comes here when a year or a part was given
        return render_template("playlists/time_machine.html", played_error="Choose a year.", **context), 400
    selection = select_played(period)
    if request.method == "POST" and selection.tracks:
        name = f"Time machine: played in {period.label}"
        return build_on_spotify(
            "time_machine",
            name,
            f"What you played in {period.label}, by Music Time Machine.",
            period.parameters,
            selection,
        )
    return render_template("playlists/time_machine.html", played=period, selection=selection, **context)


# -- forgotten gems, currently obsessed, mood ---------------------------------------------
@bp.route("/playlists/forgotten-gems", methods=["GET", "POST"])
@login_required
def forgotten_gems():
    with transaction() as cur:
        rows = playlists_db.forgotten_gems(cur, require_user_id())
    selection = Selection(tracks=rows)
    if request.method == "POST" and rows:
        name = f"Forgotten gems · {date.today().isoformat()}"
        return build_on_spotify(
            "forgotten_gems",
            name,
            "Tracks you loved and have not played lately, by Music Time Machine.",
            {"recent_days": 28, "top_n": 20},
            selection,
        )
    return render_template("playlists/forgotten_gems.html", selection=selection)


@bp.route("/playlists/obsessed", methods=["GET", "POST"])
@login_required
def obsessed():
    with transaction() as cur:
        risers = playlists_db.obsessed(cur, require_user_id())
    selection = Selection(tracks=risers["rows"])
    if request.method == "POST" and risers["rows"]:
        name = f"Currently obsessed · {risers['latest']:%B %Y}"
        return build_on_spotify(
            "obsessed",
            name,
            "This month's risers, by Music Time Machine.",
            {"latest": risers["latest"].isoformat(), "baseline": risers["baseline"].isoformat()},
            selection,
        )
    return render_template("playlists/obsessed.html", risers=risers, selection=selection)


@bp.route("/playlists/mood", methods=["GET", "POST"])
@login_required
def mood():
    values = request.form if request.method == "POST" else request.args
    chosen = (values.get("mood") or "").strip()
    with transaction() as cur:
        with_features = playlists_db.audio_feature_count(cur, require_user_id())
        if chosen and chosen not in playlists_db.MOODS:
            return render_template(
                "playlists/mood.html",
                moods=playlists_db.MOODS,
                chosen=None,
                with_features=with_features,
                error="Pick one of the moods in the list.",
            ), 400
        rows = playlists_db.mood_tracks(cur, require_user_id(), chosen) if chosen and with_features else []
    selection = Selection(tracks=rows)
    if request.method == "POST" and rows:
        label = playlists_db.MOODS[chosen][0]
        name = f"Mood: {label}"
        return build_on_spotify(
            "mood", name, f"{label}, from your own music, by Music Time Machine.", {"mood": chosen}, selection
        )
    return render_template(
        "playlists/mood.html",
        moods=playlists_db.MOODS,
        chosen=chosen or None,
        with_features=with_features,
        selection=selection,
    )


# -- what the app built -------------------------------------------------------------
@bp.get("/playlists")
@login_required
def index():
    with transaction() as cur:
        playlists = playlists_db.user_playlists(cur, require_user_id())
    return render_template(
        "playlists/index.html", playlists=playlists, labels=KIND_LABELS, spotify_url=SPOTIFY_PLAYLIST_URL
    )


@bp.get("/playlists/<int:playlist_id>")
@login_required
def show(playlist_id: int):
    if playlist_id > 2**63 - 1:
        abort(404)
    with transaction() as cur:
        playlist = playlists_db.user_playlist(cur, require_user_id(), playlist_id)
    if playlist is None:  # unknown or somebody else's: the same answer
        abort(404, "There is no such playlist among yours.")
    return render_template(
        "playlists/show.html", playlist=playlist, labels=KIND_LABELS, spotify_url=SPOTIFY_PLAYLIST_URL
    )
