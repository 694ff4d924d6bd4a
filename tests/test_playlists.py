"""Playlists from the past on fixed data with known answers: era selection, forgotten
gems, currently obsessed, mood; recording; bad input; other people's playlists."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from psycopg2.extras import Json

import playlists
import playlists_db
import tracks_db
from helpers import log_in_as
from people_data import LATEST, add_user, snap, track

NEXT_YEAR = date.today().year + 1


def ids(rows):
    return [row["spotify_id"] for row in rows]


def test_era_selection_is_the_persons_tracks_they_cared_about_most_first(conn, people):
    with conn.cursor() as cur:
        # tdancing: 3 snapshot rows; tnight and tqueen: 2 each, best rank 1 each, tnight saved
        assert ids(playlists_db.era_tracks(cur, people["ava"], 1970, 1979)) == ["tdancing", "tnight", "tqueen"]
        assert ids(playlists_db.era_tracks(cur, people["ava"], 1977, 1977)) == ["tnight"]  # year precision
        assert playlists_db.era_tracks(cur, people["ava"], 1980, 1989) == []  # 1984 is bob's
        assert len(playlists_db.era_tracks(cur, people["ava"], 1999, 1999)) == 25
        assert len(playlists_db.era_tracks(cur, people["ava"], 1999, 1999, limit=10)) == 10
        assert ids(playlists_db.era_tracks(cur, people["bob"], 1970, 1989)) == ["tbob", "tnight"]


def seed_sixties_listener(cur) -> int:
    """cleo's 1960s: names in reverse order of how much she listened, over three years."""
    sixties = [("t61apple", "Apple", "1961"), ("t61burn", "Burn", "1961"), ("t61call", "Call", "1961")]
    sixties += [("t61zed", "Zed", "1961"), ("t65yes", "Yes", "1965"), ("t65xylo", "Xylo", "1965")]
    sixties += [("t68wow", "Wow", "1968")]
    tracks_db.upsert_catalogue(cur, [track(i, name, "Sixties Band", "Sixties", year) for i, name, year in sixties])
    cleo = add_user(cur, "cleo-test")
    saved = {"t61apple": 1, "t61burn": 5, "t61call": 3, "t65xylo": 2}  # month of 2026 (Xylo: of 2025)
    for track_id, month in saved.items():
        year = 2025 if track_id == "t65xylo" else 2026
        cur.execute(
            "INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, %s, %s)",
            (cleo, track_id, datetime(year, month, 1, tzinfo=UTC)),
        )
    for n, track_id in enumerate(["t61zed", "t61zed", "t61zed", "t68wow"]):
        cur.execute(
            "INSERT INTO plays (user_id, played_at, track_id) VALUES (%s, %s, %s)",
            (cleo, datetime(2026, 10, 1, 12, n, tzinfo=UTC), track_id),
        )
    snap(cur, cleo, date(2026, 9, 7), "short_term", ["t65yes"])
    snap(cur, cleo, date(2026, 10, 5), "short_term", ["t65yes"])
    return cleo


def test_a_decade_is_what_was_listened_to_most_spread_over_its_years(conn):
    with conn.cursor() as cur:
        cleo = seed_sixties_listener(cur)
        chosen = ids(playlists_db.era_tracks(cur, cleo, 1960, 1969))
        one_year = ids(playlists_db.era_tracks(cur, cleo, 1961, 1961))
    # each year's best first (Zed played 3 times, Wow once, Yes ranked twice), then each
    # year's second (Burn saved in May, Xylo in 2025), then 1961's third and fourth
    assert chosen == ["t61zed", "t68wow", "t65yes", "t61burn", "t65xylo", "t61call", "t61apple"]
    assert one_year == ["t61zed", "t61burn", "t61call", "t61apple"]  # plays, then library recency


def test_the_time_machine_page_says_how_the_tracks_were_chosen(client, conn):
    with conn.cursor() as cur:
        cleo = seed_sixties_listener(cur)
    log_in_as(client, cleo)
    html = client.get("/time-machine?decade=1960s").get_data(as_text=True)
    assert html.index(">Zed<") < html.index(">Wow<") < html.index(">Apple<")
    assert "played most first, then by how often they were in your top tracks" in html
    assert "taking turns across the decade's years" in html
    assert "taking turns" not in client.get("/time-machine?year=1961").get_data(as_text=True)


