"""Isolation: every route answers from the signed-in person's rows only. Ava tries to read
and change Bob's track, playlist and snapshots through every route and gets 404 (or sees
only her own data); nothing of Bob's changes."""

from __future__ import annotations

import pytest

from helpers import log_in_as

BOB_ONLY_TRACK = "tbob"  # in Bob's snapshots, library and playlist; never in Ava's data


@pytest.fixture
def ava(client, people):
    log_in_as(client, people["ava"])
    return client, people


def bobs_rows(conn, bob):
    with conn.cursor() as cur:
        cur.execute(
            """SELECT (SELECT count(*) FROM snapshots WHERE user_id = %(b)s),
                              (SELECT count(*) FROM saved_tracks WHERE user_id = %(b)s),
                              (SELECT count(*) FROM playlists WHERE user_id = %(b)s),
                              (SELECT count(*) FROM playlist_tracks pt JOIN playlists p ON p.id = pt.playlist_id
                                WHERE p.user_id = %(b)s),
                              (SELECT count(*) FROM users WHERE id = %(b)s)""",
            {"b": bob},
        )
        return cur.fetchone()


@pytest.mark.parametrize(
    "path",
    [
        f"/tracks/{BOB_ONLY_TRACK}",
        "/playlists/{bob_playlist}",
        "/artists/arbrucespringsteen",  # the artist of Bob's only track
        "/artists/by-name/Bruce Springsteen",
        "/albums/al" + BOB_ONLY_TRACK,
    ],
)
def test_another_persons_track_or_playlist_is_a_404(ava, path):
    client, people = ava
    response = client.get(path.format(bob_playlist=people["bob_playlist"]))
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Bob 1984" not in body and "Dancing in the Dark" not in body and "Springsteen" not in body


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard",
        "/api/charts",
        "/api/charts/rank-movement",
        "/search?q=bob",
        "/time-machine?decade=1980s",
        "/playlists",
        "/playlists/forgotten-gems",
        "/playlists/obsessed",
        "/artists/arbeegees",  # Night Fever: in both people's snapshots
        "/albums/altnight",
        "/settings",
        "/api/sync/status",
    ],
)  # the streamed exports are checked the same way in test_account.py
def test_no_page_shows_another_persons_rows(ava, path):
    client, people = ava
    # a user_id in the query string must not choose whose data is shown
    response = client.get(path + ("&" if "?" in path else "?") + f"user_id={people['bob']}")
    assert response.status_code == 200, path
    body = response.get_data(as_text=True)
    assert BOB_ONLY_TRACK not in body and "Bob 1984" not in body, path


def test_changing_routes_never_touch_another_persons_rows(ava, conn):
    client, people = ava
    before = bobs_rows(conn, people["bob"])
    from helpers import csrf_token

    token = csrf_token(client, "/settings")
    # Deleting "an account" deletes the signed-in one; a user id in the form is ignored.
    response = client.post(
        "/settings/delete", data={"csrf_token": token, "confirm": "DELETE", "user_id": people["bob"]}
    )
    assert response.status_code in (302, 303)
    assert bobs_rows(conn, people["bob"]) == before
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM users WHERE id = %s", (people["ava"],))
        assert cur.fetchone()[0] == 0  # Ava's account went, Bob's did not
