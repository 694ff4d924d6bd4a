"""Every listening aggregate of plays_insights_db on a seeded year and a half of plays,
checked against the same numbers worked out in plain Python from the seeded rows (with
zoneinfo for the person's time zone). Runs in the rolled-back ``conn`` fixture."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest

import plays_insights_db as pdb
from plays_factory import in_range, minutes, seed_history

RANGE = (date(2025, 2, 1), date(2025, 7, 31))


RAGGED = (date(2025, 2, 14), date(2025, 7, 9))  # whole months inside, plays from the rollup; ends from plays


@pytest.fixture
def history(conn):
    with conn.cursor() as cur:
        seeded = seed_history(cur)
        assert pdb.refresh_rollups(cur, seeded.me) and pdb.refresh_rollups(cur, seeded.other)
        assert not pdb.refresh_rollups(cur, seeded.me)  # nothing changed since
        return seeded


def month_of(day: date) -> date:
    return day.replace(day=1)


def filled(per_period: dict, step) -> list:
    """Every period from the first to the last, empty ones as (0, 0)."""
    periods, current = [], min(per_period)
    while current <= max(per_period):
        periods.append((current, *per_period.get(current, (0, 0))))
        current = step(current)
    return periods


def next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def by_period(plays, key) -> dict:
    sums: dict = defaultdict(lambda: [0, 0])
    for p in plays:
        sums[key(p.local().date())][0] += 1
        sums[key(p.local().date())][1] += p.ms
    return {k: (n, ms) for k, (n, ms) in sums.items()}


def test_listening_minutes_per_month_week_and_day(conn, history):
    with conn.cursor() as cur:
        monthly = pdb.listening_minutes(cur, history.me, None, None, "month")
        weekly = pdb.listening_minutes(cur, history.me, *RANGE, "week")
        daily = pdb.listening_minutes(cur, history.me, date(2025, 3, 1), date(2025, 3, 20), "day")
    expected = filled(by_period(history.plays, month_of), next_month)
    assert [(r["period"], r["plays"], r["minutes"]) for r in monthly] == [(m, n, minutes(ms)) for m, n, ms in expected]
    assert len(monthly) == 18 and sum(r["plays"] for r in monthly) == len(history.plays)

    week_start = lambda d: d - timedelta(days=d.weekday())  # noqa: E731  (ISO weeks start on Monday)
    expected = filled(by_period(in_range(history.plays, *RANGE), week_start), lambda d: d + timedelta(days=7))
    assert [(r["period"], r["plays"], r["minutes"]) for r in weekly] == [(w, n, minutes(ms)) for w, n, ms in expected]

    # 3-9 March 2025 is a week off: its days are there, with nothing in them
    expected = filled(
        by_period(in_range(history.plays, date(2025, 3, 1), date(2025, 3, 20)), lambda d: d),
        lambda d: d + timedelta(days=1),
    )
    assert [(r["period"], r["plays"], r["minutes"]) for r in daily] == [(d, n, minutes(ms)) for d, n, ms in expected]
    assert [r["plays"] for r in daily if date(2025, 3, 3) <= r["period"] <= date(2025, 3, 9)] == [0] * 7


def test_heatmap_counts_local_hours_and_weekdays(conn, history):
    with conn.cursor() as cur:
        local = pdb.hour_weekday_heatmap(cur, history.me, *RANGE)
        pdb.set_time_zone(cur, history.me, "UTC")
        pdb.refresh_rollups(cur, history.me)
        utc = pdb.hour_weekday_heatmap(cur, history.me, *RANGE)
    assert len(local) == 168 and [(r["weekday"], r["hour"]) for r in local[:2]] == [(1, 0), (1, 1)]
    expected = Counter((p.local().isoweekday(), p.local().hour) for p in in_range(history.plays, *RANGE))
    assert {(r["weekday"], r["hour"]): r["plays"] for r in local if r["plays"]} == dict(expected)
    ms = Counter()
    for p in in_range(history.plays, *RANGE):
        ms[(p.local().isoweekday(), p.local().hour)] += p.ms
    assert {(r["weekday"], r["hour"]): r["minutes"] for r in local if r["plays"]} == {
        k: minutes(v) for k, v in ms.items()
    }
    # in UTC the same plays sit four or five hours later (New York's winter and summer time)
    in_utc = Counter((p.local("UTC").isoweekday(), p.local("UTC").hour) for p in in_range(history.plays, *RANGE, "UTC"))
    assert {(r["weekday"], r["hour"]): r["plays"] for r in utc if r["plays"]} == dict(in_utc)
    assert {(r["weekday"], r["hour"]): r["plays"] for r in utc if r["plays"]} != dict(expected)


def ranked(counter_plays: Counter, counter_ms: Counter, by: str) -> list:
    keys = list(counter_plays)
    if by == "plays":
        keys.sort(key=lambda k: (-counter_plays[k], -counter_ms[k], k))
    else:
        keys.sort(key=lambda k: (-counter_ms[k], -counter_plays[k], k))
    return [(k, counter_plays[k], minutes(counter_ms[k])) for k in keys]


@pytest.mark.parametrize("period", [RANGE, RAGGED, (None, None), (date(2025, 5, 3), date(2025, 5, 17))])
@pytest.mark.parametrize("by", ["plays", "minutes"])
def test_top_tracks_artists_and_albums_for_a_date_range(conn, history, by, period):
    plays = in_range(history.plays, *period)
    with conn.cursor() as cur:
        tracks = pdb.top_items(cur, history.me, *period, "tracks", by, limit=50)
        artists = pdb.top_items(cur, history.me, *period, "artists", by, limit=50)
        albums = pdb.top_items(cur, history.me, *period, "albums", by, limit=3)
    for rows, key in ((tracks, lambda p: p.title), (artists, lambda p: p.artist), (albums, lambda p: p.album)):
        counted, ms = Counter(), Counter()
        for p in plays:
            if key(p) is not None:
                counted[key(p)] += 1
                ms[key(p)] += p.ms
        name = next(column for column in ("track_name", "album_name", "artist_name") if column in rows[0])
        assert [(r[name], r["plays"], r["minutes"]) for r in rows] == ranked(counted, ms, by)[: len(rows)]
    # the primary artist, not the credited names: Under Pressure counts for David Bowie
    assert "David Bowie, Queen" not in [r["artist_name"] for r in artists]
    # unenriched tracks are named by the export; local files by their own names
    if period == RANGE:
        assert {"Massive Attack", "The Garage Band"} <= {r["artist_name"] for r in artists}
        assert "Demo Tape 1" in [r["track_name"] for r in tracks]
    assert len(albums) == 3


def test_skip_rate_overall_and_per_month(conn, history):
    plays = in_range(history.plays, *RANGE)
    with conn.cursor() as cur:
        rate = pdb.skip_rate(cur, history.me, *RANGE)
        monthly = pdb.skip_rate_by_month(cur, history.me, *RANGE)
    known = [p for p in plays if p.was_skipped is not None]
    skipped = [p for p in known if p.was_skipped]
    assert rate["plays"] == len(plays) and rate["known"] == len(known) < len(plays)  # captured plays do not know
    assert rate["skipped"] == len(skipped)
    assert rate["skip_pct"] == float((Decimal(100 * len(skipped)) / len(known)).quantize(Decimal("0.1"), ROUND_HALF_UP))
    assert [r["month"] for r in monthly] == [date(2025, m, 1) for m in range(2, 8)]
    assert sum(r["skipped"] for r in monthly) == len(skipped)


def test_discoveries_are_first_plays_ever(conn, history):
    firsts_track, firsts_artist = {}, {}
    for p in sorted(history.plays, key=lambda p: p.played_at):
        firsts_track.setdefault(p.track_id or p.track_name, month_of(p.local().date()))
        if p.artist:
            firsts_artist.setdefault(p.artist, month_of(p.local().date()))
    with conn.cursor() as cur:
        rows = pdb.discoveries(cur, history.me, None, None)
        ranged = pdb.discoveries(cur, history.me, *RANGE)
    new_tracks, new_artists = Counter(firsts_track.values()), Counter(firsts_artist.values())
    assert {r["month"]: (r["new_tracks"], r["new_artists"]) for r in rows if r["new_tracks"] or r["new_artists"]} == {
        m: (new_tracks[m], new_artists[m]) for m in set(new_tracks) | set(new_artists)
    }
    assert sum(r["new_tracks"] for r in rows) == len(firsts_track)
    # June 2025 brings the two Massive Attack tracks (unenriched) and their artist
    assert next(r for r in ranged if r["month"] == date(2025, 6, 1)) == {
        "month": date(2025, 6, 1),
        "new_tracks": 2,
        "new_artists": 1,
    }
    assert [r["month"] for r in ranged] == [date(2025, m, 1) for m in range(2, 8)]

    # a period from mid-month counts only the firsts inside it, in the months it touches
    first_days = {}
    for p in sorted(history.plays, key=lambda p: p.played_at):
        first_days.setdefault(("track", p.track_id or p.track_name), p.local().date())
        if p.artist:
            first_days.setdefault(("artist", p.artist), p.local().date())
    for first, last in ((date(2025, 6, 3), date(2025, 7, 20)), (date(2024, 9, 25), date(2024, 10, 9))):
        with conn.cursor() as cur:
            rows = pdb.discoveries(cur, history.me, first, last)
        inside = [(kind, month_of(day)) for (kind, _), day in first_days.items() if first <= day <= last]
        assert sum(r["new_tracks"] for r in rows) == sum(1 for kind, _ in inside if kind == "track")
        assert {r["month"]: (r["new_tracks"], r["new_artists"]) for r in rows} == {
            month: (inside.count(("track", month)), inside.count(("artist", month)))
            for month in {month_of(first), month_of(last)}
        }


def streaks(days: set) -> list:
    """The lengths of the runs of consecutive days."""
    runs: list = []
    for day in sorted(days):
        if runs and day == runs[-1][1] + timedelta(days=1):
            runs[-1][1] = day
        else:
            runs.append([day, day])
    return [(last - first).days + 1 for first, last in runs]


def test_longest_streak(conn, history):
    days = {p.local().date() for p in history.plays}
    with conn.cursor() as cur:
        streak = pdb.longest_streak(cur, history.me, None, None)
        in_march = pdb.longest_streak(cur, history.me, date(2025, 3, 5), date(2025, 3, 9))
    assert streak["days"] == max(streaks(days))
    assert (streak["last_day"] - streak["first_day"]).days + 1 == streak["days"]
    assert all(streak["first_day"] + timedelta(days=i) in days for i in range(streak["days"]))
    assert in_march is None  # a week off


def test_on_this_day_one_five_and_ten_years_ago(conn, history):
    today = date(2026, 2, 10)
    with conn.cursor() as cur:
        rows = pdb.on_this_day(cur, history.me, today)
        leap = pdb.on_this_day(cur, history.me, date(2028, 2, 29), years=[3])
    day_plays = [p for p in history.plays if p.local().date() == date(2025, 2, 10)]
    assert [(r["years_ago"], r["day"]) for r in rows] == [
        (1, date(2025, 2, 10)),
        (5, date(2021, 2, 10)),
        (10, date(2016, 2, 10)),
    ]
    assert rows[0]["plays"] == len(day_plays) > 0
    assert rows[0]["minutes"] == minutes(sum(p.ms for p in day_plays))
    counted = Counter(p.title for p in day_plays)
    assert [(t["track_name"], t["plays"]) for t in rows[0]["tracks"]][0][1] == max(counted.values())
    assert sorted((t["track_name"], t["plays"]) for t in rows[0]["tracks"]) == sorted(counted.items())
    assert rows[1]["plays"] == rows[2]["plays"] == 0 and rows[1]["tracks"] == []
    assert leap[0]["day"] == date(2025, 2, 28)  # 29 February three years back is the 28th


def test_year_numbers_totals_first_plays_and_most_skipped(conn, history):
    year = (date(2025, 1, 1), date(2025, 12, 31))
    plays = in_range(history.plays, *year)
    earlier = {p.track_id or p.track_name for p in history.plays if p.local().date() < year[0]}
    with conn.cursor() as cur:
        totals = pdb.totals(cur, history.me, *year)
        firsts = pdb.first_plays(cur, history.me, *year)
        skipped = pdb.most_skipped(cur, history.me, *year, limit=3)
    assert totals == {
        "plays": len(plays),
        "minutes": minutes(sum(p.ms for p in plays)),
        "tracks": len({p.track_id or p.track_name for p in plays}),
        "artists": len({p.artist for p in plays if p.artist}),
        "days": len({p.local().date() for p in plays}),
    }
    new = []
    for p in sorted(plays, key=lambda p: p.played_at):
        key = p.track_id or p.track_name
        if key not in earlier and key not in [n[0] for n in new]:
            new.append((key, p.title))
    assert [r["track_name"] for r in firsts] == [title for _, title in new][:5]
    skips, counts = Counter(p.title for p in plays if p.was_skipped), Counter(p.title for p in plays)
    expected = sorted(skips, key=lambda t: (-skips[t], -counts[t], t))[:3]
    assert [(r["track_name"], r["skips"], r["plays"]) for r in skipped] == [(t, skips[t], counts[t]) for t in expected]


def test_captured_plays_count_the_tracks_whole_length(conn, history):
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES ('captured') RETURNING id")
        user = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO plays (user_id, played_at, track_id) VALUES (%s, '2026-01-01 12:00Z', 't_heroes')", (user,)
        )
        pdb.refresh_rollups(cur, user)
        assert pdb.totals(cur, user, None, None)["minutes"] == minutes(371_000)
        assert pdb.skip_rate(cur, user, None, None) == {"plays": 1, "known": 0, "skipped": 0, "skip_pct": None}


def test_time_zone_is_checked_and_stored(conn, history):
    with conn.cursor() as cur:
        assert pdb.valid_time_zone(cur, "Europe/Berlin") == "Europe/Berlin"
        assert pdb.valid_time_zone(cur, "Mars/Olympus_Mons") is None
        assert pdb.valid_time_zone(cur, "'; DROP TABLE plays; --") is None
        assert pdb.time_zone(cur, history.other) == "UTC"
        assert pdb.set_time_zone(cur, history.other, "Asia/Kathmandu")
        assert not pdb.set_time_zone(cur, history.other, "Asia/Kathmandu")  # no change, no rebuild
        assert pdb.time_zone(cur, history.other) == "Asia/Kathmandu"
        assert pdb.play_span(cur, history.me)["plays"] == len(history.plays)
        assert pdb.has_plays(cur, history.me)


def test_rollups_follow_every_change_to_plays(conn, history):
    """Inserts, updates and deletes of plays note their months; the next refresh
    recomputes just those, and the numbers match the plays again."""
    from plays_factory import Play, insert_plays

    added = Play(
        datetime(2025, 4, 30, 23, 30, tzinfo=UTC),
        "t_kiss",
        "Kiss",
        "Prince",
        "Parade",
        200_000,
        False,
        "trackdone",
        "export",
    )  # 19:30 in New York: still April there
    with conn.cursor() as cur:
        insert_plays(cur, history.me, [added])
        cur.execute("SELECT month FROM play_rollup_dirty WHERE user_id = %s", (history.me,))
        assert cur.fetchall() == [(date(2025, 4, 1),)]
        assert pdb.refresh_rollups(cur, history.me)
        plays = [*history.plays, added]
        assert pdb.totals(cur, history.me, None, None)["plays"] == len(plays)
        top = pdb.top_items(cur, history.me, date(2025, 4, 1), date(2025, 4, 30), "tracks", "plays", limit=50)
        assert ("Kiss", 1) in [(r["track_name"], r["plays"]) for r in top]
        ever = pdb.top_items(cur, history.me, None, None, "tracks", "plays", limit=50)  # the whole-history rollup
        assert ("Kiss", 1) in [(r["track_name"], r["plays"]) for r in ever]

        # a play re-attributed to another track, and a whole month of plays gone
        cur.execute(
            "UPDATE plays SET track_id = 't_mm' WHERE user_id = %s AND played_at = %s", (history.me, added.played_at)
        )
        cur.execute(
            "DELETE FROM plays WHERE user_id = %s "
            "AND played_at >= '2025-06-01 04:00Z' AND played_at < '2025-07-01 04:00Z'",  # June in New York
            (history.me,),
        )
        assert pdb.refresh_rollups(cur, history.me)
        left = [p for p in plays if p.local().date().replace(day=1) != date(2025, 6, 1)]
        assert pdb.totals(cur, history.me, None, None)["plays"] == len(left)
        june = pdb.listening_minutes(cur, history.me, date(2025, 6, 1), date(2025, 6, 30), "month")
        assert june == []
        top = pdb.top_items(cur, history.me, date(2025, 4, 1), date(2025, 4, 30), "tracks", "plays", limit=50)
        assert "Kiss" not in [r["track_name"] for r in top] and "Mamma Mia" in [r["track_name"] for r in top]
        ever = pdb.top_items(cur, history.me, None, None, "tracks", "plays", limit=50)
        assert ("Mamma Mia", 1) in [(r["track_name"], r["plays"]) for r in ever]
        assert "Kiss" not in [r["track_name"] for r in ever]
        assert pdb.totals(cur, history.me, None, None)["tracks"] == len({p.track_id or p.track_name for p in left})
        # and every chart, the per-artist whole history too, agrees with plays again
        assert_rollups_match_plays(cur, history.me, [(None, None), (date(2025, 1, 1), date(2025, 12, 31))])


def test_deleting_an_account_takes_its_plays_and_rollups(conn, history):
    with conn.cursor() as cur:
        cur.execute("DELETE FROM users WHERE id = %s", (history.me,))
        rollups = ("play_hours", "play_month_tracks", "play_year_tracks", "play_tracks", "play_artists", "play_albums")
        for table in ("plays", *rollups, "play_rollup_dirty"):
            cur.execute(f"SELECT count(*) FROM {table} WHERE user_id = %s", (history.me,))
            assert cur.fetchone()[0] == 0, table
        assert pdb.totals(cur, history.other, None, None)["plays"] == len(history.other_plays)


def test_a_whole_rebuild_is_the_first_refresh_of_a_connection(conn):
    """A time zone change (or plays from before version 8) rebuilds everything, with no
    month-by-month bookkeeping left over from an earlier refresh."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES ('rebuilt') RETURNING id")
        user = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO plays (user_id, played_at, track_id, track_name, ms_played) "
            "VALUES (%s, '2026-01-01 00:30Z', NULL, 'Voice Memo', 60000)",
            (user,),
        )
        assert pdb.set_time_zone(cur, user, "America/New_York")
        assert pdb.refresh_rollups(cur, user)
        assert pdb.listening_minutes(cur, user, None, None, "day") == [
            {"period": date(2025, 12, 31), "plays": 1, "minutes": 1.0}
        ]
        assert [r["track_name"] for r in pdb.top_items(cur, user, None, None, "tracks")] == ["Voice Memo"]


