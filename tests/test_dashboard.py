"""The dashboard's views and /api/charts on the hand-made data set of tests/insights_data.py:
labels and numbers as Chart.js gets them, filters, bad input, and privacy."""

from __future__ import annotations

import html
import json
import re

import pytest

import dashboard
from helpers import charts_of
from insights_data import D3


def test_api_serves_every_chart_from_the_aggregates(fixed_signed_in):
    client, _ = fixed_signed_in
    charts = charts_of(client, "?time_range=short_term&period=all")
    assert set(charts) == set(dashboard.CHARTS)
    rank = charts["rank-movement"]
    assert rank["labels"] == ["2026-01-05", "2026-01-12", "2026-02-02"] and rank["y_reverse"] is True
    assert [(d["label"], d["data"]) for d in rank["datasets"]] == [
        ("#1 Four — Beta", [None, 3, 1]),
        ("#2 Three — Beta", [3, None, 2]),
        ("#3 Six — Gamma feat. X", [None, None, 3]),
    ]
    assert charts["turnover"]["datasets"][0]["data"] == [33.3, 66.7]
    assert "66.7% (2 of 3 tracks)" in charts["turnover"]["summary"]
    assert charts["discovery"]["datasets"][0]["data"] == [1, 1]
    assert charts["artist-diversity"]["labels"] == ["2026-01", "2026-02"]
    # zoomed to the ranks these tracks held, and a tooltip that says "rank 3"
    assert (rank["y_min"], rank["y_max"], rank["value_prefix"]) == (1, 3, "rank ")
    assert charts["consistent-artists"]["labels"] == ["Beta", "Alpha", "Gamma feat. X"]
    assert charts["consistent-artists"]["datasets"][0]["data"] == [1.3, 1.3, 0.3]
    assert charts["library-growth"]["datasets"][0]["data"] == [2, 2, 4]
    assert charts["library-growth"]["y_zero"] is False  # the axis shows the change, not a flat line
    # no series starts hidden (Chart.js strikes a hidden one through in the legend)
    assert [d for c in charts.values() for d in c["datasets"] if d.get("hidden")] == []
    years = charts["release-years"]
    assert [d["label"] for d in years["datasets"]] == ["Full release date", "Only the year known"] and years["stacked"]
    assert charts["release-years"]["labels"][0] == "1995" and len(charts["release-years"]["labels"]) == 27
    assert "1 tracks without a usable release date" in charts["release-years"]["summary"]
    assert charts["decades"]["labels"] == ["1990s", "2000s", "2010s", "2020s"]
    assert dict(zip(charts["explicit"]["labels"], charts["explicit"]["datasets"][0]["data"], strict=True)) == {
        "Explicit": 2,
        "Clean": 3,
        "Not known": 1,
    }
    assert charts["durations"]["labels"][-1] == "10+ min" and "Median length 3:12" in charts["durations"]["summary"]
    assert charts["energy"]["datasets"][0]["data"] == [1, 0, 1, 0, 0, 0, 0, 0, 1, 2]
    assert charts["mood"]["datasets"][0]["data"] == [40.0, 20.0, 20.0, 20.0]
    assert all(c["empty"] is None for c in charts.values())
    # numbers reach Chart.js as JSON numbers, never as strings (Decimal would become one)
    values = [v for c in charts.values() for d in c["datasets"] for v in d["data"]]
    assert values and all(v is None or type(v) in (int, float) for v in values)


def test_one_chart_with_filters_and_the_period_cut(fixed_signed_in):
    client, _ = fixed_signed_in
    # 3 months back from 2026-02-10 is 2025-11-11: the November row still shows (month of the cut)
    answer = client.get("/api/charts/library-growth?period=3m").get_json()
    assert answer["filters"] == {"time_range": "medium_term", "period": "3m", "since": "2025-11-11"}
    assert answer["chart"]["labels"] == ["2025-11", "2025-12", "2026-01"]
    medium = client.get("/api/charts/turnover?time_range=medium_term").get_json()["chart"]
    assert medium["empty"] == dashboard.NEEDS_TWO_SNAPSHOTS and medium["datasets"] == []


