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


def test_the_landing_pages_button_goes_straight_to_spotify(live_server, page, emulator):
    page.goto(live_server + "/")
    page.get_by_role("button", name="Log in with Spotify").click()
    page.wait_for_url(emulator.base_url + "/authorize?**")
    assert page.get_by_role("button", name="Agree").is_visible()


def test_cancel_on_the_consent_page_reads_as_the_persons_choice(live_server, page):
    page.goto(live_server + "/")
    page.get_by_role("button", name="Log in with Spotify").click()
    page.get_by_role("button", name="Cancel").click()
    page.wait_for_url(live_server + "/callback?**")
    body = page.inner_text("main")
    assert "You cancelled the login" in body and "nothing was stored" in body
    assert "did not let you in" not in body and "Login did not work" not in body
    assert page.get_by_role("button", name="Log in with Spotify").is_visible()  # try again in one click


def test_the_consent_page_fits_a_phone_in_dark_mode_and_says_who_each_listener_is(browser, live_server):
    context = browser.new_context(viewport={"width": 375, "height": 740}, color_scheme="dark", is_mobile=True)
    phone = context.new_page()
    phone.goto(live_server + "/")
    phone.get_by_role("button", name="Log in with Spotify").click()
    phone.get_by_role("button", name="Agree").wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 375  # nothing wider than the phone
    assert phone.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 14  # not a zoomed-out desktop page
    background = phone.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 18, 18)", background
    listeners = phone.locator("fieldset label")
    assert listeners.count() == 5
    assert "soul, folk, jazz; mostly the 1970s; 600 saved tracks" in listeners.first.inner_text()
    assert all("saved tracks" in text for text in listeners.all_inner_texts())
    context.close()
