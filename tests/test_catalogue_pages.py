"""Artist and album pages, and the links that lead there: plays from ``plays``, rank
history from snapshots, the person's tracks with covers; tracks an export only named are
found by their artist's name; anything outside the person's own data is a 404."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import tracks_db
from catalogue import catalogue_db
from helpers import log_in_as
from people_data import LATEST, track


def add_plays(cur, user_id, rows):
    """rows: (played_at, track_id, track_name, artist_name, album_name, ms_played)"""
    for played_at, track_id, name, artist, album, ms in rows:
        cur.execute(
            "INSERT INTO plays (user_id, played_at, track_id, track_name, artist_name, album_name, ms_played, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 'export')",
            (user_id, played_at, track_id, name, artist, album, ms),
        )


def seed_abba(cur, ava, bob):
    """ava: two ABBA tracks (one a duet credited second), an export-only ABBA track with names
    only, a local-file play naming ABBA; bob's own ABBA plays must never count."""
    duet = track("tduet", "Duet Song", "Someone Else", "Duets", "1980-01-01")
    duet["artists"].append({"id": "arabba", "name": "ABBA", "type": "artist"})
    tracks_db.upsert_catalogue(cur, [duet, track("tabba2", "Mamma Mia", "ABBA", "Arrival", "1976-08-15")])
    cur.execute(
        "INSERT INTO tracks (spotify_id, name, artist_name, album_name, needs_enrichment)"
        " VALUES ('texport', 'Waterloo', 'ABBA', 'Waterloo', true)"
    )
    add_plays(
        cur,
        ava,
        [
            (datetime(2020, 5, 1, 10, tzinfo=UTC), "tdancing", "Dancing Queen", "ABBA", "Arrival", 180_000),
            (datetime(2021, 6, 1, 10, tzinfo=UTC), "tdancing", "Dancing Queen", "ABBA", "Arrival", 180_000),
            (datetime(2022, 7, 1, 10, tzinfo=UTC), "texport", "Waterloo", "ABBA", "Waterloo", 120_000),
            (datetime(2023, 8, 1, 10, tzinfo=UTC), None, "Home demo", "ABBA", "Tapes", 60_000),
            (datetime(2024, 9, 1, 10, tzinfo=UTC), "tduet", "Duet Song", "Someone Else", "Duets", 200_000),
        ],
    )
    add_plays(cur, bob, [(datetime(2019, 1, 1, tzinfo=UTC), "tabba2", "Mamma Mia", "ABBA", "Arrival", 1000)])


def test_an_artist_is_every_track_crediting_them_plus_name_only_tracks(conn, people):
    ava, bob = people["ava"], people["bob"]
    with conn.cursor() as cur:
        seed_abba(cur, ava, bob)
        ids = catalogue_db.artist_track_ids(cur, ava, ["arabba"], "ABBA")
        # tdancing (ranked), tduet (credited second), texport (names only); not bob's tabba2
        assert ids == ["tdancing", "tduet", "texport"]
        plays = catalogue_db.plays_summary(cur, ava, ids, "ABBA")
        # 2 + 1 + 1 plays of the tracks, and the local file that names ABBA
        assert plays["plays"] == 5 and plays["ms"] == 740_000
        assert plays["first_played_at"] == datetime(2020, 5, 1, 10, tzinfo=UTC)
        assert plays["last_played_at"] == datetime(2024, 9, 1, 10, tzinfo=UTC)
        history = catalogue_db.rank_history(cur, ava, ids)
        assert [(h["snapshot_date"], h["time_range"], h["best_rank"], h["tracks"]) for h in history] == [
            (date(2026, 9, 7), "short_term", 2, 1),
            (date(2026, 10, 5), "short_term", 3, 1),
            (LATEST, "short_term", 1, 1),
        ]
        assert catalogue_db.artist_track_ids(cur, bob, ["arabba"], "ABBA") == ["tabba2"]
        assert [a["spotify_id"] for a in catalogue_db.artists_named(cur, ava, "abba")] == ["arabba"]
        assert catalogue_db.artists_named(cur, ava, "Nobody") == []
        listed = catalogue_db.listed_tracks(cur, ava, ids)
        assert [t["spotify_id"] for t in listed] == ["tdancing", "tduet", "texport"]  # most played first
        assert listed[0]["cover_url"] == "https://i.scdn.co/image/tdancing300"  # the closest to 64 px


