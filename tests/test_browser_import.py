"""The import page in a real browser: a demo listener requests its data from the emulator,
uploads the zip through the file picker, watches the progress and reads the summary.

    MTM_SCREENSHOTS=1 .venv/bin/python -m pytest tests/test_browser_import.py

also writes docs/import.png (the README's screenshot); otherwise it goes to a temp dir."""

from __future__ import annotations

import requests

from conftest import browser_log_in, screenshot


def test_upload_a_zip_watch_it_import_and_read_the_summary(live_server, page, clean_emulator, tmp_path):
    browser_log_in(page, live_server, "bruno")
    page.click("#import-history-link")  # the dashboard's prompt
    page.wait_for_url(live_server + "/import")

    export_url = page.get_attribute("#demo-export-link", "href")
    assert export_url.endswith("/_emulator/privacy?user=bruno")
    archive = tmp_path / "my_spotify_data.zip"
    archive.write_bytes(
        requests.get(clean_emulator.base_url + "/_emulator/data-export/bruno.zip?days=60", timeout=60).content
    )

    page.set_input_files("#import-files", str(archive))
    assert "my_spotify_data.zip" in page.inner_text("#import-chosen")
    page.click("#import-start")
    page.wait_for_selector("#import-summary", timeout=60_000)

    assert page.url.startswith(live_server + "/import/")
    message = page.inner_text("#import-message")
    assert "new plays" in message and "podcast, audiobook or video rows" in message
    assert int(page.inner_text("#import-new-plays").replace(",", "")) > 300
    assert page.console_errors == []
    screenshot(page, "import.png", tmp_path)


def test_a_bad_file_shows_why_on_the_page(live_server, page, clean_emulator, tmp_path):
    browser_log_in(page, live_server, "chen")
    page.goto(live_server + "/import")
    bad = tmp_path / "Streaming_History_Audio_2020_0.json"
    bad.write_text('{"this": "is not a list of plays"}')
    page.set_input_files("#import-files", str(bad))
    page.click("#import-start")
    page.wait_for_selector("#import-error", timeout=30_000)
    assert "not a JSON list of plays" in page.inner_text("#import-error")
    assert page.console_errors == []
