"""The dashboard's queries use their indexes on a data set big enough for the planner to
care: bench/dashboard.py's generator at a small size (tens of thousands of snapshot rows),
inside the rolled-back test transaction, then ANALYZE and EXPLAIN every query."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import insights_db
import snapshots

# bench/dashboard.py, under another name: "dashboard" is the app's blueprint
_spec = importlib.util.spec_from_file_location(
    "bench_dashboard", Path(__file__).resolve().parents[1] / "bench" / "dashboard.py"
)
bench_dashboard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_dashboard)
generate = bench_dashboard.generate

BIG_TABLES = {"snapshots", "saved_tracks", "tracks"}
TASTE = "snapshots_one_track_per_rank"  # (user_id, time_range, snapshot_date, rank)
BY_TRACK = "snapshots_one_row_per_track"  # (user_id, track_id, snapshot_date, time_range)

# query -> indexes of which at least one must appear in the plan
EXPECTED = {
    "rank_movement": (snapshots.RANK_MOVEMENT, {TASTE, BY_TRACK}),
    "turnover": (snapshots.TURNOVER, {TASTE, BY_TRACK}),
    "discovery": (snapshots.DISCOVERY, {TASTE, BY_TRACK}),
    "artist_diversity": (snapshots.ARTIST_DIVERSITY, {TASTE, BY_TRACK}),
    "consistent_artists": (snapshots.CONSISTENT_ARTISTS, {TASTE, BY_TRACK}),
    "library_growth": (insights_db.LIBRARY_GROWTH, {"saved_tracks_added_idx", "saved_tracks_pkey"}),
    "release_years": (insights_db.RELEASE_YEARS, {"tracks_pkey"}),
    "release_decades": (insights_db.RELEASE_DECADES, {"tracks_pkey"}),
    "explicit_share": (insights_db.EXPLICIT_SHARE, {"tracks_pkey"}),
    "durations": (insights_db.DURATIONS, {"tracks_pkey"}),
    "audio_feature_coverage": (insights_db.AUDIO_FEATURE_COVERAGE, {"tracks_pkey"}),
    "energy_distribution": (insights_db.ENERGY, {"tracks_pkey"}),
    "mood_quadrants": (insights_db.MOOD_QUADRANTS, {"tracks_pkey"}),
}


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def test_dashboard_queries_use_their_indexes(conn):
    cur = conn.cursor()
    # 40 users x 10 weeks x 3 ranges x 25 ranks = 30,000 snapshot rows, 6,000 saved, 2,501 tracks.
    # The generated rows are consistent by construction: skip the foreign-key triggers (half the time).
    cur.execute("SET LOCAL session_replication_role = replica")
    generate(cur, users=40, tracks=2501, weeks=10, ranks=25, saved=150, end=date(2026, 11, 23))
    cur.execute("SET LOCAL session_replication_role = DEFAULT")
    cur.execute("ANALYZE users, tracks, artists, snapshots, saved_tracks")
    cur.execute("SELECT id FROM users WHERE spotify_id = 'bench-user-17'")
    user_id = cur.fetchone()[0]
    problems = []
    for name, (query, indexes) in EXPECTED.items():
        for since in (None, date(2026, 10, 1)):
            cur.execute(
                "EXPLAIN (FORMAT JSON) " + query,
                {"user_id": user_id, "time_range": "short_term", "since": since, "limit": 10},
            )
            nodes = list(plan_nodes(cur.fetchone()[0][0]["Plan"]))
            seq_scans = {n["Relation Name"] for n in nodes if n["Node Type"] == "Seq Scan"} & BIG_TABLES
            used = {n.get("Index Name") for n in nodes}
            if seq_scans:
                problems.append(f"{name} (since {since}): sequential scan of {sorted(seq_scans)}")
            if not used & indexes:
                problems.append(f"{name} (since {since}): none of {sorted(indexes)} in {sorted(filter(None, used))}")
    assert problems == []