def test_the_artist_page_shows_plays_history_and_tracks_with_covers(client, conn, people):
    with conn.cursor() as cur:
        seed_abba(cur, people["ava"], people["bob"])
    log_in_as(client, people["ava"])
    track_page = client.get("/tracks/tduet").get_data(as_text=True)
    # every credited artist links to their page, the album to its page
    assert '<a href="/artists/arsomeoneelse">Someone Else</a>, <a href="/artists/arabba">ABBA</a>' in track_page
    assert 'href="/albums/altduet"' in track_page
    response = client.get("/artists/arabba")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<h1>ABBA</h1>" in html and "<h2>Your tracks by ABBA</h2>" in html
    facts = html.split('id="listening-facts"')[1].split("</dl>")[0]
    assert "<dd>3</dd>" in facts and "<dd>5 · 0.2 hours</dd>" in facts
    assert "2020-05-01" in facts and "2024-09-01" in facts
    assert 'id="rank-history-table"' in html and "<td>1 (1 track)</td>" in html
    tracks = html.split('id="tracks"')[1]
    assert tracks.index("Dancing Queen") < tracks.index("Duet Song") < tracks.index("Waterloo")
    assert "Mamma Mia" not in html  # bob's
    # covers: lazy, sized, with alt text; a track without JSON keeps the same box
    assert re.search(
        r'<img class="thumb" src="https://i.scdn.co/image/tdancing\d+" alt="Cover of Arrival" width="48" '
        r'height="48" loading="lazy"',
        html,
    )
    assert '<span class="thumb no-cover" aria-hidden="true"></span>' in html


def test_an_export_only_artist_has_a_page_by_name(client, conn, people):
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO tracks (spotify_id, name, artist_name, album_name, needs_enrichment)"
            " VALUES ('tkraft', 'Das Model', 'Kraftwerk', 'Computerwelt', true)"
        )
        add_plays(
            cur,
            people["ava"],
            [
                (datetime(2018, 3, 1, tzinfo=UTC), "tkraft", "Das Model", "Kraftwerk", "Computerwelt", 200_000),
                (datetime(2018, 4, 1, tzinfo=UTC), None, "Live tape", "kraftwerk", None, 100_000),
            ],
        )
    log_in_as(client, people["ava"])
    track_page = client.get("/tracks/tkraft").get_data(as_text=True)
    assert '<a href="/artists/by-name/Kraftwerk">Kraftwerk</a>' in track_page
    html = client.get("/artists/by-name/Kraftwerk").get_data(as_text=True)
    assert "<h1>Kraftwerk</h1>" in html and 'id="names-only"' in html
    assert "<dd>2 · 0.1 hours</dd>" in html and "2018-03-01" in html and "Das Model" in html
    # by name, the catalogue's artist of that name and the export's names-only tracks together
    abba = client.get("/artists/by-name/abba").get_data(as_text=True)
    assert "<h1>ABBA</h1>" in abba and "Dancing Queen" in abba and 'id="names-only"' not in abba
    assert client.get("/artists/by-name/AC/DC").status_code == 404  # a slash is part of a name
    assert client.get("/artists/by-name/Bruce Springsteen").status_code == 404  # bob's


def test_the_album_page(client, conn, people):
    with conn.cursor() as cur:
        seed_abba(cur, people["ava"], people["bob"])
    log_in_as(client, people["ava"])
    html = client.get("/albums/altdancing").get_data(as_text=True)
    assert "<h1>Arrival</h1>" in html and '<a href="/artists/arabba">ABBA</a>' in html
    assert 'alt="Cover of Arrival" width="160" height="160"' in html
    assert "<dd>2 · 0.1 hours</dd>" in html and "Dancing Queen" in html and "Mamma Mia" not in html
    assert 'id="rank-history-table"' in html


def test_other_peoples_artists_and_albums_are_404s(client, conn, people):
    with conn.cursor() as cur:
        seed_abba(cur, people["ava"], people["bob"])
    log_in_as(client, people["ava"])
    for path in (
        "/artists/arbrucespringsteen",  # bob's only
        "/albums/altbob",
        "/albums/altabba2",  # bob's Mamma Mia
        "/artists/nope",
        "/albums/" + "x" * 100,
        "/artists/%00",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        body = response.get_data(as_text=True)
        assert "Springsteen" not in body and "Mamma Mia" not in body, path


def test_top_tracks_now_link_to_track_pages_with_covers(client, people):
    log_in_as(client, people["ava"])
    html = client.get("/dashboard").get_data(as_text=True)
    top = html.split("Top tracks now")[1]
    assert '<a href="/tracks/tdancing">Dancing Queen</a>' in top
    assert 'alt="Cover of Arrival" width="40" height="40" loading="lazy"' in top
