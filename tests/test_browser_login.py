"""A person logs in through the (emulated) Spotify consent page in a real browser."""

from conftest import browser_log_in


def test_log_in_in_a_browser_and_see_the_first_sync(live_server, page):
    page.goto(live_server + "/")
    assert "Demo mode" in page.inner_text("body")
    browser_log_in(page, live_server, "dana")
    page.reload()
    body = page.inner_text("body")
    assert "Hello, Dana" in body and "Last synced" in body
    assert page.locator("ol li").count() >= 10  # top tracks listed
    assert page.console_errors == []
