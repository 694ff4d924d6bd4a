"""Deterministic music catalogue for the Spotify emulator.

About 6,800 tracks by 380 artists over six decades (1960s-2020s), with names,
albums, release dates of year/month/day precision, explicit flags, ISRCs,
durations and audio features. Everything is a pure function of a fixed seed:
the same catalogue on every run and in every process. Randomness comes from
`random.Random(<string seed>)` and blake2b hashes, never from `hash()`
(salted per process).
"""

from __future__ import annotations

import hashlib
import random
import string
import threading
from dataclasses import dataclass, field

SEED = "music-time-machine-2026"
DECADES = (1960, 1970, 1980, 1990, 2000, 2010, 2020)
LAST_RELEASE_YEAR = 2025
_BASE62 = string.digits + string.ascii_letters

# genre: decade weights (1960s..2020s), explicit rate, mean duration s,
# mood means (danceability, energy, valence, acousticness, instrumentalness,
# speechiness, tempo)
GENRES = {
    "soul": ((9, 9, 4, 2, 2, 2, 1), 0.01, 190, (0.62, 0.55, 0.72, 0.45, 0.02, 0.05, 108)),
    "rock": ((7, 9, 9, 8, 5, 3, 2), 0.06, 245, (0.48, 0.78, 0.52, 0.12, 0.06, 0.05, 126)),
    "pop": ((6, 5, 8, 7, 8, 9, 9), 0.10, 205, (0.70, 0.68, 0.60, 0.18, 0.01, 0.06, 118)),
    "disco": ((0, 9, 5, 1, 1, 1, 1), 0.01, 290, (0.82, 0.74, 0.80, 0.08, 0.10, 0.05, 122)),
    "hip-hop": ((0, 1, 5, 9, 9, 9, 9), 0.65, 225, (0.78, 0.66, 0.50, 0.12, 0.01, 0.28, 96)),
    "electronic": ((0, 1, 5, 7, 8, 8, 7), 0.05, 310, (0.72, 0.80, 0.45, 0.05, 0.55, 0.06, 126)),
    "indie": ((0, 0, 2, 6, 9, 9, 6), 0.08, 230, (0.55, 0.62, 0.46, 0.30, 0.12, 0.05, 120)),
    "jazz": ((9, 6, 3, 2, 2, 2, 2), 0.00, 330, (0.52, 0.38, 0.55, 0.75, 0.60, 0.05, 112)),
    "folk": ((9, 8, 2, 2, 3, 6, 3), 0.01, 215, (0.50, 0.35, 0.50, 0.82, 0.08, 0.05, 104)),
    "metal": ((0, 6, 9, 7, 6, 3, 2), 0.30, 300, (0.38, 0.93, 0.30, 0.02, 0.15, 0.08, 138)),
    "r&b": ((2, 3, 4, 9, 8, 8, 9), 0.25, 220, (0.72, 0.58, 0.55, 0.20, 0.02, 0.10, 100)),
    "country": ((6, 6, 5, 6, 5, 5, 4), 0.03, 210, (0.60, 0.60, 0.62, 0.35, 0.01, 0.04, 116)),
}
_COUNTRIES = ("US", "US", "US", "GB", "GB", "SE", "DE", "FR", "CA", "AU", "NL", "JP")

_ADJ = (
    "Golden Blue Electric Silver Broken Quiet Wild Velvet Midnight Neon Lonely Burning "
    "Endless Paper Crystal Hollow Restless Sweet Northern Secret Lucky Heavy Faded Bright "
    "Little Summer Winter Crimson Gentle Savage Honest Falling"
).split()
_NOUN = (
    "Heart River Highway Dream Fire Rain Shadow Mirror Garden Radio Ocean Train City "
    "Thunder Angel Window Echo Horizon Satellite Diamond Ghost Harbor Signal Desert "
    "Letter Moon Engine Compass Lantern Island Mountain Kingdom Stranger Summer"
).split()
_PLACE = (
    "Memphis Brooklyn Berlin Soho Detroit Paris Tokyo Malibu Harlem Lisbon Chelsea "
    "Baltimore Oslo Havana Nashville Seoul"
).split()
_VERB = ("Hold Chase Call Lose Find Save Leave Follow Kiss Wake Keep Burn Carry Catch Light Break Trust Miss").split()
_FIRST = (
    "Marvin Aretha Nina Otis Janis Stevie Donna Prince Whitney Kurt Bjork Lauryn Thom "
    "Amy Frank Solange Tyler Billie Phoebe Rosalia Kendrick Robyn Dolly Johnny Etta "
    "Curtis Joni Patti Nile Erykah Missy Jarvis Lana Sade Youssou Feist Ezra"
).split()
_LAST = (
    "Reyes Holloway Okafor Lindqvist Marsh Delgado Nakamura Whitfield Brennan Castillo "
    "Adeyemi Fontaine Sorensen Vance Kowalski Moreau Haddad Quinn Archer Ellison Rivers "
    "Stone Bishop Carver Monroe Sinclair Blackwood Harlow"
).split()


