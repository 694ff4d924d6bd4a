"""Secure by default: secret key policy, cookie flags, security headers."""

from __future__ import annotations

import pytest

from app import create_app
from security import InsecureConfiguration

PRODUCTION = {
    "SPOTIPY_CLIENT_ID": "real-client",
    "SPOTIPY_CLIENT_SECRET": "s",
    "DB_POOL_MIN": 0,
    "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none",
}


@pytest.mark.parametrize(
    "key, message",
    [
        (None, "FLASK_SECRET_KEY is not set"),
        ("dev", "FLASK_SECRET_KEY is a default or too short"),
        ("short-but-not-default", "FLASK_SECRET_KEY is a default or too short"),
    ],
)
def test_production_refuses_a_missing_or_weak_secret_key(key, message, monkeypatch):
    monkeypatch.delenv("FLASK_SECRET_KEY", raising=False)
    with pytest.raises(InsecureConfiguration, match=message):
        create_app({**PRODUCTION, "SECRET_KEY": key})


def test_production_refuses_to_start_without_a_persistent_database(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DB_HOST", raising=False)
    with pytest.raises(InsecureConfiguration, match="DATABASE_URL is not set"):
        create_app({**PRODUCTION, "DATABASE_URL": None, "SECRET_KEY": "x" * 40})


def test_production_cookies_are_secure_and_headers_strict(monkeypatch):
    application = create_app({**PRODUCTION, "SECRET_KEY": "x" * 40})
    assert application.config["SESSION_COOKIE_SECURE"] and application.config["SESSION_COOKIE_HTTPONLY"]
    assert application.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    response = application.test_client().get("/", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert "form-action 'self' https://accounts.spotify.com https://api.spotify.com" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["X-Frame-Options"] == "DENY"


def test_behind_railways_proxy_the_app_builds_https_urls_for_the_public_host():
    application = create_app({**PRODUCTION, "SECRET_KEY": "x" * 40})

    @application.get("/where-am-i")
    def where_am_i():
        from flask import url_for

        return url_for("auth.home", _external=True)

    response = application.test_client().get(
        "/where-am-i", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mtm.up.railway.app"}
    )
    assert response.get_data(as_text=True) == "https://mtm.up.railway.app/"


def test_demo_mode_runs_without_a_secret_key_and_sends_no_hsts(client):
    response = client.get("/")
    assert response.status_code == 200 and "Strict-Transport-Security" not in response.headers
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
