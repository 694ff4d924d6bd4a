"""The account (its page is /settings): status, the streamed JSON and CSV exports, and deleting an account (all of
the person's rows, none of anybody else's)."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter

import pytest

import account_db
from helpers import csrf_token, log_in_as

USER_TABLES = ("snapshots", "saved_tracks", "plays", "playlists", "sync_runs", "spotify_tokens")


@pytest.fixture
def people(people, conn):
    ids = people
    with conn.cursor() as cur:  # a sync run, a token and a playlist for ava too
        cur.execute(
            "INSERT INTO sync_runs (user_id, status, stage, finished_at) VALUES (%s, 'succeeded', 'done', now())",
            (ids["ava"],),
        )
        cur.execute(
            "INSERT INTO spotify_tokens (user_id, access_token, expires_at, refresh_token_expires_at) "
            "VALUES (%s, 'x', '2026-11-02 19:30+00', '2027-05-03 18:30+00')",
            (ids["ava"],),
        )
        cur.execute(
            "INSERT INTO playlists (user_id, kind, name, spotify_id) VALUES (%s, 'obsessed', 'Ava obsessed', 'avapl') "
            "RETURNING id",
            (ids["ava"],),
        )
        cur.execute(
            "INSERT INTO playlist_tracks (playlist_id, track_id, position) VALUES (%s, 'tdance', 0), (%s, 'tnight', 1)",
            (cur.fetchone()[0],) * 2,
        )
    return ids


@pytest.fixture
def streamed_on_test_connection(conn, monkeypatch):
    """A streamed body runs after the request's teardown, so it borrows a connection of its
    own (production) - here it must use the test's rolled-back one instead, which the app
    fixture only pins in before_request."""
    import account
    import database

    monkeypatch.setattr(account, "transaction", lambda given=None: database.transaction(given or conn))


def counts(conn, user_id):
    with conn.cursor() as cur:
        found = {}
        for table in USER_TABLES:
            cur.execute(f"SELECT count(*) FROM {table} WHERE user_id = %s", (user_id,))
            found[table] = cur.fetchone()[0]
        cur.execute(
            "SELECT count(*) FROM playlist_tracks pt JOIN playlists p ON p.id = pt.playlist_id WHERE p.user_id = %s",
            (user_id,),
        )
        found["playlist_tracks"] = cur.fetchone()[0]
        cur.execute("SELECT count(*) FROM users WHERE id = %s", (user_id,))
        found["users"] = cur.fetchone()[0]
    return found


def test_settings_page_shows_status_token_expiry_and_last_snapshot(client, conn, people):
    log_in_as(client, people["ava"])
    html = client.get("/settings").get_data(as_text=True)
    assert "2026-11-02" in html and "renewable until 2027-05-03" in html and "last synced" in html
    assert "12 snapshot rows · 26 saved tracks · 1 plays · 1 playlists" in html
    assert 'action="/settings/delete"' in html and 'name="csrf_token"' in html


def test_json_export_holds_every_row_of_the_person_and_nothing_of_others(
    client, conn, people, streamed_on_test_connection
):
    log_in_as(client, people["ava"])
    response = client.get("/settings/export.json")
    assert response.status_code == 200 and response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"] and response.headers["Cache-Control"] == "no-store"
    data = json.loads(response.get_data(as_text=True))
    assert data["user"]["spotify_id"] == "ava-test"
    assert {k: len(v) for k, v in data.items() if isinstance(v, list)} == {
        "snapshots": 12,
        "saved_tracks": 26,
        "plays": 1,
        "playlists": 1,
        "sync_runs": 1,
        "tracks": 31,
    }
    assert data["snapshots"][0] == {
        "snapshot_date": "2026-09-07",
        "time_range": "short_term",
        "rank": 1,
        "track_id": "tnight",
    }
    assert data["playlists"][0]["track_ids"] == ["tdance", "tnight"]
    assert "tbob" not in json.dumps(data) and "Bob 1984" not in json.dumps(data)


def test_csv_export_is_one_flat_table_in_batches(client, conn, people, monkeypatch, streamed_on_test_connection):
    monkeypatch.setattr(account_db, "EXPORT_BATCH", 5)  # many chunks, one named-cursor fetch each
    log_in_as(client, people["ava"])
    response = client.get("/settings/export.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert Counter(r["kind"] for r in rows) == {"snapshot": 12, "saved": 26, "played": 1, "playlist_entry": 2}
    first = rows[0]
    assert (first["kind"], first["track_name"], first["artist_name"]) == ("saved", "Night Fever", "Bee Gees")
    assert not any(r["track_id"] == "tbob" for r in rows)


def test_delete_needs_confirmation_and_csrf(client, conn, people):
    log_in_as(client, people["ava"])
    before = counts(conn, people["ava"])
    assert client.post("/settings/delete", data={"confirm": "DELETE"}).status_code == 400  # no CSRF token
    response = client.post("/settings/delete", data={"csrf_token": csrf_token(client, "/settings"), "confirm": "yes"})
    assert response.status_code == 400 and "to confirm" in response.get_data(as_text=True)
    assert counts(conn, people["ava"]) == before


def test_delete_removes_everything_of_the_person_and_nothing_of_others_then_logs_out(client, conn, people):
    log_in_as(client, people["ava"])
    bob_before = counts(conn, people["bob"])
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM tracks")
        tracks_before = cur.fetchone()[0]
    response = client.post(
        "/settings/delete", data={"csrf_token": csrf_token(client, "/settings"), "confirm": "DELETE"}
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("/")
    assert set(counts(conn, people["ava"]).values()) == {0}
    assert counts(conn, people["bob"]) == bob_before
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM tracks")
        assert cur.fetchone()[0] == tracks_before  # the shared catalogue stays
    assert client.get("/settings").status_code == 302  # logged out