def test_forgotten_gems(conn, people):
    with conn.cursor() as cur:
        gems = playlists_db.forgotten_gems(cur, people["ava"])
    # tnight ranked before the last four weeks (up to 2026-10-05) and is in no snapshot of
    # any range after it; tqueen is, in the long-term list of 2026-11-02, so it is no gem
    assert ids(gems) == ["tnight"]
    assert [(g["appearances"], g["best_rank"], g["last_ranked_on"]) for g in gems] == [(2, 1, date(2026, 10, 5))]
    with conn.cursor() as cur:
        assert ids(playlists_db.forgotten_gems(cur, people["bob"])) == []  # tbob still ranks for bob


def test_a_track_played_in_the_last_four_weeks_is_no_forgotten_gem(conn, people):
    with conn.cursor() as cur:
        cur.execute(  # 2026-10-06 is inside the four weeks up to the latest snapshot (2026-11-02)
            "INSERT INTO plays (user_id, played_at, track_id) VALUES (%s, '2026-10-06 12:00+00', 'tnight')",
            (people["ava"],),
        )
        assert playlists_db.forgotten_gems(cur, people["ava"]) == []
        cur.execute("DELETE FROM plays WHERE user_id = %s AND track_id = 'tnight'", (people["ava"],))
        cur.execute(  # before the window: still a gem
            "INSERT INTO plays (user_id, played_at, track_id) VALUES (%s, '2026-09-20 12:00+00', 'tnight')",
            (people["ava"],),
        )
        assert ids(playlists_db.forgotten_gems(cur, people["ava"])) == ["tnight"]


def test_currently_obsessed_are_this_months_risers(conn, people):
    with conn.cursor() as cur:
        risers = playlists_db.obsessed(cur, people["ava"])
    assert (risers["latest"], risers["baseline"]) == (LATEST, date(2026, 10, 5))
    # tdancing 3 -> 1; tdejavu and txss are new (counted from #5); tdance stayed at #2
    assert [(r["spotify_id"], r["previous_rank"], r["rank"], r["climbed"]) for r in risers["rows"]] == [
        ("tdancing", 3, 1, 2),
        ("tdejavu", None, 3, 2),
        ("txss", None, 4, 1),
    ]


def test_obsessed_needs_two_snapshot_days(conn):
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES ('newbie') RETURNING id")
        newbie = cur.fetchone()[0]
        assert playlists_db.obsessed(cur, newbie) == {"latest": None, "baseline": None, "rows": []}


def test_mood_tracks_by_energy_and_valence_quadrant(conn, people):
    with conn.cursor() as cur:
        assert playlists_db.audio_feature_count(cur, people["ava"]) == 0
        tracks_db.store_audio_features(
            cur,
            Json(
                [
                    {"id": "tnight", "energy": 0.9, "valence": 0.9},
                    {"id": "tdancing", "energy": 0.7, "valence": 0.8},
                    {"id": "tqueen", "energy": 0.3, "valence": 0.2},
                    {"id": "tbob", "energy": 0.9, "valence": 0.9},
                ]
            ),
        )
        assert playlists_db.audio_feature_count(cur, people["ava"]) == 3
        assert ids(playlists_db.mood_tracks(cur, people["ava"], "happy")) == ["tdancing", "tnight"]
        assert ids(playlists_db.mood_tracks(cur, people["ava"], "sad")) == ["tqueen"]
        assert playlists_db.mood_tracks(cur, people["ava"], "calm") == []


def test_the_mood_link_appears_only_with_audio_features(client, conn, people):
    log_in_as(client, people["ava"])
    for path in ("/playlists", "/playlists/forgotten-gems", "/time-machine"):
        html = client.get(path).get_data(as_text=True)
        assert 'href="/playlists/mood"' not in html, path
        assert "No mood playlist: it needs audio features" in html, path
    with conn.cursor() as cur:
        tracks_db.store_audio_features(cur, Json([{"id": "tnight", "energy": 0.9, "valence": 0.9}]))
    for path in ("/playlists", "/playlists/forgotten-gems", "/time-machine"):
        html = client.get(path).get_data(as_text=True)
        assert 'href="/playlists/mood"' in html and "No mood playlist" not in html, path
    mood = client.get("/playlists/mood").get_data(as_text=True)
    assert 'id="mood-unavailable"' not in mood and "1 track of yours has audio features" in mood


