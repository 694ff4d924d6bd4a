"""Demo listeners of the Spotify emulator and how their taste drifts.

Pure functions of the fixed catalogue and the dates asked about: the same
libraries, plays and top tracks on every run, in every process.

Taste model: a listener's affinity for a track is the product of genre weight,
closeness to a preferred era, mood match and a stable personal liking. Genre
weights and era drift on slow seasonal waves; each track also has a personal
"hot period" (a few weeks when the listener played it a lot) and every four
weeks the listener is hooked on a few artists. Averaging affinity over the
window of each time range gives short-term charts that churn and long-term
charts that hold steady, like Spotify's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache

from .catalogue import GENRES, get_catalogue, stable_unit

TOP_TRACKS_MAX = 99  # Spotify pages top items up to 99 per time range
RECENTLY_PLAYED_MAX = 50  # Spotify keeps only the last 50 plays
LIBRARY_ANCHOR = date(2026, 3, 1)  # most saves happen before this day ...
LIBRARY_HORIZON = date(2028, 12, 31)  # ... then a trickle of new saves
TIME_RANGES = ("short_term", "medium_term", "long_term")
# Real-world quirks, deterministic: in recently played, some plays are podcast episodes and
# some are local files (songs from the listener's own disk, with no Spotify id); and now
# and then a top list names one track twice (spotify/web-api#1013), for that day.
EPISODE_PLAY_RATE = 0.05
LOCAL_FILE_PLAY_RATE = 0.02
TOP_LIST_DUPLICATE_RATE = 0.03
EPISODE_PREFIX, LOCAL_FILE_PREFIX = "episode:", "local:"
PODCASTS = (
    ("The Long Play", "Groove Radio"),
    ("Liner Notes Weekly", "Sleeve & Co"),
    ("B-Sides and Beyond", "Crate Diggers Network"),
)


@dataclass(frozen=True)
class DemoUser:
    id: str
    display_name: str
    genres: dict  # base genre weights
    era: int  # preferred release year
    era_width: float  # years of tolerance around it
    mood: tuple  # preferred (valence, energy)
    library_size: int
    account_created: date


# Each demo listener's base genre weights ...
_GENRE_WEIGHTS: dict[str, dict[str, float]] = {
    "ava": {"soul": 5, "folk": 4, "jazz": 3, "pop": 1.5, "disco": 1.5},
    "bruno": {"rock": 5, "metal": 4, "indie": 2.5, "electronic": 1},
    "chen": {"pop": 5, "electronic": 4, "r&b": 3, "indie": 2, "hip-hop": 1},
    "dana": {"hip-hop": 6, "r&b": 4, "soul": 2, "electronic": 1},
    "emeka": {g: 2 for g in GENRES} | {"jazz": 2.5, "soul": 2.5},
}
# ... and the rest: display name, preferred era and its width in years, mood (valence,
# energy), library size, the day the account was created
_PROFILES = {
    "ava": ("Ava Lindqvist", 1970, 9, (0.70, 0.45), 600, date(2013, 5, 2)),
    "bruno": ("Bruno Castillo", 1991, 10, (0.40, 0.85), 900, date(2011, 9, 14)),
    "chen": ("Chen Wei", 2016, 6, (0.60, 0.72), 350, date(2018, 1, 20)),
    "dana": ("Dana Okafor", 2005, 11, (0.50, 0.65), 1500, date(2012, 3, 8)),
    "emeka": ("Emeka Hart", 1988, 22, (0.55, 0.60), 5000, date(2009, 11, 30)),
}
DEMO_USERS = {
    user_id: DemoUser(user_id, name, _GENRE_WEIGHTS[user_id], era, width, mood, size, created)
    for user_id, (name, era, width, mood, size, created) in _PROFILES.items()
}


def _genre_weights(user: DemoUser, day: date) -> dict:
    # each genre rises and falls on its own slow wave (8-18 month periods)
    t = day.toordinal()
    weights = {}
    for genre in GENRES:
        base = user.genres.get(genre, 0.15)
        period = 240 + 300 * stable_unit(user.id, genre, "period")
        phase = 2 * math.pi * stable_unit(user.id, genre, "phase")
        weights[genre] = base * (1 + 0.55 * math.sin(2 * math.pi * t / period + phase))
    return weights


def _era_center(user: DemoUser, day: date) -> float:
    period = 300 + 200 * stable_unit(user.id, "era-period")
    return user.era + 5 * math.sin(2 * math.pi * day.toordinal() / period)


@lru_cache(maxsize=16)
def listening_pool(user_id: str) -> tuple:
    """The 900 tracks a listener could ever chart, by broad taste; keeps charting cheap."""
    user, catalogue = DEMO_USERS[user_id], get_catalogue()

    def broad(track):
        era = math.exp(-(((track.year - user.era) / (user.era_width * 1.6)) ** 2))
        return user.genres.get(track.genre, 0.15) ** 0.5 * era * (0.3 + stable_unit(user_id, track.id, "pool"))

    ranked = sorted(catalogue.track_list, key=lambda t: (-broad(t), t.id))
    return tuple(ranked[:900])


@lru_cache(maxsize=16)
def _personal_traits(user_id: str) -> tuple:
    """Per pool track, what never changes: (track, liking, mood fit, hot-period day, heat)."""
    user, traits = DEMO_USERS[user_id], []
    for track in listening_pool(user_id):
        f = track.features
        mood = max(1.4 - abs(f["valence"] - user.mood[0]) - abs(f["energy"] - user.mood[1]), 0.1)
        liking = math.exp(2.2 * (stable_unit(user_id, track.id, "liking") - 0.5))
        peak = date(2020, 1, 1).toordinal() + int(stable_unit(user_id, track.id, "peak") * 4000)
        traits.append((track, liking * mood, peak, 4 * stable_unit(user_id, track.id, "heat")))
    return tuple(traits)


@lru_cache(maxsize=4096)
def _affinities(user_id: str, day: date) -> tuple:
    """Affinity of the listener for each pool track on one day (same order as the pool)."""
    user = DEMO_USERS[user_id]
    # square root: a favourite genre leads the chart without filling all of it
    genre_weights = {g: w**0.5 for g, w in _genre_weights(user, day).items()}
    era, today = _era_center(user, day), day.toordinal()
    hooked = set(_hooked_artists(user_id, today // 28))  # a new obsession every four weeks
    scores = []
    for track, steady, peak, heat in _personal_traits(user_id):
        if track.year > day.year:
            scores.append(0.0)  # not released yet on that day
            continue
        era_fit = math.exp(-(((track.year - era) / user.era_width) ** 2))
        hot = heat * math.exp(-(((today - peak) / 35) ** 2))
        obsession = 2.5 if track.artist_ids[0] in hooked else 1.0
        scores.append(genre_weights[track.genre] * (0.3 + era_fit) * steady * (1 + hot) * obsession)
    return tuple(scores)


@lru_cache(maxsize=256)
def _hooked_artists(user_id: str, phase: int) -> tuple:
    pool = listening_pool(user_id)
    rng = random.Random(f"{user_id}:hooked:{phase}")
    return tuple(rng.choice(pool).artist_ids[0] for _ in range(3))


_RANGE_SAMPLES = {  # days back from the as-of date averaged per time range
    "short_term": (0, 7, 14, 21),
    "medium_term": (0, 30, 60, 90, 120, 150),
    "long_term": (0, 60, 120, 180, 240, 300, 360),
}


@lru_cache(maxsize=2048)
def top_track_ids(user_id: str, time_range: str, as_of: date) -> tuple:
    """The listener's top tracks (best first, at most 99) for a time range AS OF a day.

    Pure and deterministic: backfilling "a snapshot a week for six months" is a
    loop over dates. Raises KeyError for an unknown user or time range.
    """
    offsets = _RANGE_SAMPLES[time_range]
    pool = listening_pool(user_id)
    totals = [0.0] * len(pool)
    for back in offsets:
        for i, score in enumerate(_affinities(user_id, as_of - timedelta(days=back))):
            totals[i] += score
    ranked = sorted(range(len(pool)), key=lambda i: (-totals[i], pool[i].id))
    return tuple(pool[i].id for i in ranked[:TOP_TRACKS_MAX] if totals[i] > 0)


@lru_cache(maxsize=2048)
def served_top_track_ids(user_id: str, time_range: str, as_of: date) -> tuple:
    """The top list as the Web API serves it: ``top_track_ids``, except that on a few
    (listener, range, day)s one track appears a second time further down, and the list
    still stops at 99 entries."""
    ids = top_track_ids(user_id, time_range, as_of)
    if len(ids) < 20 or stable_unit(user_id, time_range, as_of.isoformat(), "duplicate") >= TOP_LIST_DUPLICATE_RATE:
        return ids
    rng = random.Random(f"{user_id}:{time_range}:{as_of.isoformat()}:duplicate")
    first = rng.randrange(len(ids) - 10)
    again = rng.randrange(first + 1, len(ids))
    return (ids[:again] + (ids[first],) + ids[again:])[:TOP_TRACKS_MAX]


def episode_duration_ms(show: int, number: int) -> int:
    return int((20 + 50 * stable_unit("episode-length", show, number)) * 60_000)


def parse_played_item(item: str) -> tuple:
    """('track', track_id) | ('local', track_id) | ('episode', show, number)."""
    if item.startswith(EPISODE_PREFIX):
        show, number = item[len(EPISODE_PREFIX) :].split(":")
        return ("episode", int(show), int(number))
    if item.startswith(LOCAL_FILE_PREFIX):
        return ("local", item[len(LOCAL_FILE_PREFIX) :])
    return ("track", item)


def as_recently_played(user_id: str, track_id: str, at: datetime) -> str:
    """What recently played says one play was: mostly the track, sometimes a local copy of
    it, sometimes a podcast episode (the export's own plays stay tracks)."""
    draw = stable_unit(user_id, at.isoformat(), "played-item")
    if draw < EPISODE_PLAY_RATE:
        return f"{EPISODE_PREFIX}{int(draw * 1e6) % len(PODCASTS)}:{1 + int(draw * 1e9) % 499}"
    if draw < EPISODE_PLAY_RATE + LOCAL_FILE_PLAY_RATE:
        return LOCAL_FILE_PREFIX + track_id
    return track_id


@lru_cache(maxsize=16)
def _library(user_id: str) -> tuple:
    """Every save the listener ever makes: (track_id, added_at), newest first."""
    user, catalogue = DEMO_USERS[user_id], get_catalogue()
    rng = random.Random(f"{user_id}:library")
    tracks = catalogue.track_list
    weights = [
        user.genres.get(t.genre, 0.1) * math.exp(-(((t.year - user.era) / (user.era_width * 2)) ** 2)) + 0.01
        for t in tracks
    ]
    chosen: list = []
    seen: set[str] = set()
    target = min(user.library_size + 150, len(tracks))
    while len(chosen) < target:  # weighted sampling without replacement
        for track in rng.choices(tracks, weights=weights, k=target):
            if track.id not in seen and len(chosen) < target:
                seen.add(track.id)
                chosen.append(track)
    saves = []
    for n, track in enumerate(chosen):
        start = max(user.account_created, date(track.year, 1, 1))
        end = LIBRARY_ANCHOR if n < user.library_size else LIBRARY_HORIZON
        if start >= end:
            continue
        day = start + timedelta(days=rng.randrange((end - start).days))
        added = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(seconds=rng.randrange(86400))
        saves.append((track.id, added))
    return tuple(sorted(saves, key=lambda s: (s[1], s[0]), reverse=True))


def saved_tracks(user_id: str, as_of: datetime) -> list:
    """(track_id, added_at) of the listener's library at `as_of`, newest first."""
    return [save for save in _library(user_id) if save[1] <= as_of]


@lru_cache(maxsize=1024)
def day_plays(user_id: str, day: date) -> tuple:
    """Every play of the listener on a calendar day: (track_id, played_at), in order.

    Listening sessions laid out per day from a seed of (listener, day): the same plays
    whoever asks (recently played, the synthetic data export of data_export.py).
    """
    catalogue, plays = get_catalogue(), []
    rng = random.Random(f"{user_id}:plays:{day.isoformat()}")
    chart = top_track_ids(user_id, "short_term", day)[:40]
    for _ in range(rng.randint(1, 3)):
        at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=rng.randrange(7 * 60, 23 * 60))
        for _ in range(rng.randint(4, 14)):
            track_id = chart[min(int(rng.expovariate(1 / 8)), len(chart) - 1)]
            plays.append((track_id, at))
            at += timedelta(milliseconds=catalogue.tracks[track_id].duration_ms + rng.randrange(2000, 30000))
    return tuple(sorted(plays, key=lambda p: p[1]))


def recently_played(user_id: str, now: datetime) -> list:
    """The last 50 plays before `now`: (item, played_at), newest first; an item is a track
    id or, now and then, a local file or an episode (``parse_played_item``).

    Asking again a minute later gives the same history plus anything new.
    """
    plays: list = []
    # Days back until there are 50: a quiet few days (or an early hour, before the day's
    # first session) must still leave Spotify's whole 50, as a real account has
    for back in range(RECENTLY_PLAYED_MAX):
        day = [p for p in day_plays(user_id, now.date() - timedelta(days=back)) if p[1] <= now]
        plays += [(as_recently_played(user_id, track_id, at), at) for track_id, at in day]
        if len(plays) >= RECENTLY_PLAYED_MAX:
            break
    return sorted(plays, key=lambda p: p[1], reverse=True)[:RECENTLY_PLAYED_MAX]
