"""The track page: raw_json facts read in SQL, rank history, similar tracks, and 404 for
anything outside the person's own data."""

from __future__ import annotations

from datetime import date

from psycopg2.extras import Json

import tracks_db
from helpers import log_in_as
from people_data import LATEST, track


def test_track_facts_come_from_columns_and_raw_json(conn, people):
    with conn.cursor() as cur:
        track = tracks_db.user_track(cur, people["ava"], "tdance")
        assert track["isrc"] == "GBAHT2300001" and track["release_date_text"] == "2023-05-26"
        assert track["raw_album_name"] == "Barbie The Album" and track["album_type"] == "album"
        assert track["album_image_url"] == "https://i.scdn.co/image/tdance300"  # closest to 300 px
        assert (track["best_rank"], track["first_ranked_on"], track["saved_at"]) == (2, date(2026, 9, 7), None)
        assert tracks_db.user_track(cur, people["ava"], "tbob") is None  # bob's track
        assert tracks_db.user_track(cur, people["ava"], "nope") is None
        assert tracks_db.user_track(cur, people["ava"], "tdejavu")["plays"] == 1
        history = tracks_db.rank_history(cur, people["ava"], "tqueen")
        assert [(h["snapshot_date"], h["time_range"], h["rank"]) for h in history] == [
            (date(2026, 10, 5), "short_term", 4),
            (LATEST, "long_term", 1),
        ]


def test_similar_tracks_by_artist_and_era_without_audio_features(conn, people):
    with conn.cursor() as cur:
        tracks_db.upsert_catalogue(
            cur, [track("tstayin", "Stayin' Alive 2010 Remix", "Bee Gees", "Remixes", "2010", precision="year")]
        )
        cur.execute(
            "INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, 'tstayin', now())", (people["ava"],)
        )
        similar = tracks_db.similar_tracks(cur, people["ava"], "tnight")
        assert similar["method"] == "artist_and_era"
        # the same artist whatever the year, then released within 3 years of 1977, nearest
        # first (1976-08-15, then 1975-10-31); bob's 1984 track never
        assert [r["spotify_id"] for r in similar["rows"]] == ["tstayin", "tdancing", "tqueen"]


def test_similar_tracks_by_audio_features_when_present(conn, people):
    features = [
        {"id": "tnight", "energy": 0.8, "valence": 0.9, "danceability": 0.8, "acousticness": 0.1, "tempo": 110},
        {"id": "tdancing", "energy": 0.75, "valence": 0.85, "danceability": 0.8, "acousticness": 0.1, "tempo": 100},
        {"id": "tqueen", "energy": 0.3, "valence": 0.2, "danceability": 0.3, "acousticness": 0.6, "tempo": 70},
        {"id": "tbob", "energy": 0.8, "valence": 0.9, "danceability": 0.8, "acousticness": 0.1, "tempo": 110},
    ]
    with conn.cursor() as cur:
        tracks_db.store_audio_features(cur, Json(features))
        similar = tracks_db.similar_tracks(cur, people["ava"], "tnight")
    assert similar["method"] == "audio_features"
    assert [r["spotify_id"] for r in similar["rows"]] == ["tdancing", "tqueen"]  # bob's twin is not ava's


def test_track_page_shows_facts_chart_data_and_404s_for_other_peoples_tracks(client, conn, people):
    log_in_as(client, people["ava"])
    html = client.get("/tracks/tqueen").get_data(as_text=True)
    assert "Bohemian Rhapsody" in html and "A Night at the Opera" in html and "1975-10-31" in html
    assert 'id="rank-history-data"' in html and 'id="rank-history-table"' in html
    # Spotify's long_term covers about a year: the track page says so, as the dashboard does
    assert "About a year" in html and "All time" not in html
    assert "About a year" in client.get("/dashboard").get_data(as_text=True)
    assert "vendor/chart.umd.min.js" in html and "track_chart.js" in html
    assert "<script>" not in html.split('id="rank-history-data"')[0]  # no inline script anywhere before
    hostile = client.get("/tracks/txss").get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hostile and "<script>alert" not in hostile
    for other in ("tbob", "doesnotexist", "x" * 500, "'; DROP TABLE tracks; --", "t%00x", "%E2%98%83"):
        response = client.get(f"/tracks/{other}")
        assert response.status_code == 404, other
        assert "Dancing in the Dark" not in response.get_data(as_text=True)
