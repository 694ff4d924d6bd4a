"""The emulator's stand-in for Spotify's web player (open.spotify.com): one plain page per
track, album, artist and playlist, so that demo mode's "Open in Spotify" links lead
somewhere real instead of to ids open.spotify.com does not know."""

from __future__ import annotations

from html import escape

from flask import Blueprint, Response, abort, current_app

from .catalogue import get_catalogue

open_pages = Blueprint("open_pages", __name__)

_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark">
<title>{title} - Spotify (emulator)</title><style>
body{{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em;line-height:1.5;
background:#fff;color:#191414}}
.kind{{color:#555;text-transform:uppercase;font-size:.8em;letter-spacing:.08em}}
@media (prefers-color-scheme: dark){{body{{background:#121212;color:#eee}}.kind{{color:#bbb}}}}
</style></head><body><main><p class="kind">{kind}</p><h1>{title}</h1>{body}
<p><small>Spotify emulator: a local stand-in for Spotify's web player in demo mode.</small></p></main></body></html>"""


@open_pages.get("/open/<kind>/<obj_id>")
def open_page(kind: str, obj_id: str):
    describe = {"track": _track, "album": _album, "artist": _artist, "playlist": _playlist}.get(kind)
    found = describe(obj_id) if describe else None
    if found is None:
        abort(404)
    title, lines, listed = found  # only a playlist lists tracks
    body = "".join(f"<p>{escape(line)}</p>" for line in lines if line)
    if listed:
        body += "<ol>" + "".join(f"<li>{escape(name)}</li>" for name in listed) + "</ol>"
    return Response(_PAGE.format(kind=kind, title=escape(title), body=body), mimetype="text/html")


def _artist_names(artist_ids) -> str:
    artists = get_catalogue().artists
    return ", ".join(artists[a].name for a in artist_ids if a in artists)


def _track(track_id: str):
    catalogue = get_catalogue()
    track = catalogue.tracks.get(track_id)
    if track is None:
        return None
    album = catalogue.albums[track.album_id]
    minutes, seconds = divmod(track.duration_ms // 1000, 60)
    line = f"{_artist_names(track.artist_ids)} · {album.name} ({album.year}) · {minutes}:{seconds:02d}"
    return track.name, [line], []


def _album(album_id: str):
    album = get_catalogue().albums.get(album_id)
    if album is None:
        return None
    return album.name, [f"{_artist_names(album.artist_ids)} · {album.release_date} · {album.total_tracks} tracks"], []


def _artist(artist_id: str):
    artist = get_catalogue().artists.get(artist_id)
    if artist is None:
        return None
    return artist.name, [f"{artist.genre} · {artist.country} · since {artist.debut_year}"], []


def _playlist(playlist_id: str):
    playlist = current_app.config["EMULATOR_STATE"].playlists.get(playlist_id)
    if playlist is None:
        return None
    tracks = get_catalogue().tracks
    track_ids = (uri.rsplit(":", 1)[1] for uri, _at in playlist.items)
    names = [tracks[track_id].name for track_id in track_ids if track_id in tracks]
    return playlist.name, [playlist.description or "", f"{len(playlist.items)} tracks"], names
