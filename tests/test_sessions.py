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
