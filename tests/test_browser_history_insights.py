"""Issue 13's "done when", in a real browser: a demo listener uploads the zip of their data
export on the import page, watches it import, and then sees the heatmap, the top artists by
minutes and the Year in review with the numbers the file holds, counted here from the file
itself (its music rows with ms_played > 0, one play per second), in the browser's time zone.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import requests

from conftest import browser_log_in
from plays_factory import minutes

ZONE = "Europe/Berlin"
TOP_ARTISTS = """() => { const chart = Chart.getChart(document.getElementById('chart-top-artists'));
    return chart.data.labels.map((label, i) => [label, chart.data.datasets[0].data[i]]); }"""
HEATMAP = """() => [...document.querySelectorAll('table.heatmap tbody tr')].map(row =>
    [...row.querySelectorAll('td')].map(cell =>
        Number(cell.querySelector('.visually-hidden').textContent.split(' ')[0])))"""


def music_plays(archive: bytes) -> dict:
    """ts -> row of every music play in the export's extended history."""
    plays = {}
    with zipfile.ZipFile(io.BytesIO(archive)) as files:
        for name in files.namelist():
            if "Streaming_History_Audio" not in name or not name.endswith(".json"):
                continue
            for row in json.loads(files.read(name)):
                is_music = row.get("spotify_track_uri") or row.get("master_metadata_track_name")
                if is_music and not row.get("episode_name") and row["ms_played"] > 0:
                    plays.setdefault(row["ts"], row)
    return plays


def test_upload_then_heatmap_top_artists_and_year_in_review_match_the_file(
    live_server, browser, clean_emulator, tmp_path
):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id=ZONE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    browser_log_in(page, live_server, "dana")

    archive = requests.get(clean_emulator.base_url + "/_emulator/data-export/dana.zip?days=60", timeout=60).content
    (tmp_path / "my_spotify_data.zip").write_bytes(archive)
    page.goto(live_server + "/import")
    page.set_input_files("#import-files", str(tmp_path / "my_spotify_data.zip"))
    page.click("#import-start")
    page.wait_for_selector("#import-progress:not([hidden]), #import-summary", timeout=30_000)
    page.wait_for_selector("#import-summary", timeout=90_000)

    plays = music_plays(archive)
    local = {ts: datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(ZoneInfo(ZONE)) for ts in plays}
    year = max(moment.year for moment in local.values())

    page.goto(f"{live_server}/listening?preset=all")
    page.wait_for_function("() => document.getElementById('time-zone-name').textContent === 'Europe/Berlin'")
    page.wait_for_function(
        "() => typeof Chart !== 'undefined' && Chart.getChart(document.getElementById('chart-top-artists'))"
    )
    cells = Counter((moment.isoweekday(), moment.hour) for moment in local.values())
    assert page.evaluate(HEATMAP) == [[cells[(day, hour)] for hour in range(24)] for day in range(1, 8)]
    ms = Counter()
    for row in plays.values():
        ms[row["master_metadata_album_artist_name"]] += row["ms_played"]
    expected = sorted(ms.items(), key=lambda kv: (-kv[1], kv[0]))[:10]
    assert page.evaluate(TOP_ARTISTS) == [[artist, minutes(total)] for artist, total in expected]

    page.get_by_role("link", name=str(year), exact=True).click()
    page.wait_for_selector("#year-numbers")
    in_year = [row for ts, row in plays.items() if local[ts].year == year]
    assert page.locator('[data-number="plays"]').inner_text() == f"{len(in_year):,}"
    assert (
        page.locator('[data-number="minutes"]').inner_text() == f"{minutes(sum(r['ms_played'] for r in in_year)):,.1f}"
    )
    year_ms = Counter()
    for row in in_year:
        year_ms[row["master_metadata_album_artist_name"]] += row["ms_played"]
    top5 = [artist for artist, _ in sorted(year_ms.items(), key=lambda kv: (-kv[1], kv[0]))[:5]]
    assert page.locator('[data-top="artists"] li .name').all_inner_texts() == top5
    assert errors == []
    context.close()