def test_record_playlist_keeps_order_and_first_position_of_repeats(conn, people):
    with conn.cursor() as cur:
        playlist_id = playlists_db.record_playlist(
            cur,
            people["ava"],
            "time_machine",
            "Test",
            {"year": 1977},
            "sp123",
            ["tnight", "tqueen", "tnight", "tdancing"],
        )
        playlist = playlists_db.user_playlist(cur, people["ava"], playlist_id)
        assert [(t["position"], t["spotify_id"]) for t in playlist["tracks"]] == [
            (0, "tnight"),
            (1, "tqueen"),
            (3, "tdancing"),
        ]
        assert playlist["parameters"] == {"year": 1977}
        assert playlists_db.user_playlist(cur, people["bob"], playlist_id) is None
        assert [p["name"] for p in playlists_db.user_playlists(cur, people["ava"])] == ["Test"]


@pytest.mark.parametrize(
    "year, decade, message",
    [
        ("1899", "", "between 1900 and"),
        (str(NEXT_YEAR + 1), "", "between 1900 and"),
        ("nineteen", "", "is not a year"),
        ("-1990", "", "is not a year"),
        ("1999.5", "", "is not a year"),
        ("१९९९", "", "is not a year"),
        ("9" * 400, "", "between 1900 and"),
        ("", "1995s", "no decade"),
        ("", "2200s", "no decade"),
        ("", "1890s", "no decade"),
        ("", "<script>", "no decade"),
    ],
)
def test_bad_years_and_decades_are_400_with_the_message_on_the_form(client, conn, people, year, decade, message):
    log_in_as(client, people["ava"])
    response = client.get("/time-machine", query_string={"year": year, "decade": decade})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in html and 'role="alert"' in html and '<form method="get"' in html
    assert "<script>" not in html.split("<main")[1]


def test_bad_year_on_create_is_400_too(client, conn, people):
    from helpers import csrf_token

    log_in_as(client, people["ava"])
    token = csrf_token(client, "/time-machine")
    response = client.post("/time-machine", data={"csrf_token": token, "year": "1850"})
    assert response.status_code == 400 and "between 1900 and" in response.get_data(as_text=True)
    assert client.post("/time-machine", data={"year": "1977"}).status_code == 400  # no CSRF token


def test_time_machine_preview_shows_own_tracks_and_survives_spotify_being_unreachable(client, conn, people):
    log_in_as(client, people["ava"])  # no Spotify tokens in this fixture: search top-up fails softly
    html = client.get("/time-machine?decade=1970s").get_data(as_text=True)
    assert "3 tracks: 3 of yours" in html and html.index("Dancing Queen") < html.index("Night Fever")
    assert "Spotify search could not add more tracks" in html
    assert 'name="decade" value="1970s"' in html  # the create form carries the era
    assert 'role="alert"' not in html
    assert client.get("/time-machine").status_code == 200
    assert playlists.parse_era("", "1970") == playlists.parse_era(None, "1970s")


def test_builder_pages_render_known_answers(client, conn, people):
    log_in_as(client, people["ava"])
    gems = client.get("/playlists/forgotten-gems").get_data(as_text=True)
    assert "1 gem." in gems and "Night Fever" in gems and "Bohemian Rhapsody" not in gems
    obsessed = client.get("/playlists/obsessed").get_data(as_text=True)
    assert "3 risers" in obsessed and "#3 → #1" in obsessed and "new at #3" in obsessed
    mood = client.get("/playlists/mood")
    assert mood.status_code == 200 and 'id="mood-unavailable"' in mood.get_data(as_text=True)
    assert 'href="/playlists/mood"' not in mood.get_data(as_text=True)
    assert client.get("/playlists/mood?mood=ecstatic").status_code == 400