# -- the rollups against plain SQL over plays --------------------------------------------
# Periods that take every kind of part: whole years, months, a year less some months, a
# month less some days, ragged ends from plays, open ends, and no plays at all.
COMPARED_PERIODS = [
    (None, None),
    (date(2025, 1, 1), date(2025, 12, 31)),
    (date(2024, 12, 20), date(2026, 1, 5)),
    RAGGED,
    (date(2025, 3, 2), date(2025, 11, 30)),
    (date(2024, 10, 1), date(2025, 3, 31)),
    (date(2025, 5, 3), date(2025, 5, 17)),
    (date(2025, 7, 1), date(2025, 7, 31)),
    (date(2026, 1, 10), date(2026, 2, 20)),
    (None, date(2025, 6, 15)),
    (date(2025, 6, 20), None),
    (date(2023, 1, 1), date(2023, 12, 31)),
]
LOTS = 10_000  # every row of a top list


def every_chart(cur, user_id: int, first, last, from_plays: bool) -> dict:
    charts = {
        f"minutes per {grain}": pdb.listening_minutes(cur, user_id, first, last, grain, from_plays=from_plays)
        for grain in pdb.GRAINS
    }
    for kind in pdb.TOP_KEYS:
        for by in pdb.ORDERS:
            charts[f"top {kind} by {by}"] = pdb.top_items(
                cur, user_id, first, last, kind, by, limit=LOTS, from_plays=from_plays
            )
    simple = (pdb.hour_weekday_heatmap, pdb.skip_rate, pdb.skip_rate_by_month, pdb.discoveries)
    simple += (pdb.longest_streak, pdb.totals)
    for chart in simple:
        charts[chart.__name__] = chart(cur, user_id, first, last, from_plays=from_plays)
    for listed in (pdb.first_plays, pdb.most_skipped, pdb.played_tracks):
        charts[listed.__name__] = listed(cur, user_id, first, last, limit=LOTS, from_plays=from_plays)
    return charts


