"""A visit to http://localhost finishes a login: it moves to 127.0.0.1 before anything else."""

from __future__ import annotations

import pytest

from conftest import browser_log_in


@pytest.mark.parametrize("path", ["/", "/login", "/dashboard", "/search?q=blue+moon&page=2"])
def test_localhost_moves_to_the_loopback_ip_with_the_same_port_path_and_query(client, path):
    response = client.get(path, base_url="http://localhost:5000")
    assert response.status_code == 307
    assert response.headers["Location"] == "http://127.0.0.1:5000" + path


def test_a_post_to_localhost_keeps_its_method(client):
    response = client.post("/login", base_url="http://LOCALHOST:8080")
    assert response.status_code == 307 and response.headers["Location"] == "http://127.0.0.1:8080/login"


def test_the_loopback_ip_and_other_hosts_are_served_as_they_are(client):
    assert client.get("/", base_url="http://127.0.0.1:5000").status_code == 200
    assert client.get("/", base_url="https://music.example.org").status_code == 200
    assert client.get("/").status_code == 200  # the test client's own bare "localhost"


def test_real_mode_moves_localhost_too(app):
    app.config.update(SPOTIPY_CLIENT_ID="real-client", SPOTIPY_REDIRECT_URI="http://127.0.0.1:5000/callback")
    response = app.test_client().get("/login", base_url="http://localhost:5000")
    assert response.headers["Location"] == "http://127.0.0.1:5000/login"


def test_a_person_who_opens_localhost_logs_in(live_server, page):
    localhost = live_server.replace("127.0.0.1", "localhost")
    page.goto(localhost + "/")
    assert page.url == live_server + "/"
    browser_log_in(page, live_server, "ava")
    assert "Hello, Ava" in page.inner_text("body")
    assert page.console_errors == []
