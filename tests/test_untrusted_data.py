"""Data the app did not write itself (Spotify's objects, a migrated SQLite file) reaching a
person: links only to Spotify, CSV cells a spreadsheet will not run as formulas."""

from __future__ import annotations

import csv
import dataclasses
import io
import re

import pytest

import account
import database
import security
import spotify
from helpers import log_in_as

HOSTILE_LINKS = [
    "javascript:alert(document.domain)",
    " javascript:alert(1)",
    "JAVASCRIPT:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "http://open.spotify.com/track/x",  # not https
    "https://open.spotify.com.evil.example/track/x",
    "https://evil.example/?open.spotify.com",
    "https://user@open.spotify.com/track/x",
    "//evil.example/track/x",
    "https:\\\\evil.example",
    "",
    None,
]


@pytest.fixture
def ava(client, people):
    log_in_as(client, people["ava"])
    return people["ava"]


def make_hostile(conn, track_id: str, link: str, image: str) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """UPDATE tracks SET spotify_url = %(link)s,
                   raw_json = jsonb_set(
                       jsonb_set(raw_json, '{album,external_urls}', jsonb_build_object('spotify', %(link)s::text)),
                       '{album,images}', jsonb_build_array(jsonb_build_object('url', %(image)s::text)))
               WHERE spotify_id = %(id)s""",
            {"link": link, "image": image, "id": track_id},
        )


def hrefs(html: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', html)


def test_track_page_renders_no_link_from_a_hostile_spotify_url(client, conn, ava):
    make_hostile(conn, "tdance", "javascript:alert(document.cookie)", "javascript:alert(2)")
    response = client.get("/tracks/tdance")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Dance the Night" in html
    assert "javascript:" not in html
    assert "Open in Spotify" not in html and '<img class="cover"' not in html
    assert "Barbie The Album" in html  # the album name stays, as text


def real_mode(app, monkeypatch):
    """The app as with a real Spotify app's credentials (the test app runs in demo mode)."""
    monkeypatch.setitem(app.extensions, "spotify", dataclasses.replace(spotify.settings_for(app), demo=False))


def test_track_page_keeps_real_spotify_links_and_covers(app, client, ava, monkeypatch):
    real_mode(app, monkeypatch)
    html = client.get("/tracks/tdance").get_data(as_text=True)
    assert "https://open.spotify.com/track/tdance" in hrefs(html)
    assert 'src="https://i.scdn.co/image/tdance300"' in html


@pytest.mark.parametrize("link", HOSTILE_LINKS)
def test_only_https_links_to_spotify_pass(app, link):
    with app.test_request_context():
        assert security.spotify_link(link) is None


def test_a_web_player_link_is_kept_and_in_demo_mode_opens_the_emulators_page(app, emulator, monkeypatch):
    link = "https://open.spotify.com/album/x?si=1"
    with app.test_request_context():
        assert security.spotify_link(link) == emulator.base_url + "/open/album/x"
        real_mode(app, monkeypatch)
        assert security.spotify_link(link) == link


def test_demo_mode_also_links_to_the_emulator_and_nothing_else(app, emulator):
    with app.test_request_context():
        assert security.spotify_image(emulator.base_url + "/_emulator/images/album/a.svg") is not None
        assert security.spotify_link("http://127.0.0.1:1/track/x") is None  # another local port


FORMULAS = ['=HYPERLINK("https://evil.example","click")', "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR"]


def test_csv_export_neutralises_formula_cells(client, conn, ava, monkeypatch):
    # the streamed body runs after teardown: keep it on the test's rolled-back connection
    monkeypatch.setattr(account, "transaction", lambda given=None: database.transaction(given or conn))
    with conn.cursor() as cur:
        for n, name in enumerate(FORMULAS, 1):
            cur.execute(
                "UPDATE tracks SET name = %s, artist_name = %s WHERE spotify_id = %s",
                (name, "=cmd|' /C calc'!A0", f"tlove{n:02d}"),
            )
    response = client.get("/settings/export.csv")
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    names = {r["track_name"] for r in rows}
    for formula in FORMULAS:
        assert "'" + formula in names
    assert all(not r[k].startswith(("=", "+", "-", "@", "\t", "\r")) for r in rows for k in r if r[k])
    assert {r["artist_name"] for r in rows if r["track_name"].startswith("'")} == {"'=cmd|' /C calc'!A0"}
    assert "Night Fever" in names  # ordinary text untouched
