"""Spotify as it really is in late 2026 (issue 12), met by the app through the emulator:
accounts linked by account_id, the development-mode allowlist, 429 QUOTA_EXCEEDED,
invalid_grant that is not a revocation, items that are not tracks, real-world quirks.
Real spotipy over real HTTP, a real PostgreSQL; each test gets a fresh database."""

from __future__ import annotations

import logging
from datetime import date

import spotify
import sync
import token_keys
from conftest import FROZEN_NOW
from emulator import listeners as emulator_listeners
from emulator import objects as emulator_objects
from helpers import (
    age_relogin_mark,
    approve,
    expire_access_token,
    log_in,
    query,
    sign_in_and_sync,
    start_login,
    user_id,
)

TOMORROW = date(2026, 11, 24)


def account_id_of(listener: str) -> str:
    return emulator_objects.user_object("", listener)["account_id"]


def users(db) -> list:
    return query(db, "SELECT id, spotify_id, account_id FROM users ORDER BY id")


# -- accounts are linked by account_id (May 2026 changelog) -------------------------------
def test_login_stores_the_account_id(spotify_app, emulator, db):
    sign_in_and_sync(spotify_app.test_client(), emulator, "ava")  # the first sync must end here
    assert [(spotify_id, account) for _, spotify_id, account in users(db)] == [("ava", account_id_of("ava"))]


def test_a_user_from_before_account_id_keeps_their_row_and_gets_it_filled(spotify_app, emulator, db):
    (old_id,) = query(db, "INSERT INTO users (spotify_id, display_name) VALUES ('bruno', 'Bruno') RETURNING id")[0]
    sign_in_and_sync(spotify_app.test_client(), emulator, "bruno")  # the first sync must end here
    assert users(db) == [(old_id, "bruno", account_id_of("bruno"))]


def test_account_id_finds_the_user_even_when_the_spotify_id_changed(spotify_app, emulator, db):
    (known,) = query(
        db,
        "INSERT INTO users (spotify_id, account_id) VALUES ('chen-before', %s) RETURNING id",
        (account_id_of("chen"),),
    )[0]
    sign_in_and_sync(spotify_app.test_client(), emulator, "chen")  # the first sync must end here
    assert users(db) == [(known, "chen", account_id_of("chen"))]


def test_an_id_linked_to_another_account_is_not_handed_over(spotify_app, emulator, db):
    query(db, "INSERT INTO users (spotify_id, account_id) VALUES ('dana', 'someone-else')")
    client = spotify_app.test_client()
    response = client.get("/callback", query_string=approve(emulator, start_login(client), "dana"))
    assert response.status_code == 400 and "does not match" in response.get_data(as_text=True)
    assert users(db)[0][2] == "someone-else" and query(db, "SELECT count(*) FROM spotify_tokens")[0][0] == 0


# -- development mode: five users the owner added (February 2026) -------------------------
def test_a_person_not_in_the_dashboard_is_told_what_the_owner_must_do(spotify_app, emulator, db, allowlist):
    allowlist(["ava"])
    client = spotify_app.test_client()
    response = client.get("/callback", query_string=approve(emulator, start_login(client), "emeka"))
    page = response.get_data(as_text=True)
    assert response.status_code == 403
    for words in ("Developer Dashboard", "User Management", "e-mail address", "5 users", "Premium"):
        assert words in page
    assert users(db) == []


def test_a_person_removed_from_the_dashboard_reads_why_their_sync_failed(spotify_app, emulator, db, allowlist):
    sign_in_and_sync(spotify_app.test_client(), emulator, "ava")
    allowlist(["bruno"])
    outcome = sync.sync_now(spotify.settings_for(spotify_app), user_id(db, "ava"), day=TOMORROW)
    assert "User Management" in outcome["error"] and "at most 5 users" in outcome["error"]


# -- 429 QUOTA_EXCEEDED (July 2026 changelog) ---------------------------------------------
def test_a_used_up_quota_is_not_retried_and_both_person_and_operator_are_told(spotify_app, emulator, db, caplog):
    sign_in_and_sync(spotify_app.test_client(), emulator, "chen")
    uid = user_id(db, "chen")
    # one refusal only: a client that retried would get its answer on the second try
    emulator.faults.rate_limit(retry_after=1, times=1, path_prefix="/v1/me/top", reason="QUOTA_EXCEEDED")
    with caplog.at_level(logging.INFO):
        outcome = sync.sync_now(spotify.settings_for(spotify_app), uid, day=TOMORROW)
    assert "used up its Spotify quota" in outcome["error"] and "administrator has been told" in outcome["error"]
    operator = [r for r in caplog.records if r.levelno >= logging.WARNING and "QUOTA_EXCEEDED" in r.getMessage()]
    assert len(operator) == 1 and operator[0].levelno == logging.ERROR
    (blob,) = query(db, "SELECT access_token_encrypted FROM spotify_tokens WHERE user_id = %s", (uid,))[0]
    access = token_keys.decrypt(token_keys.cipher(spotify_app.config["SECRET_KEY"]), blob)
    assert access and access not in caplog.text
    assert query(db, "SELECT count(*) FROM snapshots WHERE snapshot_date = %s", (TOMORROW,))[0][0] == 0


