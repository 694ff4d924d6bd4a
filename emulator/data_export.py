"""The emulator's "Download your data": a synthetic Spotify data export per demo listener.

Emulator-only pages (real Spotify mails a link days or weeks later):
  * GET /_emulator/privacy[?user=ID]: "Request your data" links for each listener;
  * GET /_emulator/data-export/<user>.zip[?kind=extended|account][&days=N][&generation=old]:
    the zip, made at once.

The plays are the listener's own (listeners.day_plays), the same ones recently played
shows, so an import and the app's capture of the same days agree. The files follow the
shapes on Spotify's "Understanding my data" page: the extended history
(``Streaming_History_Audio_*.json``, or with ``generation=old`` the older ``endsong_*.json``
with its older private field names) with a few podcast, video, never-played and local-file
rows beside the music, or the account data (``StreamingHistory_music_*.json``, minute
precision, the last year at most). Private fields (username, IP address, user agent) are
filled with made-up values, as a real export has them, so tests can check they are dropped.
"""

from __future__ import annotations

import html
import io
import json
import random
import zipfile
from datetime import UTC, date, datetime, timedelta

from flask import Blueprint, Response, abort, current_app, request

from .catalogue import get_catalogue
from .listeners import DEMO_USERS, day_plays

data_export = Blueprint("emulator_data_export", __name__)

ROWS_PER_FILE = 5000  # real files hold ~15,000 rows (~12 MB); smaller here keeps several files
EXTENDED_DIR = "Spotify Extended Streaming History"
ACCOUNT_DIR = "Spotify Account Data"
PLATFORMS = ("android", "ios", "windows", "osx", "web_player")


def _spotify_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def listening(user_id: str, first_day: date, last_day: date) -> list:
    """(track_id, played_at) of every play from first_day to last_day, oldest first."""
    plays: list = []
    day = first_day
    while day <= last_day:
        plays.extend(day_plays(user_id, day))
        day += timedelta(days=1)
    return plays


def _private(user_id: str, rng: random.Random, old: bool) -> dict:
    address = f"192.0.2.{rng.randrange(1, 255)}"  # TEST-NET-1: never a real address
    if old:
        return {
            "username": f"{user_id}-username",
            "ip_addr_decrypted": address,
            "user_agent_decrypted": "unknown" if rng.random() < 0.5 else "Mozilla/5.0 (Emulator)",
        }
    return {"ip_addr": address}