def test_a_new_user_with_one_snapshot_gets_explanations_not_empty_axes(fixed_signed_in, conn):
    client, _ = fixed_signed_in
    cur = conn.cursor()
    cur.execute("INSERT INTO users (spotify_id, display_name) VALUES ('newbie', 'Newbie') RETURNING id")
    newbie = cur.fetchone()[0]
    cur.execute(
        "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) "
        "VALUES (%s, 't5', %s, 'short_term', 1)",
        (newbie, D3),
    )  # t5: no date, no features
    with client.session_transaction() as session:
        session["user_id"] = newbie
    charts = charts_of(client, "?time_range=short_term")
    empty = {name for name, c in charts.items() if c["empty"]}
    assert empty == {
        "rank-movement",
        "turnover",
        "discovery",
        "library-growth",
        "release-years",
        "decades",
        "energy",
        "mood",
    }
    assert charts["rank-movement"]["empty"] == dashboard.NEEDS_TWO_SNAPSHOTS
    assert "audio features" in charts["mood"]["empty"] and charts["mood"]["labels"] == []
    # the frame reserves a box per chart; the explanations come with the data
    page = client.get("/dashboard?time_range=short_term").get_data(as_text=True)
    assert page.count('aria-busy="true"') == len(dashboard.CHARTS)


def test_mood_charts_are_replaced_when_no_track_has_audio_features(fixed_signed_in, conn):
    client, _ = fixed_signed_in
    conn.cursor().execute("UPDATE tracks SET audio_features = NULL")
    charts = charts_of(client)
    for name in ("energy", "mood"):
        assert charts[name]["empty"].startswith("Mood charts need Spotify audio features")
        assert charts[name]["datasets"] == []


def test_a_person_with_no_tracks_yet_is_never_told_none_of_your_0_tracks(client, conn):
    cur = conn.cursor()
    cur.execute("INSERT INTO users (spotify_id, display_name) VALUES ('empty-one', 'Empty') RETURNING id")
    with client.session_transaction() as session:
        session["user_id"] = cur.fetchone()[0]
    charts = charts_of(client)
    for name in ("energy", "mood"):
        assert "0 tracks" not in charts[name]["empty"]
        assert charts[name]["empty"].endswith("no tracks in this period yet.")


def test_dashboard_frame_preloads_its_charts_without_inline_script(fixed_signed_in):
    client, _ = fixed_signed_in
    response = client.get("/dashboard?time_range=short_term&period=all")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # the frame carries no chart data: it preloads the API answer for the same filters
    preload = re.search(r'<link rel="preload" href="([^"]+)" as="fetch" crossorigin>', page).group(1)
    assert preload.replace("&amp;", "&") == "/api/charts?time_range=short_term&period=all"
    assert f'data-charts-url="{preload}"' in page
    assert "Four" not in page.split("Top tracks now")[0]  # no chart label before the top lists
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page, re.S)
    assert all("src=" in attrs and not body.strip() for attrs, body in scripts), "inline JavaScript breaks the CSP"
    for asset in ("vendor/chart.umd.min.js", "charts.js", "sync_status.js", "dashboard.css"):
        assert f"/static/{asset}" in page
    assert 'id="sync-status"' in page and "Sync now" in page
    assert page.count('<canvas id="chart-') == len(dashboard.CHARTS)
    for name, spec in dashboard.CHARTS.items():  # titles at once, so nothing moves when data comes
        assert f'<h3 id="chart-{name}-title">{html.escape(spec.title, quote=False)}</h3>' in page
    assert '<option value="short_term" selected>' in page and '<option value="all" selected>' in page


@pytest.mark.parametrize(
    "query, message",
    [
        ("?time_range=forever", "Unknown time range 'forever'"),
        ("?time_range=", "Unknown time range ''"),
        ("?period=2y", "Unknown period '2y'"),
        ("?period=" + "9" * 10_000, "Unknown period '99999"),
        ("?period=1y%27%3B%20DROP%20TABLE%20snapshots%3B--", "Unknown period"),
        ("?time_range=%00%FF%E2%82", "Unknown time range"),
    ],
)
def test_bad_filters_are_a_400_with_a_message(fixed_signed_in, query, message):
    client, _ = fixed_signed_in
    for path in ("/api/charts", "/api/charts/turnover"):
        response = client.get(path + query)
        assert response.status_code == 400
        error = response.get_json()["error"]
        assert error["status"] == 400 and error["message"].startswith(message) and len(error["message"]) < 200
    page = client.get("/dashboard" + query, headers={"Accept": "text/html"})
    assert page.status_code == 400 and "Unknown" in page.get_data(as_text=True)