def test_a_used_up_quota_at_login_is_a_503_with_retry_after(spotify_app, emulator, db):
    client = spotify_app.test_client()
    callback = approve(emulator, start_login(client), "ava")
    emulator.faults.rate_limit(retry_after=7200, path_prefix="/v1/me", reason="QUOTA_EXCEEDED")
    response = client.get("/callback", query_string=callback)
    assert response.status_code == 503 and response.headers["Retry-After"] == "7200"
    assert "used up its Spotify quota" in response.get_data(as_text=True) and "about 2 hours" in response.get_data(
        as_text=True
    )
    assert users(db) == []


def test_the_daily_snapshot_stops_at_a_used_up_quota(spotify_app, emulator, db):
    for listener in ("ava", "chen", "dana"):
        sign_in_and_sync(spotify_app.test_client(), emulator, listener)
    emulator.faults.rate_limit(retry_after=3600, reason="QUOTA_EXCEEDED")
    result = spotify_app.test_cli_runner().invoke(args=["snapshot"])
    assert result.exit_code == 1
    assert result.output.count("used up its Spotify quota") == 1
    assert "Stopped: Spotify's quota for this app is used up; 2 users not tried." in result.output


# -- invalid_grant is not always a revocation (listenbrainz-server PR 1921) ---------------
def relogin_mark(db, uid):
    return query(db, "SELECT needs_relogin_since IS NOT NULL, invalid_grant_count FROM users WHERE id = %s", (uid,))[0]


def refresh_token_kept(db, uid) -> bool:
    return (
        query(
            db, "SELECT count(*) FROM spotify_tokens WHERE user_id = %s AND refresh_token_encrypted IS NOT NULL", (uid,)
        )[0][0]
        == 1
    )


def test_an_invalid_grant_during_a_spotify_incident_loses_nothing(spotify_app, emulator, db):
    client = sign_in_and_sync(spotify_app.test_client(), emulator, "ava")
    uid, settings = user_id(db, "ava"), spotify.settings_for(spotify_app)
    emulator.faults.invalid_grant(times=1)  # one false revocation, then Spotify is fine again
    expire_access_token(db, uid)
    first = sync.sync_now(settings, uid, day=TOMORROW)
    assert "try once more later" in first["error"] and "log in again" in first["error"]
    assert refresh_token_kept(db, uid) and relogin_mark(db, uid) == (True, 1)
    # the next visit says so, and the person is still signed in to their history
    for page in ("/dashboard", "/settings"):
        response = client.get(page)
        assert response.status_code == 200 and "Spotify stopped accepting" in response.get_data(as_text=True)
    # before the retry is due Spotify is not asked (it would have answered: the fault is used up)
    assert "try once more later" in sync.sync_now(settings, uid, day=TOMORROW)["error"]
    assert relogin_mark(db, uid) == (True, 1)
    age_relogin_mark(db, uid)
    assert "summary" in sync.sync_now(settings, uid, day=TOMORROW)  # the one retry works
    assert relogin_mark(db, uid) == (False, 0)
    assert "Spotify stopped accepting" not in client.get("/dashboard").get_data(as_text=True)


def test_a_confirmed_invalid_grant_deletes_the_tokens_and_a_new_login_clears_the_notice(spotify_app, emulator, db):
    client = sign_in_and_sync(spotify_app.test_client(), emulator, "bruno")
    uid, settings = user_id(db, "bruno"), spotify.settings_for(spotify_app)
    emulator.state.revoke_refresh_tokens("bruno")
    expire_access_token(db, uid)
    sync.sync_now(settings, uid, day=TOMORROW)
    assert refresh_token_kept(db, uid)
    age_relogin_mark(db, uid)
    confirmed = sync.sync_now(settings, uid, day=TOMORROW)
    assert "no longer accepts" in confirmed["error"] and relogin_mark(db, uid) == (True, 2)
    assert query(db, "SELECT count(*) FROM spotify_tokens WHERE user_id = %s", (uid,))[0][0] == 0
    assert "Spotify stopped accepting" in client.get("/settings").get_data(as_text=True)
    log_in(client, emulator, "bruno")  # logging in again: new tokens, no notice (no first sync: not new)
    assert relogin_mark(db, uid) == (False, 0) and refresh_token_kept(db, uid)
    assert "Spotify stopped accepting" not in client.get("/settings").get_data(as_text=True)


