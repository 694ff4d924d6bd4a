"""The listening pages over HTTP on a seeded year and a half of plays: the numbers a person
reads match those worked out in Python from the seeded rows; bad input is a 400 with a
message; the time zone the browser reports is checked, stored and used."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date

import pytest

import plays_insights_db as pdb
from helpers import data_number, log_in_as
from plays_factory import in_range, minutes


def test_listening_page_for_a_date_range(signed_in_with_plays, played_history):
    page = signed_in_with_plays.get("/listening?from=2025-02-01&to=2025-07-31&by=minutes").get_data(as_text=True)
    plays = in_range(played_history.plays, date(2025, 2, 1), date(2025, 7, 31))
    assert data_number(page, "plays") == f"{len(plays):,}"
    assert data_number(page, "minutes") == f"{minutes(sum(p.ms for p in plays)):,.1f}"
    assert data_number(page, "days") == f"{len({p.local().date() for p in plays}):,}"
    # the top artist by minutes, first in the chart and in its table
    ms = Counter()
    for p in plays:
        if p.artist:
            ms[p.artist] += p.ms
    top_artist = ms.most_common(1)[0][0]
    assert re.search(r'<th scope="row">1</th><td>' + re.escape(top_artist), page)
    # the heatmap is a 7 x 24 table in the person's time zone
    assert page.count('<td class="heat-') == 7 * 24
    assert "Hours are America/New_York time." in page
    for chart in ("listening-minutes", "top-artists", "top-tracks", "top-albums", "skip-rate", "discoveries"):
        assert f'data-chart="{chart}"' in page


def test_the_dashboard_gains_a_listening_card_when_plays_exist(signed_in_with_plays, played_history, conn):
    page = signed_in_with_plays.get("/dashboard").get_data(as_text=True)
    assert 'id="listening-card"' in page and "2026 in review" in page and "2024 in review" in page
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES ('no-plays') RETURNING id")
        log_in_as(signed_in_with_plays, cur.fetchone()[0])
    assert 'id="listening-card"' not in signed_in_with_plays.get("/dashboard").get_data(as_text=True)
    assert "No plays yet" in signed_in_with_plays.get("/listening").get_data(as_text=True)


def test_year_in_review(signed_in_with_plays, played_history):
    response = signed_in_with_plays.get("/listening/2025")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    plays = in_range(played_history.plays, date(2025, 1, 1), date(2025, 12, 31))
    assert data_number(page, "plays") == f"{len(plays):,}"
    assert data_number(page, "minutes") == f"{minutes(sum(p.ms for p in plays)):,.1f}"
    per_month = Counter()
    for p in plays:
        per_month[p.local().month] += p.ms
    biggest = max(per_month, key=per_month.get)
    assert data_number(page, "biggest-month").startswith(date(2025, biggest, 1).strftime("%B"))
    ms = Counter()
    for p in plays:
        ms[p.title] += p.ms
    top5 = [title for title, _ in sorted(ms.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
    listed = re.findall(r'<li><span class="name">([^<]+)</span>', page.split('data-top="tracks"')[1].split("</ol>")[0])
    assert listed == top5
    # 2025's first plays ever: the two Massive Attack tracks that join in June, one artist
    assert "2 tracks and 1 artist heard for the first time." in page
    assert "No plays in 2019." in signed_in_with_plays.get("/listening/2019").get_data(as_text=True)
    assert signed_in_with_plays.get("/listening/1200").status_code == 404


@pytest.mark.parametrize(
    "query, message",
    [
        ("from=2025-13-01", "is not a date"),
        ("from=2025-03-01&to=2025-02-01", "starts (2025-03-01) after it ends"),
        ("from=1800-01-01", "between 1990-01-01"),
        ("preset=decade", "Unknown period"),
        ("by=loudness", "Unknown by"),
        ("grain=hour", "Unknown grain"),
    ],
)
def test_bad_periods_are_a_400_with_a_message(signed_in_with_plays, query, message):
    response = signed_in_with_plays.get("/listening?" + query)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_time_zone_from_the_browser_is_checked_stored_and_used(signed_in_with_plays, played_history, conn):
    with conn.cursor() as cur:
        cur.execute("UPDATE users SET time_zone = NULL WHERE id = %s", (played_history.me,))
    page = signed_in_with_plays.get("/listening?preset=all").get_data(as_text=True)
    assert 'data-stored=""' in page and "Hours are UTC time." in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    bad = signed_in_with_plays.post(
        "/listening/time-zone",
        data={"csrf_token": token, "time_zone": "Mars/Olympus"},
        headers={"Accept": "application/json"},
    )
    assert bad.status_code == 400 and "not a time zone" in bad.get_json()["error"]["message"]
    good = signed_in_with_plays.post(
        "/listening/time-zone",
        data={"csrf_token": token, "time_zone": "Asia/Kathmandu"},
        headers={"Accept": "application/json"},
    )
    assert good.get_json() == {"time_zone": "Asia/Kathmandu", "changed": True}
    with conn.cursor() as cur:
        assert pdb.stored_time_zone(cur, played_history.me) == "Asia/Kathmandu"
    page = signed_in_with_plays.get("/listening?preset=all").get_data(as_text=True)
    assert "Hours are Asia/Kathmandu time." in page
    # the plain form (no JavaScript) goes back where it came from, never to another site
    answer = signed_in_with_plays.post(
        "/listening/time-zone", data={"csrf_token": token, "time_zone": "Europe/Berlin", "next": "//evil.example/"}
    )
    assert answer.status_code == 302 and answer.headers["Location"] == "/listening"
    answer = signed_in_with_plays.post(
        "/listening/time-zone", data={"csrf_token": token, "time_zone": "UTC", "next": "/listening/2025"}
    )
    assert answer.headers["Location"] == "/listening/2025"


def test_listening_pages_need_a_login(client):
    assert client.get("/listening").status_code == 302
    assert client.get("/listening/2025").status_code == 302


@pytest.mark.parametrize(
    "year, part, first, last, label",
    [
        ("2019", "summer", date(2019, 6, 1), date(2019, 8, 31), "summer 2019"),
        ("2019", "winter", date(2019, 12, 1), date(2020, 2, 29), "winter 2019"),
        ("2024", "2", date(2024, 2, 1), date(2024, 2, 29), "February 2024"),
        ("2021", "", date(2021, 1, 1), date(2021, 12, 31), "2021"),
    ],
)
def test_played_periods(year, part, first, last, label):
    import playlists

    period = playlists.parse_played(year, part)
    assert (period.first, period.last, period.label) == (first, last, label)


@pytest.mark.parametrize(
    "year, part, message",
    [("", "summer", "Type the year"), ("19", "", "between 2006"), ("2019", "monsoon", "not a month or a season")],
)
def test_bad_played_periods(year, part, message):
    import playlists

    with pytest.raises(playlists.BadInput, match=message):
        playlists.parse_played(year, part)