def music_row(user_id: str, track_id: str, ended: datetime, rng: random.Random, old: bool) -> dict:
    catalogue = get_catalogue()
    track = catalogue.tracks[track_id]
    skipped = rng.random() < 0.12
    ms_played = rng.randrange(3_000, max(track.duration_ms // 2, 3_001)) if skipped else track.duration_ms
    row = {
        "ts": _spotify_time(ended),
        "platform": rng.choice(PLATFORMS),
        "ms_played": ms_played,
        "conn_country": DEMO_COUNTRY.get(user_id, "SE"),
        **_private(user_id, rng, old),
        "master_metadata_track_name": track.name,
        "master_metadata_album_artist_name": catalogue.artists[track.artist_ids[0]].name,
        "master_metadata_album_album_name": catalogue.albums[track.album_id].name,
        "spotify_track_uri": f"spotify:track:{track_id}",
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "reason_start": rng.choice(("trackdone", "trackdone", "clickrow", "fwdbtn")),
        "reason_end": "fwdbtn" if skipped else "trackdone",
        "shuffle": rng.random() < 0.3,
        "skipped": skipped,
        "offline": rng.random() < 0.05,
        "offline_timestamp": int(ended.timestamp()),
        "incognito_mode": False,
    }
    if not old:
        row |= {
            "audiobook_title": None,
            "audiobook_uri": None,
            "audiobook_chapter_uri": None,
            "audiobook_chapter_title": None,
        }
    return row


DEMO_COUNTRY = {"ava": "SE", "bruno": "AR", "chen": "SG", "dana": "NG", "emeka": "GB"}


def _spoken_row(user_id: str, ended: datetime, rng: random.Random, old: bool, video: bool = False) -> dict:
    """A podcast episode (or a video podcast): counted by an importer, never a music play."""
    return {
        "ts": _spotify_time(ended),
        "platform": rng.choice(PLATFORMS),
        "ms_played": rng.randrange(60_000, 1_800_000),
        "conn_country": DEMO_COUNTRY.get(user_id, "SE"),
        **_private(user_id, rng, old),
        "master_metadata_track_name": None,
        "master_metadata_album_artist_name": None,
        "master_metadata_album_album_name": None,
        "spotify_track_uri": None,
        "episode_name": f"Episode {rng.randrange(1, 400)}",
        "episode_show_name": "The Emulator Hour" if not video else "The Emulator Hour (video)",
        "spotify_episode_uri": "spotify:episode:" + "".join(rng.choice("abcdefghijkmnopqrstuvwxyz") for _ in range(22)),
        "reason_start": "clickrow",
        "reason_end": "endplay",
        "shuffle": False,
        "skipped": False,
        "offline": False,
        "offline_timestamp": int(ended.timestamp()),
        "incognito_mode": False,
    }


def _local_file_row(user_id: str, ended: datetime, rng: random.Random, old: bool) -> dict:
    """A local file: names but no URI (people's own rips), played at night, away from sessions."""
    row = music_row(user_id, get_catalogue().track_list[0].id, ended, rng, old)
    return row | {
        "ms_played": 201_000,
        "master_metadata_track_name": "Kitchen Demo (take 2)",
        "master_metadata_album_artist_name": "The Home Tapes",
        "master_metadata_album_album_name": "Cassettes",
        "spotify_track_uri": None,
        "skipped": False,
        "reason_end": "trackdone",
    }


def extended_rows(user_id: str, plays: list, old: bool) -> tuple[list, list]:
    """(audio rows, video rows) for the plays, with the odd non-music row among them."""
    rng = random.Random(f"{user_id}:export")
    audio, video = [], []
    for n, (track_id, played_at) in enumerate(plays):
        audio.append(music_row(user_id, track_id, played_at, rng, old))
        day_start = datetime(played_at.year, played_at.month, played_at.day, tzinfo=UTC)
        if n % 97 == 0:  # a podcast episode at 06:xx, before the day's sessions
            audio.append(_spoken_row(user_id, day_start + timedelta(hours=6, seconds=n % 3600), rng, old))
        if n % 211 == 0:  # a stream that never played
            audio.append(
                music_row(user_id, track_id, day_start + timedelta(hours=5, seconds=n % 3600), rng, old)
                | {"ms_played": 0}
            )
        if n % 307 == 0:
            audio.append(_local_file_row(user_id, day_start + timedelta(hours=3, seconds=n % 3600), rng, old))
        if n % 503 == 0:
            video.append(_spoken_row(user_id, day_start + timedelta(hours=4), rng, old, video=True))
    return sorted(audio, key=lambda r: r["ts"]), video


def basic_rows(plays: list) -> list:
    catalogue = get_catalogue()
    rows = []
    for track_id, played_at in plays:
        track = catalogue.tracks[track_id]
        rows.append(
            {
                "endTime": played_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
                "artistName": catalogue.artists[track.artist_ids[0]].name,
                "trackName": track.name,
                "msPlayed": track.duration_ms,
            }
        )
    return rows


def _years(rows: list, key: str) -> str:
    first, last = rows[0][key][:4], rows[-1][key][:4]
    return first if first == last else f"{first}-{last}"


def export_zip(user_id: str, now: datetime, kind: str = "extended", days: int = 365, old: bool = False) -> bytes:
    """The zip a listener would get from Spotify on ``now``: ``days`` of history up to it."""
    plays = [p for p in listening(user_id, (now - timedelta(days=days)).date(), now.date()) if p[1] <= now]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if kind == "account":
            rows = basic_rows([p for p in plays if p[1] > now - timedelta(days=365)])
            for n in range(0, max(len(rows), 1), ROWS_PER_FILE):
                _write(
                    archive,
                    f"{ACCOUNT_DIR}/StreamingHistory_music_{n // ROWS_PER_FILE}.json",
                    rows[n : n + ROWS_PER_FILE],
                )
            _write(archive, f"{ACCOUNT_DIR}/StreamingHistory_podcast_0.json", [])
            _write(archive, f"{ACCOUNT_DIR}/Userdata.json", {"username": f"{user_id}-username", "country": "SE"})
            _write(archive, f"{ACCOUNT_DIR}/YourLibrary.json", {"tracks": []})
        else:
            audio, video = extended_rows(user_id, plays, old)
            for n in range(0, max(len(audio), 1), ROWS_PER_FILE):
                chunk = audio[n : n + ROWS_PER_FILE]
                number = n // ROWS_PER_FILE
                name = (
                    f"endsong_{number}.json"
                    if old
                    else f"Streaming_History_Audio_{_years(chunk, 'ts') if chunk else '2026'}_{number}.json"
                )
                _write(archive, f"{EXTENDED_DIR}/{name}", chunk)
            if video and not old:
                _write(archive, f"{EXTENDED_DIR}/Streaming_History_Video_{_years(video, 'ts')}.json", video)
            archive.writestr(
                f"{EXTENDED_DIR}/ReadMeFirst_ExtendedStreamingHistory.pdf", b"%PDF-1.4\n% emulator placeholder\n"
            )
    return buffer.getvalue()


def _write(archive: zipfile.ZipFile, name: str, content) -> None:
    archive.writestr(name, json.dumps(content, indent=2, ensure_ascii=False))


def _now() -> datetime:
    return current_app.config["EMULATOR_STATE"].now()


@data_export.get("/_emulator/privacy")
def privacy_page():
    wanted = request.args.get("user")
    listeners = [u for u in DEMO_USERS.values() if wanted in (None, u.id)] or list(DEMO_USERS.values())
    items = "".join(
        f"<li><strong>{html.escape(u.display_name)}</strong>: "
        f'<a class="request-data" id="request-extended-{u.id}" href="/_emulator/data-export/{u.id}.zip">'
        "Request your data: extended streaming history (a year)</a> · "
        f'<a id="request-account-{u.id}" href="/_emulator/data-export/{u.id}.zip?kind=account">account data</a></li>'
        for u in listeners
    )
    return Response(
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Spotify (emulator) - privacy</title>'
        "<style>body{font-family:sans-serif;max-width:40em;margin:3em auto;line-height:1.6}</style></head><body>"
        "<h1>Download your data</h1><p>Real Spotify mails the extended streaming history within 30 days and "
        "the account data within about five; the emulator makes a synthetic export of the listener's own "
        f"plays at once.</p><ul>{items}</ul></body></html>",
        mimetype="text/html",
    )


@data_export.get("/_emulator/data-export/<user_id>.zip")
def download(user_id: str):
    if user_id not in DEMO_USERS:
        abort(404)
    kind = request.args.get("kind", "extended")
    days = request.args.get("days", 365, type=int)
    if kind not in ("extended", "account") or not 1 <= days <= 3650:
        abort(400)
    body = export_zip(user_id, _now(), kind, days, old=request.args.get("generation") == "old")
    response = Response(body, mimetype="application/zip")
    response.headers["Content-Disposition"] = 'attachment; filename="my_spotify_data.zip"'
    return response
