"""In a real browser: search with highlights, a track's rank chart, and a time-machine
playlist built on (emulated) Spotify and listed on /playlists.

    MTM_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser_playlists.py

also writes docs/artist.png, docs/album.png and docs/time-machine.png (the README's screenshots);
otherwise they go to a temp dir.
"""

from __future__ import annotations

import re

from conftest import browser_log_in, screenshot
from helpers import query
from helpers import user_id as listener_id


def test_search_track_chart_and_time_machine_playlist(live_server, page, db, emulator, tmp_path):
    browser_log_in(page, live_server, "ava")
    user_id = listener_id(db, "ava")

    # search: a word from ava's current number one, highlighted in the results
    top_id, top_name = query(
        db,
        """SELECT t.spotify_id, t.name FROM snapshots s JOIN tracks t ON t.spotify_id = s.track_id
                                    WHERE s.user_id = %s AND s.time_range = 'short_term' AND s.rank = 1
                                    ORDER BY s.snapshot_date DESC LIMIT 1""",
        (user_id,),
    )[0]
    word = max(re.findall(r"[A-Za-z]{3,}", top_name), key=len)
    page.get_by_role("link", name="Search").click()
    page.fill("#q", word)
    page.keyboard.press("Enter")
    page.wait_for_selector("#search-status")
    assert "found" in page.inner_text("#search-status")
    assert word.lower() in page.inner_text(".search-results mark >> nth=0").lower()

    # the track page draws its rank history
    page.goto(f"{live_server}/tracks/{top_id}")
    points = page.evaluate(
        "() => Chart.getChart(document.getElementById('rank-history-chart'))"
        ".data.datasets.reduce((n, d) => n + d.data.length, 0)"
    )
    assert points > 0
    album_url = page.get_attribute("#album-link", "href")
    # and links its artist, whose page has their cover and the README's screenshot
    page.locator("#track-artists a").first.click()
    page.wait_for_url(re.compile(r"/artists/"))
    assert page.locator("img.cover").first.evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "artist.png", tmp_path, whole_page=False)  # waits for the lines to settle

    # and its album, whose page lists the track among the person's tracks of it
    page.goto(live_server + album_url)
    assert top_name in page.inner_text("#tracks")
    assert page.locator("img.cover").first.evaluate("img => img.complete && img.naturalWidth > 0")
    screenshot(page, "album.png", tmp_path)

    # time machine: ava's best-stocked decade, so the playlist passes 100 items (two chunks)
    decade = query(
        db,
        """SELECT (extract(year FROM t.release_date)::int / 10 * 10) AS decade
                          FROM saved_tracks s JOIN tracks t ON t.spotify_id = s.track_id WHERE s.user_id = %s
                          GROUP BY 1 ORDER BY count(*) DESC LIMIT 1""",
        (user_id,),
    )[0][0]
    page.set_viewport_size({"width": 375, "height": 800})
    page.get_by_role("link", name="Time machine", exact=True).click()
    page.select_option("#decade", f"{decade}s")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#preview-count")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 375  # no sideways scrolling
    page.set_viewport_size({"width": 1280, "height": 900})
    screenshot(page, "time-machine.png", tmp_path, whole_page=False)
    page.get_by_role("button", name=re.compile("^Create")).click()
    page.wait_for_url(re.compile(r"/playlists/\d+$"))
    assert "on Spotify with" in page.inner_text(".flash")

    page.get_by_role("link", name="Playlists", exact=True).click()
    listing = page.inner_text("#playlists")
    assert f"Time machine: the {decade}s" in listing
    spotify_id, entries = query(
        db,
        """SELECT p.spotify_id, count(pt.track_id) FROM playlists p
                                       JOIN playlist_tracks pt ON pt.playlist_id = p.id
                                       WHERE p.user_id = %s GROUP BY p.id""",
        (user_id,),
    )[0]
    recorded = emulator.state.playlists[spotify_id]
    assert recorded.owner_id == "ava" and recorded.name == f"Time machine: the {decade}s"
    assert len(recorded.items) == entries > 100
    # demo mode: "Open in Spotify" opens the emulator's page of it, not an id open.spotify.com does not know
    page.locator("#playlists").get_by_role("link", name="Open in Spotify").click()
    page.wait_for_url(f"{emulator.base_url}/open/playlist/{spotify_id}")
    assert page.inner_text("h1") == recorded.name and f"{entries} tracks" in page.inner_text("main")
    page.go_back()

    # the streamed export works on the app's own pool (not just the test connection)
    export = page.request.get(f"{live_server}/settings/export.json")
    assert export.ok and len(export.json()["playlists"]) == 1
    assert page.console_errors == []