# -- items that are not tracks; the demo listeners' real-world quirks ----------------------
def played_kinds(listener: str) -> dict:
    kinds = [
        emulator_listeners.parse_played_item(item)[0]
        for item, _ in emulator_listeners.recently_played(listener, FROZEN_NOW)
    ]
    return {"track": kinds.count("track"), "episode": kinds.count("episode"), "local file": kinds.count("local")}


NOT_A_TRACK = "SELECT count(*) FROM tracks WHERE raw_json->>'type' <> 'track' OR (raw_json->>'is_local')::boolean"


def test_a_sync_stores_no_episode_and_no_local_file_as_a_track(spotify_app, emulator, db):
    listener = next(u for u in emulator_listeners.DEMO_USERS if all(played_kinds(u).values()))
    expected = played_kinds(listener)
    client = sign_in_and_sync(spotify_app.test_client(), emulator, listener)
    summary = client.get("/api/sync/status").get_json()["summary"]
    assert summary["skipped"] == {"episode": expected["episode"], "local file": expected["local file"]}
    assert query(db, NOT_A_TRACK)[0][0] == 0
    assert (
        query(db, "SELECT count(*) FROM plays WHERE user_id = %s", (user_id(db, listener),))[0][0] == expected["track"]
    )


def saved(track, added_at="2026-10-01T10:00:00Z") -> dict:
    return {"added_at": added_at, "track": track}


def test_saved_episodes_local_files_and_items_under_item_are_never_tracks(conn):
    track = emulator_objects.track_object(
        "http://emulator", emulator_listeners.top_track_ids("ava", "short_term", FROZEN_NOW.date())[0]
    )
    episode = emulator_objects.episode_object("http://emulator", 0, 7)
    local = emulator_objects.local_track_object(track["id"])
    track_shaped_episode = {**track, "id": "5Xk1bVzVVcPH5eDyR9y1ZD", "type": "episode", "episode": True, "track": False}
    fetched = sync.Fetched(
        top={"short_term": [track]},
        saved=[
            saved(episode),
            saved(local),
            saved(track_shaped_episode),
            saved(None),
            {"added_at": "2026-10-02T10:00:00Z", "item": track},
        ],
        plays=[{"played_at": "2026-11-01T10:00:00Z", "item": episode, "track": episode}],
    )
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES ('classified') RETURNING id")
        uid = cur.fetchone()[0]
        summary = sync.store_everything(cur, uid, TOMORROW, fetched)
        cur.execute("SELECT spotify_id FROM tracks")
        assert [r[0] for r in cur.fetchall()] == [track["id"]]
        cur.execute("SELECT track_id FROM saved_tracks WHERE user_id = %s", (uid,))
        assert [r[0] for r in cur.fetchall()] == [track["id"]]  # the one under `item` (playlist shape)
    assert summary["skipped"] == {"episode": 3, "local file": 1, "unavailable": 1} and summary["new_plays"] == 0


def test_playlist_items_carry_their_track_under_item(spotify_app, emulator, db):
    sign_in_and_sync(spotify_app.test_client(), emulator, "ava")
    client = spotify.SpotifyClient.for_user(spotify.settings_for(spotify_app), user_id(db, "ava"))
    track_id = query(db, "SELECT track_id FROM snapshots ORDER BY rank LIMIT 1")[0][0]
    playlist = client.create_playlist("Classified", "items under item")
    client.add_to_playlist(playlist["id"], [f"spotify:track:{track_id}"])
    (item,) = client._call(client._sp._get, f"playlists/{playlist['id']}/items")["items"]
    assert "track" not in item  # February 2026: `item`, the old `track` gone for development mode
    assert spotify.carried(item)["id"] == track_id and spotify.item_kind(item) == "track"
    assert spotify.item_kind({"track": item["item"]}) == "track"  # the old shape still reads


def test_quirky_catalogue_data_is_stored_honestly_and_pages_still_render(spotify_app, emulator, db):
    client = sign_in_and_sync(spotify_app.test_client(), emulator, "emeka")  # a 5,000-track library
    no_cover = query(db, "SELECT spotify_id FROM tracks WHERE raw_json->'album'->'images' = '[]' LIMIT 1")[0][0]
    year_zero = query(
        db, "SELECT spotify_id, release_date FROM tracks WHERE raw_json->'album'->>'release_date' = '0000' LIMIT 1"
    )[0]
    assert year_zero[1] is None  # "0000" is no date: not year 1, not an error
    for track in (no_cover, year_zero[0]):
        page = client.get(f"/tracks/{track}")
        assert page.status_code == 200, track
    # no broken image where the track's own cover would be (its similar tracks keep theirs)
    assert '<img class="cover"' not in client.get(f"/tracks/{no_cover}").get_data(as_text=True)
    assert '<img class="cover"' in client.get(f"/tracks/{year_zero[0]}").get_data(as_text=True)
    assert client.get("/dashboard").status_code == 200
