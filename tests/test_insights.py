"""Every dashboard aggregate (snapshots.py, insights_db.py) on a small hand-made data set
with answers worked out by hand. Runs in the rolled-back ``conn`` fixture."""

from __future__ import annotations

from datetime import date

import pytest

import insights_db
import snapshots
from insights_data import D1, D2, D3, load_fixed_data


@pytest.fixture
def fixed(conn):
    cur = conn.cursor()
    users = load_fixed_data(cur)
    return cur, users["me"], users["other"]


# -- taste over time (snapshots.py) ------------------------------------------------
def test_rank_movement_follows_the_latest_top_tracks(fixed):
    cur, me, _ = fixed
    rows = snapshots.rank_movement(cur, me, "short_term", None)
    assert [(r["track_id"], r["name"], r["current_rank"], r["ranks"]) for r in rows] == [
        ("t4", "Four", 1, [None, 3, 1]),
        ("t3", "Three", 2, [3, None, 2]),
        ("t6", "Six", 3, [None, None, 3]),
    ]
    assert rows[0]["dates"] == [D1, D2, D3]
    assert {(r["days"], r["tracks_shown"]) for r in rows} == {(3, 3)}
    since_d2 = snapshots.rank_movement(cur, me, "short_term", D2, limit=2)
    assert [(r["track_id"], r["ranks"], r["dates"]) for r in since_d2] == [
        ("t4", [3, 1], [D2, D3]),
        ("t3", [None, 2], [D2, D3]),
    ]
    assert [r["ranks"] for r in snapshots.rank_movement(cur, me, "medium_term", None)] == [[1]]
    assert snapshots.rank_movement(cur, me, "long_term", None) == []


def test_turnover_is_the_share_absent_from_the_previous_snapshot(fixed):
    cur, me, _ = fixed
    rows = snapshots.turnover(cur, me, "short_term", None)
    assert [(r["snapshot_date"], r["previous_date"], r["tracks"], r["entered"], r["turnover_pct"]) for r in rows] == [
        (D2, D1, 3, 1, 33.3),
        (D3, D2, 3, 2, 66.7),
    ]
    # the period cuts the days shown, not the comparison with the day before it
    assert [(r["snapshot_date"], r["previous_date"]) for r in snapshots.turnover(cur, me, "short_term", D3)] == [
        (D3, D2)
    ]
    assert snapshots.turnover(cur, me, "medium_term", None) == []  # one snapshot: nothing to compare


def test_discovery_counts_tracks_never_seen_before_in_the_range(fixed):
    cur, me, _ = fixed
    rows = snapshots.discovery(cur, me, "short_term", None)
    # D2: t4 is new. D3: t6 is new; t3 comes back (seen on D1), so it is no discovery.
    assert [(r["snapshot_date"], r["tracks"], r["discovered"], r["discovery_pct"]) for r in rows] == [
        (D2, 3, 1, 33.3),
        (D3, 3, 1, 33.3),
    ]
    assert snapshots.discovery(cur, me, "medium_term", None) == []


def test_artist_diversity_per_month(fixed):
    cur, me, _ = fixed
    rows = snapshots.artist_diversity(cur, me, "short_term", None)
    assert [(r["month"], r["artists"], r["tracks"], r["artists_per_100_tracks"]) for r in rows] == [
        (date(2026, 1, 1), 2, 4, 50.0),
        (date(2026, 2, 1), 2, 3, 66.7),
    ]
    assert [r["month"] for r in snapshots.artist_diversity(cur, me, "short_term", D3)] == [date(2026, 2, 1)]


def test_most_consistent_artists(fixed):
    cur, me, _ = fixed
    rows = snapshots.consistent_artists(cur, me, "short_term", None)
    assert [(r["artist_name"], r["snapshot_days"], r["entries"], r["total_days"], r["presence_pct"]) for r in rows] == [
        ("Beta", 3, 4, 3, 100.0),
        ("Alpha", 2, 4, 3, 66.7),
        ("Gamma feat. X", 1, 1, 3, 33.3),
    ]
    assert [r["artist_name"] for r in snapshots.consistent_artists(cur, me, "short_term", None, limit=1)] == ["Beta"]
    # both in every snapshot since D3: how many of their tracks the list holds separates them
    since_d3 = snapshots.consistent_artists(cur, me, "short_term", D3)
    assert [(r["artist_name"], r["presence_pct"], r["tracks_per_snapshot"]) for r in since_d3] == [
        ("Beta", 100.0, 2.0),
        ("Gamma feat. X", 100.0, 1.0),
    ]
    assert [r["tracks_per_snapshot"] for r in rows] == [1.3, 1.3, 0.3]