def test_other_peoples_playlists_are_404_and_never_listed(client, conn, people):
    log_in_as(client, people["ava"])
    listing = client.get("/playlists").get_data(as_text=True)
    assert "Bob 1984" not in listing and "No playlists yet" in listing
    for path in (f"/playlists/{people['bob_playlist']}", "/playlists/999999999", "/playlists/99999999999999999999999"):
        response = client.get(path)
        assert response.status_code == 404 and "Bob 1984" not in response.get_data(as_text=True)
    log_in_as(client, people["bob"])
    page = client.get(f"/playlists/{people['bob_playlist']}").get_data(as_text=True)
    link = "/open/playlist/bobplaylist"  # demo mode: the emulator's page of the playlist
    assert "Bob 1984" in page and link in page
    assert link in client.get("/playlists").get_data(as_text=True)


class FakeSpotify:
    """Stands in for SpotifyClient: search answers pages of 1977 tracks; calls are kept."""

    def __init__(self, found):
        self.found, self.searches, self.created, self.added = found, [], [], []

    def search_tracks(self, query, limit=10, offset=0):
        self.searches.append((query, limit, offset))
        return self.found[offset : offset + limit]

    def create_playlist(self, name, description):
        self.created.append(name)
        return {"id": "fakeplaylist", "external_urls": {"spotify": "https://open.spotify.com/playlist/fakeplaylist"}}

    def add_to_playlist(self, playlist_id, uris):
        self.added.append((playlist_id, list(uris)))


def test_a_short_era_is_topped_up_from_search_then_created_and_recorded(client, conn, people, monkeypatch):
    from helpers import csrf_token
    from people_data import track

    found = [
        track("tnight", "Night Fever", "Bee Gees", "Saturday Night Fever", "1977", precision="year"),
        track("tother", "Wrong Year", "Somebody", "Later", "1985-01-01"),  # search may stray: filtered
        *[track(f"tsearch{n:02d}", f"Found {n}", "Searched Artist", "Found Album", "1977-06-01") for n in range(40)],
    ]
    fake = FakeSpotify(found)
    monkeypatch.setattr(playlists, "spotify_client", lambda: fake)
    log_in_as(client, people["ava"])
    html = client.get("/time-machine?year=1977").get_data(as_text=True)
    assert "29 tracks: 1 of yours, 28 from Spotify search" in html
    # three calls of ten at most: 30 results, less the one ava has and the stray year
    assert [s[0] for s in fake.searches] == ["year:1977"] * 3 and all(s[1] == 10 for s in fake.searches)

    response = client.post("/time-machine", data={"csrf_token": csrf_token(client, "/time-machine"), "year": "1977"})
    assert response.status_code == 302
    assert fake.created == ["Time machine: 1977"]
    uris = [uri for _, chunk in fake.added for uri in chunk]
    assert uris[0] == "spotify:track:tnight" and len(uris) == 29 and "spotify:track:tother" not in uris
    with conn.cursor() as cur:  # the searched tracks joined the catalogue, the playlist was recorded in order
        cur.execute("SELECT count(*) FROM tracks WHERE spotify_id LIKE 'tsearch%%'")
        assert cur.fetchone()[0] == 28
        cur.execute(
            """SELECT p.kind, p.parameters, p.spotify_id, array_agg(pt.track_id ORDER BY pt.position)
                       FROM playlists p JOIN playlist_tracks pt ON pt.playlist_id = p.id
                       WHERE p.user_id = %s GROUP BY p.id""",
            (people["ava"],),
        )
        kind, parameters, spotify_id, track_ids = cur.fetchone()
    assert (kind, parameters, spotify_id) == ("time_machine", {"year": 1977}, "fakeplaylist")
    assert track_ids == [uri.rsplit(":", 1)[1] for uri in uris]
    assert "Time machine: 1977" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_whether_any_track_has_audio_features_is_one_look_at_an_index(conn):
    """The usual catalogue of 2026 has no audio features: the mood link's question then
    reads an (empty) index, not every play of the person. Sequential scans are off so the
    planner shows whether an index can answer at all on this small test catalogue."""
    with conn.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN (FORMAT JSON) " + playlists_db.ANY_AUDIO_FEATURES)
        plan = json.dumps(cur.fetchone()[0])
    assert "tracks_with_audio_features_idx" in plan
