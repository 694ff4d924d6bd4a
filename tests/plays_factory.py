"""A realistic listening history, made in Python and written straight into ``plays``: a
year and a half of one person's plays (export rows with their facts, a few captured plays
without ``ms_played``, local files without a track id, skipped plays, days off) and a
second person whose plays must never show up in the first one's numbers.

Tests compute their expectations from ``History.plays`` with plain Python (zoneinfo for
the time zone), never from the SQL under test.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from psycopg2.extras import execute_values

# (primary artist id or None, artist name as the catalogue has it)
ARTISTS = {
    "ar_abba": "ABBA",
    "ar_bowie": "David Bowie",
    "ar_kate": "Kate Bush",
    "ar_nina": "Nina Simone",
    "ar_prince": "Prince",
}
# id, name, primary artist id, credited names, album, duration ms. Two tracks are not
# enriched yet: no primary artist, the export's names stand in.
TRACKS = [
    ("t_dq", "Dancing Queen", "ar_abba", "ABBA", "Arrival", 231_000),
    ("t_sos", "SOS", "ar_abba", "ABBA", "ABBA", 203_000),
    ("t_mm", "Mamma Mia", "ar_abba", "ABBA", "ABBA", 213_000),
    ("t_heroes", "Heroes", "ar_bowie", "David Bowie", "Heroes", 371_000),
    ("t_life", "Life on Mars?", "ar_bowie", "David Bowie", "Hunky Dory", 233_000),
    ("t_under", "Under Pressure", "ar_bowie", "David Bowie, Queen", "Hot Space", 248_000),
    ("t_wuth", "Wuthering Heights", "ar_kate", "Kate Bush", "The Kick Inside", 268_000),
    ("t_hill", "Running Up That Hill", "ar_kate", "Kate Bush", "Hounds of Love", 300_000),
    ("t_feel", "Feeling Good", "ar_nina", "Nina Simone", "I Put a Spell on You", 177_000),
    ("t_sinner", "Sinnerman", "ar_nina", "Nina Simone", "Pastel Blues", 622_000),
    ("t_purple", "Purple Rain", "ar_prince", "Prince", "Purple Rain", 520_000),
    ("t_kiss", "Kiss", "ar_prince", "Prince", "Parade", 226_000),
    ("t_new1", "Teardrop", None, "Massive Attack", "Mezzanine", 330_000),
    ("t_new2", "Angel", None, "Massive Attack", "Mezzanine", 379_000),
]
# local files: names only
LOCAL_FILES = [("Demo Tape 1", "The Garage Band", "Basement"), ("Voice Memo", None, None)]
TRACK_BY_ID = {t[0]: t for t in TRACKS}

# the seeded listener's tracks, the first one twice as likely as the others
FAVOURITES = [
    "t_dq",
    "t_dq",
    "t_under",
    "t_heroes",
    "t_wuth",
    "t_hill",
    "t_feel",
    "t_sinner",
    "t_purple",
    "t_sos",
    "t_life",
]
TIME_ZONE = "America/New_York"  # with daylight saving time, so the hours move twice a year
FIRST_DAY, LAST_DAY = date(2024, 9, 20), date(2026, 2, 27)


@dataclass
class Play:
    played_at: datetime  # UTC, whole seconds: the end of playback
    track_id: str | None
    track_name: str | None
    artist_name: str | None
    album_name: str | None
    ms_played: int | None
    skipped: bool | None
    reason_end: str | None
    source: str

    @property
    def ms(self) -> int:
        """What the charts count: the play's own length, else the track's whole length."""
        if self.ms_played is not None:
            return self.ms_played
        return TRACK_BY_ID[self.track_id][5] if self.track_id else 0

    @property
    def was_skipped(self) -> bool | None:
        if self.skipped is not None:
            return self.skipped
        return None if self.reason_end is None else self.reason_end == "fwdbtn"

    def local(self, tz: str = TIME_ZONE) -> datetime:
        return self.played_at.astimezone(ZoneInfo(tz))

    @property
    def artist(self) -> str | None:
        """The artist the charts name: the primary artist, else the names given."""
        if self.track_id:
            artist_id = TRACK_BY_ID[self.track_id][2]
            return ARTISTS[artist_id] if artist_id else TRACK_BY_ID[self.track_id][3]
        return self.artist_name

    @property
    def title(self) -> str:
        return TRACK_BY_ID[self.track_id][1] if self.track_id else self.track_name

    @property
    def album(self) -> str | None:
        return TRACK_BY_ID[self.track_id][4] if self.track_id else self.album_name


@dataclass
class History:
    me: int
    other: int
    plays: list = field(default_factory=list)  # mine
    other_plays: list = field(default_factory=list)


def make_plays(rng: random.Random, first: date, last: date, favourites: list, days_off: float) -> list[Play]:
    plays: list[Play] = []
    day = first
    while day <= last:
        # whole weeks off now and then, so streaks end; a newer track joins in 2025
        if rng.random() >= days_off and not (date(2025, 3, 3) <= day <= date(2025, 3, 9)):
            moment = datetime(day.year, day.month, day.day, rng.choice([6, 7, 12, 17, 20, 22]), tzinfo=UTC)
            moment += timedelta(minutes=rng.randrange(60))
            for _ in range(rng.randrange(1, 18)):
                plays.append(one_play(rng, moment, favourites, day))
                moment += timedelta(seconds=rng.randrange(60, 600))
        day += timedelta(days=1)
    return plays


def one_play(rng: random.Random, moment: datetime, favourites: list, day: date) -> Play:
    pool = favourites + (["t_new1", "t_new2"] if day >= date(2025, 6, 1) else [])
    if rng.random() < 0.03:
        name, artist, album = rng.choice(LOCAL_FILES)
        return Play(moment, None, name, artist, album, rng.randrange(30_000, 200_000), False, "trackdone", "export")
    track = TRACK_BY_ID[rng.choice(pool)]
    if rng.random() < 0.05:  # captured from recently played: no length, no facts
        return Play(moment, track[0], None, None, None, None, None, None, "polling")
    skipped_roll = rng.random()
    if skipped_roll < 0.15:
        ms, skipped, reason = rng.randrange(1_000, 30_000), True, "fwdbtn"
    elif skipped_roll < 0.22:  # an older export: no skipped field, the reason tells
        ms, skipped, reason = rng.randrange(1_000, 30_000), None, rng.choice(["fwdbtn", "backbtn"])
    else:
        ms, skipped, reason = track[5] - rng.randrange(0, 3_000), False, "trackdone"
    return Play(moment, track[0], track[1], track[3], track[4], ms, skipped, reason, "export")


def insert_plays(cur, user_id: int, plays: list[Play]) -> None:
    execute_values(
        cur,
        """INSERT INTO plays (user_id, played_at, track_id, track_name, artist_name, album_name, ms_played,
                              skipped, reason_end, source) VALUES %s""",
        [
            (
                user_id,
                p.played_at,
                p.track_id,
                p.track_name,
                p.artist_name,
                p.album_name,
                p.ms_played,
                p.skipped,
                p.reason_end,
                p.source,
            )
            for p in plays
        ],
        page_size=1000,
    )


def seed_catalogue(cur) -> None:
    cur.executemany("INSERT INTO artists (spotify_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING", ARTISTS.items())
    cur.executemany(
        """INSERT INTO tracks (spotify_id, name, primary_artist_id, artist_name, album_name, duration_ms,
                               needs_enrichment)
           VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
        [(*t, t[2] is None) for t in TRACKS],
    )