# -- library and track profile (insights_db.py) ------------------------------------
def test_library_growth_fills_empty_months_and_keeps_the_running_total(fixed):
    cur, me, other = fixed
    rows = insights_db.library_growth(cur, me, None)
    assert [(r["month"], r["added"], r["library_size"]) for r in rows] == [
        (date(2025, 11, 1), 2, 2),
        (date(2025, 12, 1), 0, 2),
        (date(2026, 1, 1), 2, 4),
    ]
    # a later start keeps the total counted from the first saved track
    assert [(r["month"], r["library_size"]) for r in insights_db.library_growth(cur, me, date(2025, 12, 15))] == [
        (date(2025, 12, 1), 2),
        (date(2026, 1, 1), 4),
    ]
    assert len(insights_db.library_growth(cur, other, None)) == 19  # 2024-06 .. 2025-12


def test_release_years_with_gaps_filled_and_unknown_dates_apart(fixed):
    cur, me, _ = fixed
    rows = insights_db.release_years(cur, me, None)
    assert rows[-1] == {"year": None, "tracks": 1, "year_precision": 0}  # t5: no release date
    years = rows[:-1]
    assert [r["year"] for r in years] == list(range(1995, 2022))
    assert {r["year"]: r["tracks"] for r in years if r["tracks"]} == {1995: 1, 1999: 1, 2004: 1, 2020: 1, 2021: 1}
    assert {r["year"]: r["year_precision"] for r in years if r["year_precision"]} == {1999: 1}


def test_release_decades(fixed):
    cur, me, _ = fixed
    assert [(r["decade"], r["tracks"]) for r in insights_db.release_decades(cur, me, None)] == [
        (1990, 2),
        (2000, 1),
        (2010, 0),
        (2020, 2),
    ]


def test_explicit_share_reads_the_payload(fixed):
    cur, me, _ = fixed
    assert insights_db.explicit_share(cur, me, None) == {
        "tracks": 6,
        "explicit": 2,
        "clean": 3,
        "known": 5,
        "unknown": 1,
        "explicit_pct": 40.0,
    }
    # from 10 January: saved t3, snapshots D2 and D3 (t1 t2 t4 t3 t6): t5 drops out
    assert insights_db.explicit_share(cur, me, date(2026, 1, 10)) == {
        "tracks": 5,
        "explicit": 2,
        "clean": 3,
        "known": 5,
        "unknown": 0,
        "explicit_pct": 40.0,
    }


def test_durations_per_minute_with_median(fixed):
    cur, me, _ = fixed
    rows = insights_db.durations(cur, me, None)
    assert [(r["minute"], r["tracks"]) for r in rows] == [
        (0, 1),
        (1, 0),
        (2, 1),
        (3, 2),
        (4, 1),
        (5, 0),
        (6, 0),
        (7, 0),
        (8, 0),
        (9, 0),
        (10, 1),
    ]
    assert {r["median_ms"] for r in rows} == {192_500}


def test_audio_features_energy_and_mood(fixed):
    cur, me, _ = fixed
    assert insights_db.audio_feature_coverage(cur, me, None) == {"tracks": 6, "with_features": 5}
    energy = insights_db.energy_distribution(cur, me, None)
    assert [(r["low"], r["high"]) for r in energy][:2] == [(0.0, 0.1), (0.1, 0.2)]
    # 0.05 -> first bucket; 0.2 -> third; 0.8 -> ninth; 0.9 and exactly 1.0 -> last
    assert [r["tracks"] for r in energy] == [1, 0, 1, 0, 0, 0, 0, 0, 1, 2]
    mood = insights_db.mood_quadrants(cur, me, None)
    assert [(r["quadrant"], r["tracks"], r["share_pct"]) for r in mood] == [
        ("Upbeat", 2, 40.0),
        ("Intense", 1, 20.0),
        ("Peaceful", 1, 20.0),
        ("Melancholic", 1, 20.0),
    ]


def test_a_user_without_data_gets_empty_answers(fixed):
    cur, *_ = fixed
    cur.execute("INSERT INTO users (spotify_id) VALUES ('new') RETURNING id")
    new = cur.fetchone()[0]
    for function in (
        snapshots.rank_movement,
        snapshots.turnover,
        snapshots.discovery,
        snapshots.artist_diversity,
        snapshots.consistent_artists,
    ):
        assert function(cur, new, "short_term", None) == []
    for function in (
        insights_db.library_growth,
        insights_db.release_years,
        insights_db.release_decades,
        insights_db.durations,
    ):
        assert function(cur, new, None) == []
    assert insights_db.explicit_share(cur, new, None)["tracks"] == 0
    assert insights_db.audio_feature_coverage(cur, new, None) == {"tracks": 0, "with_features": 0}
    assert [r["tracks"] for r in insights_db.mood_quadrants(cur, new, None)] == [0, 0, 0, 0]


def test_no_aggregate_sees_another_users_rows(fixed):
    cur, me, other = fixed
    # t7 (1960, explicit) belongs to the other user only
    assert 1960 not in [r["year"] for r in insights_db.release_years(cur, me, None)]
    assert insights_db.release_years(cur, other, None)[0] == {"year": 1960, "tracks": 1, "year_precision": 1}
    assert [r["track_id"] for r in snapshots.rank_movement(cur, other, "short_term", None)] == ["t7", "t5"]
    assert "t7" not in [r["track_id"] for r in snapshots.rank_movement(cur, me, "short_term", None)]