def test_unknown_chart_is_a_404_and_anonymous_is_a_401(fixed_signed_in, app):
    client, _ = fixed_signed_in
    response = client.get("/api/charts/passwords")
    assert response.status_code == 404 and "no chart called 'passwords'" in response.get_json()["error"]["message"]
    anonymous = app.test_client()
    assert anonymous.get("/api/charts").status_code == 401
    assert anonymous.get("/api/charts/turnover").status_code == 401
    assert anonymous.get("/dashboard").status_code == 302


def test_another_users_data_is_never_visible(fixed_signed_in):
    client, users = fixed_signed_in
    mine = charts_of(client, "?time_range=short_term&period=all")
    with client.session_transaction() as session:
        session["user_id"] = users["other"]
    theirs = charts_of(client, "?time_range=short_term&period=all")
    # only the session says whose data it is; a user_id parameter is ignored
    assert charts_of(client, f"?time_range=short_term&period=all&user_id={users['me']}") == theirs
    assert [d["label"] for d in theirs["rank-movement"]["datasets"]] == ["#1 Secret — Gamma", "#2 Five — Gamma"]
    assert "1960" in theirs["release-years"]["labels"] and "1960" not in mine["release-years"]["labels"]
    assert "Secret" not in json.dumps(mine)


def test_the_page_counts_snapshot_days_across_all_time_ranges(fixed_signed_in, conn):
    client, users = fixed_signed_in
    with conn.cursor() as cur:
        cur.execute("SELECT count(DISTINCT snapshot_date) FROM snapshots WHERE user_id = %s", (users["me"],))
        days = cur.fetchone()[0]
    assert days > 1
    assert f"{days} snapshot days" in client.get("/dashboard").get_data(as_text=True)


def test_the_first_sync_says_it_is_running_and_a_finished_one_reads_in_plain_words(fixed_signed_in, conn):
    client, users = fixed_signed_in
    cur = conn.cursor()
    cur.execute("UPDATE users SET last_synced_at = NULL WHERE id = %s", (users["me"],))
    cur.execute(
        "INSERT INTO sync_runs (user_id, stage) VALUES (%s, 'Reading your library') RETURNING id", (users["me"],)
    )
    run_id = cur.fetchone()[0]
    page = client.get("/dashboard").get_data(as_text=True)
    assert 'data-first-sync="1"' in page  # charts.js: "Your first sync is running" on the empty charts
    assert re.search(r'<button type="submit" class="button" id="sync-now" disabled', page)
    assert 'id="sync-progress"' in page and "run a sync" not in page
    summary = {
        "top": {  # as the JSONB column gives it back: keys by length, long before short
            "long_term": {"ranked": 50, "entered": 0, "moved_up": 0, "moved_down": 0, "has_previous": False},
            "short_term": {"ranked": 49, "entered": 3, "moved_up": 5, "moved_down": 0, "has_previous": True},
            "medium_term": {"ranked": 1, "entered": 0, "moved_up": 0, "moved_down": 0, "has_previous": True},
        },
        "library": {"saved": 734, "newly_saved": 734, "removed": 0},
        "new_tracks": 800,
        "new_plays": 0,
    }
    cur.execute(
        "UPDATE sync_runs SET status = 'succeeded', stage = 'done', summary = %s, finished_at = now() WHERE id = %s",
        (json.dumps(summary), run_id),
    )
    cur.execute("UPDATE users SET last_synced_at = now() WHERE id = %s", (users["me"],))
    page = client.get("/dashboard").get_data(as_text=True)
    lines = [
        html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", page.split('id="sync-summary"')[1].split("</ul>")[0])
    ]
    assert lines == [
        "Last 4 weeks: 49 tracks in your top list, 3 new, 5 moved up",
        "Last 6 months: 1 track in your top list, no change",
        "About a year: 50 tracks in your top list",
        "734 tracks in your library, all new",
    ]
    assert "data-first-sync" not in page and 'id="sync-now">Sync now' in page