def assert_rollups_match_plays(cur, user_id: int, periods=COMPARED_PERIODS):
    for first, last in periods:
        rolled = every_chart(cur, user_id, first, last, from_plays=False)
        plain = every_chart(cur, user_id, first, last, from_plays=True)
        for chart, rows in rolled.items():
            assert rows == plain[chart], (chart, first, last)


def test_every_chart_from_the_rollups_is_the_plain_sql_over_plays(conn, history):
    with conn.cursor() as cur:
        assert_rollups_match_plays(cur, history.me)
        assert pdb.top_items(cur, history.me, *RAGGED, "artists", "minutes", limit=LOTS)  # not all empty
        assert pdb.most_skipped(cur, history.me, *RAGGED, limit=LOTS)


def covered(parts, day: date) -> int:
    """How many times the signed parts count a local day (open bounds are None)."""
    return sum(sign for _, sign, lo, hi in parts if (lo is None or day >= lo) and (hi is None or day < hi))


def test_period_parts_count_every_day_of_the_period_once_and_no_other():
    import random

    rng = random.Random(14)
    span = [date(2022, 11, 1) + timedelta(days=n) for n in range(5 * 366)]
    periods = [(None, None), (None, date(2024, 5, 31)), (date(2024, 2, 1), None)]
    for _ in range(400):
        first, last = sorted(rng.sample(span[30:-30], 2))
        periods.append((first, last))
        periods.append((first.replace(day=1), last))
    for first, last in periods:
        parts = pdb.period_parts(first, last)
        assert sum(1 for p in parts if p[0] == "plays") <= 4, (first, last, parts)
        for day in span:
            inside = (first is None or day >= first) and (last is None or day <= last)
            assert covered(parts, day) == int(inside), (first, last, day, parts)
        # no part reads more than half a month of plays
        assert all((hi - lo).days <= 16 for table, _, lo, hi in parts if table == "plays"), parts


