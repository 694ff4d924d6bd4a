"""Spotify Web API JSON shapes for the emulator's catalogue objects.

Shapes follow the published OpenAPI description as a development-mode app sees
them in 2026: fields the description marks deprecated (popularity, genres,
followers, preview_url, a track's available_markets, ...) are left out unless
the description still lists them as required (an album's available_markets).
`base` is the emulator's own root URL, so every href can be followed.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import lru_cache
from urllib.parse import quote_plus, urlencode

from . import crowd
from .catalogue import get_catalogue, stable_unit
from .listeners import PODCASTS, episode_duration_ms
from .state import Playlist, snapshot_id

ALBUM_MARKETS = ["AR", "AU", "BR", "CA", "DE", "ES", "FR", "GB", "IT", "JP", "MX", "NL", "SE", "US"]


def timestamp(when: datetime, millis: bool = False) -> str:
    """ISO 8601 in UTC with a Z, as Spotify writes added_at / played_at."""
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{when.microsecond // 1000:03d}Z" if millis else "Z")


def _links(base: str, kind: str, obj_id: str, api_path: str | None = None) -> dict:
    return {
        "external_urls": {"spotify": f"https://open.spotify.com/{kind}/{obj_id}"},
        "href": f"{base}/v1/{api_path or kind + 's'}/{obj_id}",
        "id": obj_id,
        "type": kind,
        "uri": f"spotify:{kind}:{obj_id}",
    }


def images(base: str, kind: str, obj_id: str, sizes=(640, 300, 64)) -> list:
    return [
        {"url": f"{base}/_emulator/images/{kind}/{obj_id}.svg?size={size}", "height": size, "width": size}
        for size in sizes
    ]


def artist_object(base: str, artist) -> dict:
    return {"name": artist.name, **_links(base, "artist", artist.id)}


# Real-world quirks of the catalogue, at rates like Spotify's and fixed per album: some
# albums have no cover at all, and a few say they were released in the year "0000".
ALBUM_WITHOUT_IMAGES_RATE = 0.02
ALBUM_YEAR_ZERO_RATE = 0.005


def album_quirk(album_id: str) -> str | None:
    """'no images', 'year 0000' or None; the same album always has the same quirk."""
    draw = stable_unit("album-quirk", album_id)
    if draw < ALBUM_WITHOUT_IMAGES_RATE:
        return "no images"
    if draw < ALBUM_WITHOUT_IMAGES_RATE + ALBUM_YEAR_ZERO_RATE:
        return "year 0000"
    return None


def album_object(base: str, album) -> dict:
    catalogue = get_catalogue()
    quirk = album_quirk(album.id)
    return {
        "album_type": album.album_type,
        "total_tracks": album.total_tracks,
        "available_markets": ALBUM_MARKETS,
        "images": [] if quirk == "no images" else images(base, "album", album.id),
        "name": album.name,
        "release_date": "0000" if quirk == "year 0000" else album.release_date,
        "release_date_precision": "year" if quirk == "year 0000" else album.release_date_precision,
        "artists": [artist_object(base, catalogue.artists[a]) for a in album.artist_ids],
        **_links(base, "album", album.id),
    }


@lru_cache(maxsize=65536)
def track_object(base: str, track_id: str) -> dict:
    """A full track object; built once per emulator URL and track, then shared by every
    answer that names the track (the catalogue never changes): read it, never modify it."""
    catalogue = get_catalogue()
    track = catalogue.tracks[track_id]
    return {
        "album": album_object(base, catalogue.albums[track.album_id]),
        "artists": [artist_object(base, a) for a in catalogue.track_artists(track)],
        "disc_number": 1,
        "duration_ms": track.duration_ms,
        "explicit": track.explicit,
        "external_ids": {"isrc": track.isrc},
        "is_local": False,
        "name": track.name,
        "track_number": track.track_number,
        **_links(base, "track", track.id),
    }


def local_track_object(track_id: str) -> dict:
    """A local file (a song from the listener's own disk) as Spotify describes one: no id,
    no hrefs, a spotify:local: URI built from its tags, is_local true."""
    catalogue = get_catalogue()
    track = catalogue.tracks[track_id]
    album, artists = catalogue.albums[track.album_id], catalogue.track_artists(track)

    def tag(text: str) -> str:
        return quote_plus(text)

    no_links: dict[str, object] = {"external_urls": {}, "href": None, "id": None, "uri": None}
    return {
        "album": {
            "album_type": None,
            "total_tracks": 0,
            "available_markets": [],
            "images": [],
            "name": album.name,
            "release_date": None,
            "release_date_precision": None,
            "artists": [],
            "type": "album",
            **no_links,
        },
        "artists": [{"name": a.name, "type": "artist", **no_links} for a in artists],
        "disc_number": 0,
        "duration_ms": track.duration_ms,
        "explicit": False,
        "external_ids": {},
        "is_local": True,
        "name": track.name,
        "track_number": 0,
        "type": "track",
        **no_links,
        "uri": f"spotify:local:{tag(artists[0].name)}:{tag(album.name)}:{tag(track.name)}:{track.duration_ms // 1000}",
    }


def _base62_of(*parts) -> str:
    number = int.from_bytes(hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=16).digest(), "big")
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return "".join(alphabet[(number // 62**i) % 62] for i in range(22))


def show_object(base: str, show: int) -> dict:
    name, publisher = PODCASTS[show]
    show_id = _base62_of("show", show)
    return {
        "available_markets": ALBUM_MARKETS,
        "copyrights": [],
        "description": f"{name}, a demo podcast.",
        "html_description": f"<p>{name}, a demo podcast.</p>",
        "explicit": False,
        "images": images(base, "show", show_id),
        "is_externally_hosted": False,
        "languages": ["en"],
        "media_type": "audio",
        "name": name,
        "publisher": publisher,
        "total_episodes": 500,
        **_links(base, "show", show_id),
    }


def episode_object(base: str, show: int, number: int) -> dict:
    """A podcast episode: what a recently-played list holds beside tracks, type "episode"."""
    episode_id = _base62_of("episode", show, number)
    name = f"{PODCASTS[show][0]} #{number}"
    return {
        "audio_preview_url": None,
        "description": f"Episode {number}.",
        "html_description": f"<p>Episode {number}.</p>",
        "duration_ms": episode_duration_ms(show, number),
        "explicit": False,
        "images": images(base, "episode", episode_id),
        "is_externally_hosted": False,
        "is_playable": True,
        "languages": ["en"],
        "name": name,
        "release_date": "2026-10-01",
        "release_date_precision": "day",
        "show": show_object(base, show),
        **_links(base, "episode", episode_id),
    }


def audio_features_object(base: str, track_id: str) -> dict:
    features = dict(get_catalogue().tracks[track_id].features)
    return features | {
        "type": "audio_features",
        "uri": f"spotify:track:{track_id}",
        "track_href": f"{base}/v1/tracks/{track_id}",
        "analysis_url": f"{base}/v1/audio-analysis/{track_id}",
    }


def user_object(base: str, user_id: str) -> dict:
    # account_id (May 2026): stable and opaque, unlike the renameable id
    account_id = hashlib.blake2b(f"account:{user_id}".encode(), digest_size=5).hexdigest()
    return {
        "account_id": account_id,
        "display_name": crowd.display_name(user_id),
        "images": images(base, "user", user_id, sizes=(300, 64)),
        **_links(base, "user", user_id),
    }


def page(base: str, path: str, items: list, offset: int, limit: int, total: int, **params) -> dict:
    """A paging object whose href/next/previous are absolute URLs back to the emulator."""

    def url(at: int) -> str:
        query = {k: v for k, v in params.items() if v is not None} | {"offset": at, "limit": limit}
        return f"{base}{path}?{urlencode(query)}"

    return {
        "href": url(offset),
        "items": items,
        "limit": limit,
        "offset": offset,
        "total": total,
        "next": url(offset + limit) if offset + limit < total else None,
        "previous": url(max(0, offset - limit)) if offset > 0 else None,
    }


def playlist_owner(base: str, user_id: str) -> dict:
    return {"display_name": crowd.display_name(user_id), **_links(base, "user", user_id)}


def playlist_item(base: str, playlist: Playlist, uri: str, added_at: datetime) -> dict:
    added_by = _links(base, "user", playlist.owner_id)
    return {
        "added_at": timestamp(added_at),
        "added_by": added_by,
        "is_local": False,
        "item": track_object(base, uri.rsplit(":", 1)[1]),
    }


def playlist_object(base: str, playlist: Playlist) -> dict:
    path = f"/v1/playlists/{playlist.id}/items"
    first = [playlist_item(base, playlist, uri, at) for uri, at in playlist.items[:100]]
    return {
        "collaborative": playlist.collaborative,
        "description": playlist.description,
        "images": [],
        "name": playlist.name,
        "owner": playlist_owner(base, playlist.owner_id),
        "public": playlist.public,
        "snapshot_id": snapshot_id(playlist),
        "items": page(base, path, first, 0, 100, len(playlist.items)),
        **_links(base, "playlist", playlist.id),
    }


def cover_svg(kind: str, obj_id: str, size: int) -> str:
    """A deterministic two-colour cover so pages show art without the internet."""
    digest = hashlib.blake2b(f"{kind}:{obj_id}".encode(), digest_size=6).hexdigest()
    first, second = f"#{digest[:6]}", f"#{digest[6:]}"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" viewBox="0 0 100 100">'
        f'<rect width="100" height="100" fill="{first}"/>'
        f'<circle cx="50" cy="50" r="32" fill="{second}"/><circle cx="50" cy="50" r="5" fill="{first}"/></svg>'
    )
