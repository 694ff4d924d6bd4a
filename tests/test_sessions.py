"""Sessions end on the server: a cookie naming a deleted account, or copied before a
logout, opens nothing."""

from __future__ import annotations

import pytest

from helpers import csrf_token, log_in_as


def copy_of_cookie(client, app):
    """A second browser tab, or a thief: another client holding the same session cookie."""
    other = app.test_client()
    other.set_cookie("session", client.get_cookie("session").value)
    return other


@pytest.fixture
def ava_deleted_in_another_tab(app, client, conn, people):
    ids = people
    log_in_as(client, ids["ava"])
    token = csrf_token(client, "/settings")
    other_tab = copy_of_cookie(client, app)
    response = client.post("/settings/delete", data={"csrf_token": token, "confirm": "DELETE"})
    assert response.status_code == 302
    return other_tab, token


@pytest.mark.parametrize("path", ["/settings/export.json", "/settings/export.csv", "/settings", "/dashboard"])
def test_pages_of_a_deleted_account_log_out_and_redirect(ava_deleted_in_another_tab, path):
    other_tab, _ = ava_deleted_in_another_tab
    response = other_tab.get(path)
    assert response.status_code == 302 and response.headers["Location"].endswith(("/login", "/"))
    assert "session=;" in response.headers.get("Set-Cookie", "") or other_tab.get_cookie("session") is None
    assert other_tab.get("/settings").status_code == 302  # and it stays logged out


def test_sync_of_a_deleted_account_logs_out_and_redirects(ava_deleted_in_another_tab):
    other_tab, token = ava_deleted_in_another_tab
    response = other_tab.post("/sync", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")


def test_api_of_a_deleted_account_answers_401_in_json(ava_deleted_in_another_tab):
    other_tab, _ = ava_deleted_in_another_tab
    for path in ("/api/sync/status", "/api/charts/turnover"):
        response = other_tab.get(path)
        assert response.status_code == 401 and response.get_json()["error"]["status"] == 401


# -- sessions the server ends ----------------------------------------------------------
def test_a_cookie_copied_before_logout_no_longer_opens_the_dashboard(spotify_app, logged_in):
    client = logged_in("ava")
    stolen = copy_of_cookie(client, spotify_app)
    assert stolen.get("/dashboard").status_code == 200  # the copy works while the session lives
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/dashboard")})
    assert response.status_code == 302
    answer = stolen.get("/dashboard")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/login")
    assert stolen.get("/api/sync/status").status_code == 401


def test_log_out_everywhere_ends_the_sessions_of_other_devices(spotify_app, logged_in, emulator):
    from helpers import log_in

    laptop = logged_in("ava")
    phone = spotify_app.test_client()
    log_in(phone, emulator, "ava")
    html = laptop.get("/settings").get_data(as_text=True)
    assert "Log out everywhere" in html and "7 days" in html
    response = laptop.post("/settings/logout-everywhere", data={"csrf_token": csrf_token(laptop, "/settings")})
    assert response.status_code == 302
    assert phone.get("/dashboard").status_code == 302
    assert laptop.get("/dashboard").status_code == 302
    log_in(phone, emulator, "ava")  # a new login starts a session under the new version
    assert phone.get("/dashboard").status_code == 200


def test_a_session_unused_past_its_idle_lifetime_is_refused(spotify_app, logged_in, monkeypatch):
    import itsdangerous.timed

    client = logged_in("ava")
    assert client.get("/dashboard").status_code == 200
    eight_days_later = itsdangerous.timed.time.time() + 8 * 86400
    monkeypatch.setattr(itsdangerous.timed.TimestampSigner, "get_timestamp", lambda self: int(eight_days_later))
    response = client.get("/dashboard")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