def seed_history(cur, spotify_id: str = "listener", time_zone: str | None = TIME_ZONE) -> History:
    """The catalogue, a listener with ~6,000 plays in ``time_zone`` and another person."""
    seed_catalogue(cur)
    cur.execute(
        "INSERT INTO users (spotify_id, time_zone) VALUES (%s, %s), (%s, NULL) RETURNING id",
        (spotify_id, time_zone, spotify_id + "-other"),
    )
    me, other = (row[0] for row in cur.fetchall())
    rng = random.Random(20261102)
    history = History(me, other)
    history.plays = make_plays(rng, FIRST_DAY, LAST_DAY, FAVOURITES, days_off=0.12)
    history.other_plays = make_plays(rng, date(2025, 1, 1), date(2025, 12, 31), ["t_kiss", "t_mm", "t_under"], 0.3)
    insert_plays(cur, me, history.plays)
    insert_plays(cur, other, history.other_plays)
    return history


def seed_plays_for(cur, user_id: int) -> list[Play]:
    """The same year and a half of plays for an existing user (a demo listener after their
    first sync): the catalogue they need, then the plays. Returns the plays."""
    seed_catalogue(cur)
    rng = random.Random(20261102)
    plays = make_plays(rng, FIRST_DAY, LAST_DAY, FAVOURITES, days_off=0.12)
    insert_plays(cur, user_id, plays)
    return plays


def minutes(ms: int) -> float:
    """PostgreSQL's round(x, 1): half away from zero."""
    return float((Decimal(ms) / Decimal(60000)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def in_range(plays: list[Play], first: date | None = None, last: date | None = None, tz: str = TIME_ZONE) -> list:
    """The plays whose local end falls in [first, last]."""
    return [
        p
        for p in plays
        if (first is None or p.local(tz).date() >= first) and (last is None or p.local(tz).date() <= last)
    ]
