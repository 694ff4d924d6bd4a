"""The listening pages in a real browser (Debian's chromium through Playwright), on a year
and a half of plays seeded for a demo listener after their first sync: the browser tells
the app its time zone (New York here) once, the heatmap and the top artists by minutes show
the seeded plays' numbers in that zone, the Year in review reads on a phone and prints
without the site's chrome.

    MTM_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser_listening.py

also writes docs/listening.png and docs/year-in-review.png.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import psycopg2

from conftest import CHARTS_OUTSIDE_THEIR_FIGURE, browser_log_in, screenshot
from helpers import user_id
from plays_factory import TIME_ZONE, in_range, minutes, seed_plays_for

RANGE = ("2025-02-01", "2025-07-31")

HEATMAP = """() => [...document.querySelectorAll('table.heatmap tbody tr')].map(row =>
    [...row.querySelectorAll('td')].map(cell =>
        Number(cell.querySelector('.visually-hidden').textContent.split(' ')[0])))"""
TOP_ARTISTS = """() => { const chart = Chart.getChart(document.getElementById('chart-top-artists'));
    return chart.data.labels.map((label, i) => [label, chart.data.datasets[0].data[i]]); }"""


def test_listening_heatmap_top_artists_and_year_in_review(live_server, browser, db, tmp_path):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=TIME_ZONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.emulate_media(reduced_motion="reduce")
    browser_log_in(page, live_server, "ava")
    with psycopg2.connect(db) as conn, conn.cursor() as cur:
        plays = seed_plays_for(cur, user_id(db, "ava"))
    conn.close()

    # first visit: the page tells the app the browser's zone, then shows the numbers in it
    page.goto(f"{live_server}/listening?from={RANGE[0]}&to={RANGE[1]}")
    page.wait_for_function(
        "() => document.getElementById('time-zone-name').textContent === 'America/New_York'", timeout=15_000
    )
    page.wait_for_function(
        "() => typeof Chart !== 'undefined' && Chart.getChart(document.getElementById('chart-top-artists'))"
    )
    shown = in_range(plays, date.fromisoformat(RANGE[0]), date.fromisoformat(RANGE[1]))
    cells = Counter((p.local().isoweekday(), p.local().hour) for p in shown)
    assert page.evaluate(HEATMAP) == [[cells[(day, hour)] for hour in range(24)] for day in range(1, 8)]
    ms = Counter()
    for p in shown:
        if p.artist:
            ms[p.artist] += p.ms
    expected = sorted(ms.items(), key=lambda kv: (-kv[1], kv[0]))
    assert page.evaluate(TOP_ARTISTS) == [[artist, minutes(total)] for artist, total in expected]
    assert page.locator('[data-number="plays"]').inner_text() == f"{len(shown):,}"
    assert page.evaluate(CHARTS_OUTSIDE_THEIR_FIGURE) == []
    screenshot(page, "listening.png", tmp_path)

    # the Year in review, from the link on the page, on a phone
    page.set_viewport_size({"width": 375, "height": 800})
    page.get_by_role("link", name="2025", exact=True).click()
    page.wait_for_selector("#year-numbers")
    year = in_range(plays, date(2025, 1, 1), date(2025, 12, 31))
    assert page.locator('[data-number="minutes"]').inner_text() == f"{minutes(sum(p.ms for p in year)):,.1f}"
    assert page.locator('[data-number="plays"]').inner_text() == f"{len(year):,}"
    top_artists = Counter()
    for p in year:
        if p.artist:
            top_artists[p.artist] += p.ms
    first = page.locator('[data-top="artists"] li .name').first.inner_text()
    assert first == sorted(top_artists.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # nothing sticks out sideways
    assert page.evaluate(CHARTS_OUTSIDE_THEIR_FIGURE) == []
    screenshot(page, "year-in-review.png", tmp_path)

    # printed: no navigation, no forms; the monthly numbers as a table
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.locator("#time-zone-form").is_visible()
    assert page.locator("#figure-year-minutes table tbody tr").count() == 12
    assert errors == []
    context.close()
