"""axe-core in Debian's chromium: no serious or moderate violation on any page, light and dark.

tests/vendor/axe.min.js is axe-core 4.10.2 from npm (MPL-2.0, its licence header kept),
injected into each page; nothing is fetched while the tests run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError

from conftest import browser_log_in

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
BLOCKING = ("serious", "critical", "moderate")


def violations(page) -> list[str]:
    page.wait_for_load_state("networkidle")
    try:
        page.add_script_tag(path=str(AXE))
    except PlaywrightError as error:  # the dashboard reloads itself once when the first sync ends
        if "context was destroyed" not in str(error):
            raise
        page.wait_for_load_state("networkidle")
        page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in BLOCKING
    ]


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_meets_axe_with_no_serious_or_moderate_violation(browser, live_server, scheme):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme, bypass_csp=True)
    page = context.new_page()
    found = {}
    page.goto(live_server + "/")
    found["/"] = violations(page)
    browser_log_in(page, live_server, "ava")
    track_link = None
    for path in [
        "/dashboard",
        "/search?q=love",
        "/search?q=lov",
        "/time-machine?decade=1970s",
        "/playlists",
        "/playlists/forgotten-gems",
        "/playlists/obsessed",
        "/playlists/mood",
        "/settings",
        "/import",
        "/listening",
    ]:
        page.goto(live_server + path)
        found[path] = violations(page)
        if path.startswith("/time-machine"):
            track_link = page.locator("a[href^='/tracks/']").first.get_attribute("href")
    page.goto(live_server + track_link)
    found[track_link] = violations(page)
    page.goto(live_server + "/search")
    assert page.locator("nav a[aria-current=page]").all_inner_texts() == ["Search"]
    page.goto(live_server + "/playlists")  # no autofocus here: the first Tab starts at the top
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    assert skip.evaluate("link => link === document.activeElement") and skip.is_visible()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "content"
    context.close()
    failing = {path: v for path, v in found.items() if v}
    assert failing == {}, "\n".join(f"{path}: {v}" for path, v in failing.items())
