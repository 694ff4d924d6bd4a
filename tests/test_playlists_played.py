"""The time machine from what you played ("summer 2025"), against the Spotify emulator over
HTTP: the preview lists the tracks played in the season, most played through first, and
creating it writes exactly those to Spotify in that order."""

from __future__ import annotations

import re

from helpers import csrf_token, query, user_id


def test_a_playlist_of_what_you_played_in_a_season(logged_in, spotify_app, db, emulator):
    client = logged_in("ava")
    ava = user_id(db, "ava")
    a, b, c, d, e = (
        row[0]
        for row in query(db, "SELECT track_id FROM saved_tracks WHERE user_id = %s ORDER BY track_id LIMIT 5", (ava,))
    )
    # (track, end of playback UTC, skipped): a 3 plays, b 2 (and one skip), c 1, d only skipped, e in September
    plays = [
        (a, "2025-06-01 10:00:00"),
        (a, "2025-07-04 10:00:00"),
        (a, "2025-08-31 22:00:00"),
        (b, "2025-06-02 10:00:00"),
        (b, "2025-06-03 10:00:00"),
        (c, "2025-07-10 10:00:00"),
        (e, "2025-09-01 00:30:00"),
    ]
    rows = [(ava, at, track, 180_000, False, "trackdone") for track, at in plays]
    rows += [
        (ava, "2025-06-05 10:00:00", b, 5_000, True, "fwdbtn"),
        (ava, "2025-06-06 10:00:00", d, 4_000, True, "fwdbtn"),
    ]
    for row in rows:
        query(
            db,
            "INSERT INTO plays (user_id, played_at, track_id, ms_played, skipped, reason_end, source) "
            "VALUES (%s, %s::timestamp AT TIME ZONE 'UTC', %s, %s, %s, %s, 'export')",
            row,
        )

    page = client.get("/time-machine", query_string={"played_year": "2025", "played_part": "summer"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "What you played in summer 2025" in html
    assert "3 tracks you played from 2025-06-01 to 2025-08-31" in html
    listed = re.findall(r'href="/tracks/([^"]+)"', html.split('id="preview"')[1])
    assert listed == [a, b, c]

    response = client.post(
        "/time-machine",
        data={"csrf_token": csrf_token(client, "/time-machine"), "played_year": "2025", "played_part": "summer"},
    )
    assert response.status_code == 302
    spotify_id, name, parameters = query(
        db, "SELECT spotify_id, name, parameters FROM playlists WHERE user_id = %s", (ava,)
    )[0]
    assert name == "Time machine: played in summer 2025"
    assert parameters == {"played": {"from": "2025-06-01", "to": "2025-08-31", "label": "summer 2025"}}
    recorded = emulator.state.playlists[spotify_id]
    assert [uri for uri, _added_at in recorded.items] == [f"spotify:track:{t}" for t in (a, b, c)]

    bad = client.get("/time-machine", query_string={"played_year": "20x5", "played_part": "summer"})
    assert bad.status_code == 400 and "is not a year" in bad.get_data(as_text=True)