def stable_unit(*parts) -> float:
    """A float in [0, 1) fixed by `parts`, identical in every process."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _base62_id(rng: random.Random) -> str:
    return "".join(rng.choice(_BASE62) for _ in range(22))


@dataclass(frozen=True)
class Artist:
    id: str
    name: str
    genre: str
    country: str
    debut_year: int


@dataclass(frozen=True)
class Album:
    id: str
    name: str
    album_type: str
    artist_ids: tuple
    release_date: str
    release_date_precision: str
    year: int
    total_tracks: int


@dataclass(frozen=True)
class Track:
    id: str
    name: str
    artist_ids: tuple
    album_id: str
    track_number: int
    duration_ms: int
    explicit: bool
    isrc: str
    genre: str
    year: int
    prominence: float  # hidden stand-in for popularity: orders search hits
    features: dict = field(hash=False, compare=False)


@dataclass
class Catalogue:
    artists: dict
    albums: dict
    tracks: dict
    track_list: list  # stable order for iteration

    def track_artists(self, track: Track) -> list:
        return [self.artists[a] for a in track.artist_ids]


def _title(rng: random.Random) -> str:
    patterns = (
        lambda: f"{rng.choice(_ADJ)} {rng.choice(_NOUN)}",
        lambda: f"{rng.choice(_VERB)} the {rng.choice(_NOUN)}",
        lambda: f"{rng.choice(_NOUN)} in {rng.choice(_PLACE)}",
        lambda: f"{rng.choice(_VERB)} Me {rng.choice(('Home', 'Tonight', 'Slowly', 'Again', 'Now'))}",
        lambda: f"The {rng.choice(_NOUN)} of {rng.choice(_PLACE)}",
        lambda: rng.choice(_NOUN),
        lambda: f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} ({rng.choice(('Live', 'Remastered', 'Acoustic', 'Demo'))})",
    )
    return rng.choices(patterns, weights=(5, 3, 2, 2, 2, 1, 1))[0]()


def _artist_name(rng: random.Random, genre: str) -> str:
    person = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    if genre == "hip-hop":
        return rng.choice(
            (f"MC {rng.choice(_LAST)}", f"Lil {rng.choice(_NOUN)}", f"{rng.choice(_ADJ)} {rng.choice(_FIRST)}", person)
        )
    if genre == "electronic":
        return rng.choice(
            (
                f"DJ {rng.choice(_FIRST)}",
                f"{rng.choice(_NOUN)}{rng.choice(_NOUN).lower()}",
                f"{rng.choice(_ADJ)} {rng.choice(_NOUN)} System",
            )
        )
    return rng.choice(
        (
            person,
            person,
            f"The {rng.choice(_ADJ)} {rng.choice(_NOUN)}s",
            f"{person} & the {rng.choice(_NOUN)}s",
            f"{rng.choice(_NOUN)} {rng.choice(_PLACE)}",
        )
    )


def _release_date(rng: random.Random, year: int) -> tuple:
    # old catalogue often only knows the year; modern releases carry the day
    weights = (4, 2, 4) if year < 1975 else (1, 1, 18)
    precision = rng.choices(("year", "month", "day"), weights=weights)[0]
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    text = {"year": f"{year}", "month": f"{year}-{month:02d}", "day": f"{year}-{month:02d}-{day:02d}"}[precision]
    return text, precision


def _features(rng: random.Random, genre: str, year: int, duration_ms: int, track_id: str) -> dict:
    dance, energy, valence, acoustic, instrumental, speech, tempo = GENRES[genre][3]

    def unit(mean, spread=0.12):
        return round(min(1.0, max(0.0, rng.gauss(mean, spread))), 3)

    loudness = -14.0 + (year - 1960) * 0.12 + energy * 4  # the loudness war, roughly
    return {
        "danceability": unit(dance),
        "energy": unit(energy),
        "valence": unit(valence, 0.18),
        "acousticness": unit(acoustic, 0.15),
        "instrumentalness": unit(instrumental, 0.1),
        "speechiness": unit(speech, 0.05),
        "liveness": unit(0.15, 0.1),
        "loudness": round(min(0.0, rng.gauss(loudness, 2.0)), 3),
        "tempo": round(max(50.0, rng.gauss(tempo, 14)), 3),
        "key": rng.randint(0, 11),
        "mode": rng.choice((0, 1, 1)),
        "time_signature": rng.choices((3, 4, 5), weights=(1, 18, 1))[0],
        "duration_ms": duration_ms,
        "id": track_id,
    }


def _build_catalogue(n_artists: int = 380) -> Catalogue:
    rng = random.Random(SEED)
    artists, albums, tracks = {}, {}, {}
    isrc_counters: dict[str, int] = {}
    for index in range(n_artists):
        decade = DECADES[index % len(DECADES)]
        genre = rng.choices(list(GENRES), weights=[g[0][DECADES.index(decade)] for g in GENRES.values()])[0]
        artist = Artist(
            _base62_id(rng),
            _artist_name(rng, genre),
            genre,
            rng.choice(_COUNTRIES),
            min(LAST_RELEASE_YEAR, decade + rng.randint(0, 9)),
        )
        artists[artist.id] = artist
        registrant = "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(3))
        year = artist.debut_year
        for _ in range(rng.choices((1, 2, 3, 4), weights=(3, 4, 3, 1))[0]):
            album_type = rng.choices(("album", "single", "compilation"), weights=(14, 5, 1))[0]
            size = {"album": rng.randint(8, 12), "single": rng.randint(1, 3), "compilation": rng.randint(12, 16)}[
                album_type
            ]
            release_date, precision = _release_date(rng, year)
            album = Album(_base62_id(rng), _title(rng), album_type, (artist.id,), release_date, precision, year, size)
            albums[album.id] = album
            for number in range(1, size + 1):
                track_id = _base62_id(rng)
                artist_ids: tuple[str, ...] = (artist.id,)
                if genre in ("hip-hop", "r&b", "electronic") and rng.random() < 0.2 and len(artists) > 1:
                    artist_ids += (rng.choice(list(artists)),)  # a featured guest
                isrc_counters[registrant] = isrc_counters.get(registrant, 0) + 1
                duration = int(max(95, rng.gauss(GENRES[genre][2], 45)) * 1000)
                tracks[track_id] = Track(
                    track_id,
                    _title(rng),
                    artist_ids,
                    album.id,
                    number,
                    duration,
                    rng.random() < GENRES[genre][1] * (0.2 if year < 1990 else 1.0),
                    f"{artist.country}{registrant}{year % 100:02d}{isrc_counters[registrant]:05d}",
                    genre,
                    year,
                    round(rng.betavariate(2, 5), 4),
                    _features(rng, genre, year, duration, track_id),
                )
            year = min(LAST_RELEASE_YEAR, year + rng.randint(1, 5))
    return Catalogue(artists, albums, tracks, list(tracks.values()))


_catalogue_lock = threading.Lock()
_catalogue = None


def get_catalogue() -> Catalogue:
    """The one catalogue, built on first use (about 0.1 s) and shared read-only."""
    global _catalogue
    with _catalogue_lock:
        if _catalogue is None:
            _catalogue = _build_catalogue()
        return _catalogue


def search_tracks(free_text: list, filters: dict) -> list:
    """Tracks matching every word and every field filter, most prominent first.

    filters: year -> (low, high), artist / track / album / isrc -> text.
    """
    catalogue, words = get_catalogue(), [w.lower() for w in free_text]
    low, high = filters.get("year", (0, 9999))
    hits = []
    for track in catalogue.track_list:
        if not low <= track.year <= high:
            continue
        album = catalogue.albums[track.album_id]
        artist_text = " ".join(a.name for a in catalogue.track_artists(track)).lower()
        fields = {
            "track": track.name.lower(),
            "artist": artist_text,
            "album": album.name.lower(),
            "isrc": track.isrc.lower(),
        }
        if any(value.lower() not in fields[key] for key, value in filters.items() if key != "year"):
            continue
        text = " ".join(fields.values())
        if all(w in text for w in words):
            hits.append(track)
    return sorted(hits, key=lambda t: (-t.prominence, t.id))
