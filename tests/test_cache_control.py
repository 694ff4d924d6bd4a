"""Answers with personal data are never kept by a browser or shared cache (Cache-Control:
no-store by default); a view may say otherwise, and static files keep their own."""

from __future__ import annotations

import pytest
from flask import make_response

from helpers import log_in_as
from people_data import seed


@pytest.fixture
def ava(client, conn):
    ids = seed(conn)
    log_in_as(client, ids["ava"])
    return ids["ava"]


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard",
        "/api/charts",
        "/api/charts/turnover",
        "/api/sync/status",
        "/search?q=dance",
        "/tracks/tdance",
        "/playlists",
        "/settings",
        "/settings/export.json",
        "/settings/export.csv",
        "/healthz",
        "/tracks/nope",
    ],
)
def test_personal_pages_and_api_answers_are_not_stored(client, ava, path):
    response = client.get(path)
    assert response.status_code in (200, 404), path
    cache_control = {d.strip() for d in response.headers["Cache-Control"].split(",")}
    # no-store by default; the pages revalidated by ETag say private, no-cache themselves
    assert cache_control in ({"no-store"}, {"private", "no-cache"}), (path, cache_control)


def test_a_view_can_set_its_own_cache_control(app, client):
    @app.get("/test-etag")
    def etagged():
        response = make_response("x")
        response.headers["Cache-Control"] = "private, no-cache"
        response.set_etag("v1")
        return response

    assert client.get("/test-etag").headers["Cache-Control"] == "private, no-cache"


def test_static_files_keep_their_own_caching(client):
    response = client.get("/static/style.css")
    assert response.status_code == 200 and response.headers["Cache-Control"] != "no-store"
