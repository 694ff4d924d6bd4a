"""Building the same playlist twice, against the Spotify emulator over HTTP: the second
build asks whether to update the playlist already on Spotify or make a new one, never
duplicating it silently; an update replaces every item (more than Spotify's 100 per
request), and an update of a playlist deleted on Spotify makes a new one and says so."""

from __future__ import annotations

from helpers import csrf_token, query, user_id

SUMMER = {"played_year": "2025", "played_part": "summer"}


def play_distinct_tracks(db, person: int, count: int) -> list[str]:
    """``count`` of the person's saved tracks, each played once in summer 2025 (and no
    other play)."""
    tracks = [
        row[0]
        for row in query(
            db, "SELECT track_id FROM saved_tracks WHERE user_id = %s ORDER BY track_id LIMIT %s", (person, count)
        )
    ]
    assert len(tracks) == count, "the demo listener saves enough tracks"
    query(db, "DELETE FROM plays WHERE user_id = %s", (person,))
    query(
        db,
        "INSERT INTO plays (user_id, played_at, track_id, ms_played, skipped, reason_end, source) "
        "SELECT %s, timestamptz '2025-06-01 10:00+00' + n * interval '10 minutes', track_id, 180000, false, "
        "'trackdone', 'export' FROM unnest(%s::text[]) WITH ORDINALITY AS t(track_id, n)",
        (person, tracks),
    )
    return tracks


def build(client, **extra):
    data = {"csrf_token": csrf_token(client, "/time-machine"), **SUMMER, **extra}
    return client.post("/time-machine", data=data)


def recorded_playlists(db, person: int) -> list[tuple]:
    return query(
        db,
        "SELECT p.id, p.spotify_id, count(pt.track_id) FROM playlists p "
        "LEFT JOIN playlist_tracks pt ON pt.playlist_id = p.id WHERE p.user_id = %s GROUP BY p.id ORDER BY p.id",
        (person,),
    )


def recorded_order(db, playlist_id: int) -> list[str]:
    return [
        row[0]
        for row in query(
            db, "SELECT track_id FROM playlist_tracks WHERE playlist_id = %s ORDER BY position", (playlist_id,)
        )
    ]


def spotify_items(emulator, spotify_id: str) -> list[str]:
    return [uri.rsplit(":", 1)[1] for uri, _added_at in emulator.state.playlists[spotify_id].items]


def built_once(client, db, count: int) -> tuple:
    """ava plays ``count`` tracks and builds the summer playlist once: (ava, her tracks,
    our playlist id, its Spotify id)."""
    ava = user_id(db, "ava")
    tracks = play_distinct_tracks(db, ava, count)
    assert build(client).status_code == 302
    [(playlist_id, spotify_id, _count)] = recorded_playlists(db, ava)
    return ava, tracks, playlist_id, spotify_id


def test_building_again_offers_update_or_new_and_an_update_replaces_every_item(logged_in, spotify_app, db, emulator):
    client = logged_in("ava")
    ava, first_tracks, playlist_id, spotify_id = built_once(client, db, 30)
    on_spotify_before = len(emulator.state.playlists)

    # the second build asks first and writes nothing
    page = build(client)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "You built “Time machine: played in summer 2025” before" in html
    assert "with 30 tracks; this one has 30" in html
    assert 'name="existing" value="update"' in html and 'name="existing" value="new"' in html
    assert len(emulator.state.playlists) == on_spotify_before and len(recorded_playlists(db, ava)) == 1

    # update, now with 130 tracks: more than one PUT can carry
    more_tracks = play_distinct_tracks(db, ava, 130)
    response = build(client, existing="update")
    assert response.status_code == 302 and response.headers["Location"].endswith(f"/playlists/{playlist_id}")
    items = spotify_items(emulator, spotify_id)
    assert sorted(items) == sorted(more_tracks) and len(items) == 130 and set(first_tracks) < set(items)
    assert items == recorded_order(db, playlist_id)
    assert recorded_playlists(db, ava) == [(playlist_id, spotify_id, 130)]
    assert len(emulator.state.playlists) == on_spotify_before
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Updated “Time machine: played in summer 2025” on Spotify: it now has 130 tracks." in shown

    # or a second playlist beside it, when that is what the person chose
    response = build(client, existing="new")
    assert response.status_code == 302
    assert len(recorded_playlists(db, ava)) == 2 and len(emulator.state.playlists) == on_spotify_before + 1


def test_updating_a_playlist_deleted_on_spotify_makes_a_new_one_and_says_so(logged_in, spotify_app, db, emulator):
    client = logged_in("ava")
    ava, tracks, _playlist_id, spotify_id = built_once(client, db, 12)
    del emulator.state.playlists[spotify_id]  # the person deleted it in Spotify

    response = build(client, existing="update")
    assert response.status_code == 302
    [_old, (new_id, new_spotify_id, count)] = recorded_playlists(db, ava)
    assert new_spotify_id != spotify_id and count == 12
    assert sorted(spotify_items(emulator, new_spotify_id)) == sorted(tracks)
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "is no longer on your Spotify, so a new playlist was made" in shown
    assert response.headers["Location"].endswith(f"/playlists/{new_id}")