def test_catalogue_changes_rename_and_remeasure_the_rollups(conn, history):
    """The rollups carry the tracks' names: enriching a track, renaming an artist or
    learning a track's length notes the months it was played in, and the next refresh
    agrees with plays again."""
    with conn.cursor() as cur:
        cur.execute("SELECT track_id FROM plays WHERE user_id = %s AND track_id IS NOT NULL LIMIT 1", (history.me,))
        track = cur.fetchone()[0]
        cur.execute("UPDATE tracks SET name = 'Renamed', album_name = 'New Album' WHERE spotify_id = %s", (track,))
        cur.execute("SELECT count(*) FROM play_rollup_dirty WHERE user_id = %s", (history.me,))
        assert cur.fetchone()[0] > 0
        cur.execute(
            "UPDATE artists SET name = 'Renamed Artist' WHERE spotify_id = "
            "(SELECT primary_artist_id FROM tracks t JOIN plays p ON p.track_id = t.spotify_id "
            " WHERE p.user_id = %s AND t.spotify_id <> %s AND t.primary_artist_id IS NOT NULL LIMIT 1)",
            (history.me, track),
        )
        assert cur.rowcount == 1
        # a captured play counts its track's length: a new length re-measures its months
        cur.execute(
            "UPDATE plays SET ms_played = NULL WHERE user_id = %s AND played_at = "
            "(SELECT min(played_at) FROM plays WHERE user_id = %s AND track_id = %s)",
            (history.me, history.me, track),
        )
        assert pdb.refresh_rollups(cur, history.me)
        cur.execute("UPDATE tracks SET duration_ms = duration_ms + 1000 WHERE spotify_id = %s", (track,))
        # nothing a chart shows: nothing noted
        cur.execute("UPDATE tracks SET popularity = 1 WHERE spotify_id <> %s", (track,))
        cur.execute(
            "SELECT count(*) FROM (SELECT DISTINCT month FROM play_rollup_dirty WHERE user_id = %s) m", (history.me,)
        )
        noted = cur.fetchone()[0]
        cur.execute(
            "SELECT count(DISTINCT date_trunc('month', played_at AT TIME ZONE 'America/New_York')) FROM plays "
            "WHERE user_id = %s AND track_id = %s",
            (history.me, track),
        )
        assert noted == cur.fetchone()[0]
        assert pdb.refresh_rollups(cur, history.me)
        assert "Renamed" in [r["track_name"] for r in pdb.top_items(cur, history.me, None, None, "tracks", limit=LOTS)]
        assert "Renamed Artist" in [
            r["artist_name"] for r in pdb.top_items(cur, history.me, *RANGE, "artists", limit=LOTS)
        ]
        assert_rollups_match_plays(cur, history.me)
