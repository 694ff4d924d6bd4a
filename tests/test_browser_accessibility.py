"""axe-core in Debian's chromium: no serious or moderate violation on any page, light and
dark, at desktop and phone size.

tests/vendor/axe.min.js is axe-core 4.10.2 from npm (MPL-2.0, its licence header kept),
injected into each page; nothing is fetched while the tests run.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from conftest import browser_log_in

AXE = Path(__file__).with_name("vendor") / "axe.min.js"
BLOCKING = ("serious", "critical", "moderate")
# The outermost elements that reach past the screen's right edge, to say what to fix.
STICKING_OUT = """width => [...document.querySelectorAll('body *')].filter(e =>
    e.getBoundingClientRect().right > width + 1 && e.parentElement.getBoundingClientRect().right <= width + 1)
    .slice(0, 5).map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}.${e.className}`
                         + ` (${Math.round(e.getBoundingClientRect().width)} px)`)"""
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 375, "height": 740}}


def violations(page) -> list[str]:
    """Both sizes of the page in hand (the phone layout is another page to axe), and a page
    wider than the screen: content that scrolls sideways is lost on a phone (WCAG 1.4.10)."""
    found = []
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        try:  # a chart redraws at the new size a frame or two later (its ResizeObserver)
            page.wait_for_function(f"document.documentElement.scrollWidth <= {viewport['width']}", timeout=3_000)
        except PlaywrightTimeoutError:
            width = page.evaluate("document.documentElement.scrollWidth")
            culprits = page.evaluate(STICKING_OUT, viewport["width"])
            found.append(f"{size}: {page.url} is {width} px wide on a {viewport['width']} px screen: {culprits}")
        found += [f"{size}: {v}" for v in axe(page)]
    return found


def axe(page) -> list[str]:
    # the dashboard reloads itself once when the first sync ends: run again on the new page
    for _ in range(3):
        page.wait_for_load_state("networkidle")
        try:
            if not page.evaluate("typeof axe !== 'undefined'"):
                page.add_script_tag(path=str(AXE))
            return describe(page.evaluate("async () => (await axe.run(document)).violations"))
        except PlaywrightError as error:
            if "context was destroyed" not in str(error):
                raise
    raise AssertionError("the page kept navigating while axe ran")


def describe(found: list[dict]) -> list[str]:
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in BLOCKING
    ]


@pytest.mark.timeout(900)  # some thirty pages, each axed at two sizes
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_meets_axe_with_no_serious_or_moderate_violation(
    browser, live_server, clean_emulator, tmp_path, scheme
):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme, bypass_csp=True)
    page = context.new_page()
    found = {}
    page.goto(live_server + "/")
    found["/"] = violations(page)
    page.goto(live_server + "/login")
    found["/login"] = violations(page)
    page.goto(live_server + "/no-such-page")
    found["404"] = violations(page)
    # the emulator's consent page the login goes through, and what its Cancel leads to
    page.goto(live_server + "/login")
    page.get_by_role("button", name="Log in with Spotify").last.click()
    page.wait_for_selector("input[name=user_id]")
    found["consent page"] = violations(page)
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(live_server + "/callback*")
    found["consent page's Cancel"] = violations(page)
    browser_log_in(page, live_server, "ava")
    track_link = year_link = None
    for path in [
        "/dashboard",
        "/search?q=love",
        "/search?q=lov",
        "/search?q=zzqxjvw",  # no results
        "/search?q=love&page=999",  # beyond the last page
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
        if path == "/listening":
            year_link = page.locator("main a[href^='/listening/']").first.get_attribute("href")
    page.goto(live_server + track_link)
    # the track's artist and album pages, with their covers and rank history
    catalogue_links = [page.locator(s).first.get_attribute("href") for s in ("#track-artists a", "#album-link")]
    for link in (track_link, year_link, *catalogue_links):
        page.goto(live_server + link)
        found[link] = violations(page)
    page.goto(live_server + "/artists/by-name/Nobody%20Anyone%20Knows")  # an artist known only by name
    found["/artists/by-name/..."] = violations(page)
    # a saved playlist: the time machine's preview, then Create
    page.goto(live_server + "/time-machine?decade=1970s")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#preview-count")
    page.get_by_role("button", name=re.compile("^Create")).click()
    page.wait_for_url(re.compile(r"/playlists/\d+$"))
    found["/playlists/<id>"] = violations(page)
    page.get_by_role("link", name="Open in Spotify").click()  # demo mode: the emulator's page of it
    page.wait_for_url(re.compile(r"/open/playlist/"))
    found["emulator's playlist page"] = violations(page)
    # building it again asks: update the one on Spotify, or a new one
    page.goto(live_server + "/time-machine?decade=1970s")
    page.get_by_role("button", name="Preview").click()
    page.wait_for_selector("#preview-count")
    page.get_by_role("button", name=re.compile("^Create")).click()
    page.wait_for_selector("#existing-summary")
    found["building a playlist again"] = violations(page)
    # the import page after an import of the listener's demo export
    archive = tmp_path / "my_spotify_data.zip"
    archive.write_bytes(
        requests.get(clean_emulator.base_url + "/_emulator/data-export/ava.zip?days=30", timeout=60).content
    )
    page.goto(live_server + "/import")
    page.set_input_files("#import-files", str(archive))
    page.click("#import-start")
    page.wait_for_selector("#import-summary", timeout=60_000)
    found["/import/<id>"] = violations(page)
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
