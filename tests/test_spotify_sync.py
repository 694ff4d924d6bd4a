"""Log in, call back, sync, snapshot: the real spotipy over real HTTP to the emulator, a real
PostgreSQL, and the app's own routes. Each test gets a fresh database: syncs commit, and
run on threads of their own, as in production."""

from __future__ import annotations

import logging
import time
from datetime import UTC, date, datetime, timedelta

import pytest
import requests

import spotify
import sync
from emulator.listeners import served_top_track_ids
from helpers import (
    age_relogin_mark,
    approve,
    expire_access_token,
    log_in,
    query,
    sign_in_and_sync,
    start_login,
    user_id,
    wait_for_sync,
    wait_until,
)

TODAY = date(2026, 11, 23)


@pytest.mark.parametrize("spotify_app", [26], indirect=True)
def test_login_callback_first_sync_records_history(spotify_app, emulator, db):
    client = spotify_app.test_client()
    log_in(client, emulator, "ava")
    status = wait_for_sync(client)
    assert status["status"] == "succeeded", status
    summary = status["summary"]
    uid = user_id(db, "ava")

    today = date.today()
    per_range = dict(
        query(
            db,
            "SELECT time_range, count(*) FROM snapshots WHERE user_id = %s AND snapshot_date = %s GROUP BY 1",
            (uid, today),
        )
    )
    expected = {r: len(emulator.top_tracks_as_of("ava", r, FROZEN_DAY)) for r in spotify.TIME_RANGES}
    assert per_range == expected and all(n > 50 for n in per_range.values())  # paged past 50
    # Spotify answers nothing from offset 50 on: offset 0 and 49, the overlap dropped, rank 1..99
    ranks = query(
        db,
        "SELECT time_range, snapshot_date, array_agg(rank ORDER BY rank) FROM snapshots WHERE user_id = %s "
        "GROUP BY 1, 2",
        (uid,),
    )
    assert len(ranks) == 3 * 27

    def served_ranks(time_range, day):  # a track a top list names twice keeps its first rank
        served = served_top_track_ids("ava", time_range, FROZEN_DAY if day == today else day)
        return [n for n, track in enumerate(served, start=1) if track not in served[: n - 1]]

    assert all(r == served_ranks(time_range, day) for time_range, day, r in ranks)
    assert sum(r == list(range(1, 100)) for _, _, r in ranks) > 0.9 * len(ranks)
    assert all(ranks_of_today == list(range(1, 100)) for _, day, ranks_of_today in ranks if day == today)
    # demo mode: six months of weekly history at once, so the dashboards move on day one
    days = query(db, "SELECT count(DISTINCT snapshot_date) FROM snapshots WHERE user_id = %s", (uid,))[0][0]
    assert days == 1 + 26 and summary["backfilled_snapshots"] == 26
    library = query(db, "SELECT count(*), min(added_at) < max(added_at) FROM saved_tracks WHERE user_id = %s", (uid,))
    assert library[0][0] == summary["library"]["saved"] > 500 and library[0][1]
    assert query(db, "SELECT count(*) FROM tracks WHERE jsonb_typeof(raw_json) <> 'object'")[0][0] == 0
    # only the albums Spotify dates "0000" have no usable release date
    assert (
        query(
            db,
            "SELECT count(*) FROM tracks WHERE (release_date IS NULL) <> (raw_json->'album'->>'release_date' = '0000')",
        )[0][0]
        == 0
    )
    assert query(db, "SELECT count(*) FROM plays WHERE user_id = %s", (uid,))[0][0] > 0
    # tokens: on the server only, both encrypted (tests/test_token_storage.py)
    plain, access, refresh = query(
        db, "SELECT access_token, access_token_encrypted, refresh_token_encrypted FROM spotify_tokens"
    )[0]
    assert plain is None and access and refresh and b"refresh" not in bytes(refresh)
    assert "access_token" not in str(client.get_cookie("session").value if client.get_cookie("session") else "")

    page = client.get("/dashboard").get_data(as_text=True)
    first_track = query(
        db,
        "SELECT t.name FROM snapshots s JOIN tracks t ON t.spotify_id = s.track_id "
        "WHERE s.user_id = %s AND s.snapshot_date = %s AND s.time_range = 'short_term' "
        "AND s.rank = 1",
        (uid, today),
    )[0][0]
    from markupsafe import escape

    assert str(escape(first_track)) in page and "Demo mode" in page


FROZEN_DAY = date(2026, 11, 2)


def fingerprint(db):
    return query(
        db,
        """
        SELECT (SELECT count(*) FROM snapshots), (SELECT sum(rank) FROM snapshots),
               (SELECT count(*) FROM saved_tracks), (SELECT count(*) FROM tracks),
               (SELECT max(updated_at) FROM tracks), (SELECT count(*) FROM artists),
               (SELECT sum(xmin::text::bigint) FROM snapshots)""",
    )[0]


def test_second_sync_the_same_day_changes_nothing(spotify_app, emulator, db):
    sign_in_and_sync(spotify_app.test_client(), emulator, "chen")
    before = fingerprint(db)
    settings = spotify.settings_for(spotify_app)
    outcome = sync.sync_now(settings, user_id(db, "chen"))
    summary = outcome["summary"]
    assert summary["new_tracks"] == 0 and summary["library"]["newly_saved"] == 0
    assert all(r["rows_changed"] == 0 for r in summary["top"].values())
    assert fingerprint(db) == before  # not one row rewritten


def test_two_users_never_see_each_others_rows(spotify_app, emulator, db):
    ava, dana = spotify_app.test_client(), spotify_app.test_client()
    log_in(ava, emulator, "ava")
    log_in(dana, emulator, "dana")
    assert wait_for_sync(ava)["status"] == wait_for_sync(dana)["status"] == "succeeded"
    ava_page, dana_page = ava.get("/dashboard").get_data(as_text=True), dana.get("/dashboard").get_data(as_text=True)
    assert "Hello, Ava" in ava_page and "Dana" not in ava_page.split("<main")[1]
    assert "Hello, Dana" in dana_page
    uid_ava, uid_dana = user_id(db, "ava"), user_id(db, "dana")
    assert (
        ava.get("/api/sync/status").get_json()["summary"]["library"]["saved"]
        == query(db, "SELECT count(*) FROM saved_tracks WHERE user_id = %s", (uid_ava,))[0][0]
    )
    assert (
        dana.get("/api/sync/status").get_json()["summary"]["library"]["saved"]
        == query(db, "SELECT count(*) FROM saved_tracks WHERE user_id = %s", (uid_dana,))[0][0]
    )


def logged_in_user(spotify_app, emulator, db, listener):
    """Log in and let the first sync finish; returns (client, user id, settings)."""
    client = sign_in_and_sync(spotify_app.test_client(), emulator, listener)
    return client, user_id(db, listener), spotify.settings_for(spotify_app)


def test_expired_access_token_is_refreshed_before_use(spotify_app, emulator, db):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "bruno")
    old = query(db, "SELECT access_token_encrypted FROM spotify_tokens WHERE user_id = %s", (uid,))[0][0]
    emulator.state.expire_access_tokens("bruno")
    expire_access_token(db, uid)
    assert "summary" in sync.sync_now(settings, uid)
    new, expires = query(
        db, "SELECT access_token_encrypted, expires_at FROM spotify_tokens WHERE user_id = %s", (uid,)
    )[0]
    assert new != old and expires > datetime.now(UTC)


@pytest.mark.parametrize("kill", ["revoke_refresh_tokens", "expire_refresh_tokens"])
def test_dead_refresh_token_asks_to_log_in_and_goes_once_a_retry_confirms_it(spotify_app, emulator, db, kill):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "ava")
    getattr(emulator.state, kill)("ava")
    expire_access_token(db, uid)
    outcome = sync.sync_now(settings, uid)
    assert "log in again" in outcome["error"]
    # one invalid_grant may be Spotify's incident: the encrypted refresh token stays
    assert query(db, "SELECT count(*) FROM spotify_tokens WHERE user_id = %s", (uid,))[0][0] == 1
    assert (
        query(db, "SELECT status FROM sync_runs WHERE user_id = %s ORDER BY id DESC LIMIT 1", (uid,))[0][0] == "failed"
    )
    age_relogin_mark(db, uid)
    outcome = sync.sync_now(settings, uid)  # the one later retry: a second invalid_grant confirms it
    assert "no longer accepts" in outcome["error"]
    assert query(db, "SELECT count(*) FROM spotify_tokens WHERE user_id = %s", (uid,))[0][0] == 0


def snapshot_rows(db):
    return query(db, "SELECT count(*) FROM snapshots")[0][0]


def test_long_retry_after_is_not_waited_out(spotify_app, emulator, db):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "chen")
    before = snapshot_rows(db)
    emulator.faults.rate_limit(retry_after=3600, path_prefix="/v1/me/tracks")
    started = time.monotonic()
    outcome = sync.sync_now(settings, uid, day=TODAY + timedelta(days=1))
    assert time.monotonic() - started < 5
    assert outcome["error"] == "Spotify asked us to wait 3600 s before trying again."
    assert snapshot_rows(db) == before  # the day's top tracks, fetched first, were not half-written


def test_short_retry_after_is_waited_and_the_sync_completes(spotify_app, emulator, db):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "chen")
    emulator.faults.rate_limit(retry_after=1, times=1, path_prefix="/v1/me/top")
    started = time.monotonic()
    assert "summary" in sync.sync_now(settings, uid, day=TODAY + timedelta(days=1))
    assert time.monotonic() - started >= 1


def test_server_errors_are_retried_then_reported_and_nothing_is_written(spotify_app, emulator, db):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "chen")
    emulator.faults.server_error(status=503, times=1, path_prefix="/v1/me/tracks")
    assert "summary" in sync.sync_now(settings, uid, day=TODAY + timedelta(days=1))
    before = snapshot_rows(db)
    emulator.faults.server_error(status=500, path_prefix="/v1/me/player")
    outcome = sync.sync_now(settings, uid, day=TODAY + timedelta(days=2))
    assert "Spotify answered with an error (500)" in outcome["error"]
    assert snapshot_rows(db) == before


def test_garbage_from_spotify_stops_the_sync_cleanly(spotify_app, emulator, db):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "chen")
    before = snapshot_rows(db)
    emulator.faults.garbage(path_prefix="/v1/me/tracks")
    outcome = sync.sync_now(settings, uid, day=TODAY + timedelta(days=1))
    assert "could not read" in outcome["error"]
    assert snapshot_rows(db) == before


def test_slow_spotify_times_out_instead_of_hanging(spotify_app, emulator, db):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "chen")
    emulator.faults.slow(1.5, path_prefix="/v1/me/player")  # the app's timeout here is 1 s
    started = time.monotonic()
    outcome = sync.sync_now(settings, uid, day=TODAY + timedelta(days=1))
    assert "did not answer in time" in outcome["error"]
    assert time.monotonic() - started < 2 * 1 + 3  # two tries of 1 s at most, never a hang


def test_the_expected_audio_features_403_is_logged_at_info_not_as_a_warning(spotify_app, emulator, db, caplog):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "ava")
    fresh = spotify.SpotifySettings(**{**settings.__dict__, "audio_features_forbidden": {"value": False}})
    with caplog.at_level(logging.INFO, logger="spotify"):
        outcome = sync.sync_now(fresh, uid, day=TODAY + timedelta(days=1))
    assert outcome["summary"]["audio_features"] == "not available to this Spotify app"
    spotify_lines = [r for r in caplog.records if r.name == "spotify" and "audio" in r.getMessage()]
    assert [r.levelno for r in spotify_lines] == [logging.INFO], [r.getMessage() for r in spotify_lines]


def test_the_development_servers_access_log_never_shows_oauth_codes_or_state(live_server, caplog):
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        requests.get(live_server + "/callback?code=SECRET-CODE&state=SECRET-STATE", timeout=5)
        wait_until(lambda: "/callback" in caplog.text, "the callback's access line")
    assert "SECRET" not in caplog.text
    assert '"GET /callback HTTP/1.1" 400' in caplog.text  # the path and status stay


def test_audio_features_403_never_fails_a_sync_and_are_stored_when_allowed(spotify_app, emulator, db):
    client, uid, settings = logged_in_user(spotify_app, emulator, db, "ava")
    status = client.get("/api/sync/status").get_json()
    assert status["summary"]["audio_features"] == "not available to this Spotify app"
    assert query(db, "SELECT count(*) FROM tracks WHERE audio_features IS NOT NULL")[0][0] == 0

    emulator.faults.set_audio_features(True)
    fresh = spotify.SpotifySettings(**{**settings.__dict__, "audio_features_forbidden": {"value": False}})
    outcome = sync.sync_now(fresh, uid, day=TODAY + timedelta(days=1))
    assert outcome["summary"]["audio_features"].startswith("added for ")
    stored = query(
        db,
        "SELECT count(*), bool_and(jsonb_typeof(audio_features) = 'object') FROM tracks "
        "WHERE audio_features IS NOT NULL",
    )[0]
    assert stored[0] > 50 and stored[1]


def users_count(db):
    return query(db, "SELECT count(*) FROM users")[0][0]


@pytest.mark.parametrize(
    "callback_query, message",
    [
        ({"error": "server_error", "state": "x"}, "did not let you in (server_error)"),
        ({"code": "abc", "state": "forged"}, "state mismatch"),
        ({"code": "abc"}, "state mismatch"),
    ],
)
def test_bad_callbacks_get_a_clear_400_and_store_nothing(spotify_app, emulator, db, callback_query, message):
    client = spotify_app.test_client()
    start_login(client)
    response = client.get("/callback", query_string=callback_query)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert users_count(db) == 0


def test_callback_without_code_is_refused(spotify_app, emulator, db):
    client = spotify_app.test_client()
    params = start_login(client)
    response = client.get("/callback", query_string={"state": params["state"]})
    assert response.status_code == 400 and "without a login code" in response.get_data(as_text=True)


def test_reused_code_and_replayed_callback_are_refused(spotify_app, emulator, db):
    client = spotify_app.test_client()
    first = log_in(client, emulator, "ava")
    wait_for_sync(client)
    replay = client.get("/callback", query_string=first)  # the state was single-use
    assert replay.status_code == 400 and "state mismatch" in replay.get_data(as_text=True)
    other = spotify_app.test_client()
    params = start_login(other)
    reused = other.get("/callback", query_string={"code": first["code"], "state": params["state"]})
    assert reused.status_code == 400 and "Spotify refused the login (invalid_grant)" in reused.get_data(as_text=True)


def test_pages_need_a_login(spotify_app):
    client = spotify_app.test_client()
    assert client.get("/dashboard").headers["Location"].endswith("/login")
    assert client.get("/api/sync/status").status_code == 401
    assert client.post("/sync").status_code == 400  # no CSRF token: refused before anything


def test_snapshot_command_syncs_every_user_and_survives_one_failure(spotify_app, emulator, db):
    for listener in ("ava", "chen"):
        logged_in_user(spotify_app, emulator, db, listener)
    emulator.state.revoke_refresh_tokens("ava")
    expire_access_token(db, user_id(db, "ava"))
    result = spotify_app.test_cli_runner().invoke(args=["snapshot"])
    assert result.exit_code == 1
    assert "Ava" in result.output and "FAILED" in result.output and "log in again" in result.output
    chen_line = next(line for line in result.output.splitlines() if line.startswith("Chen"))
    assert "top tracks short" in chen_line
    assert "1 of 2 users synced." in result.output


def test_rate_limit_during_login_tells_the_person_how_long_spotify_wants(spotify_app, emulator, db):
    client = spotify_app.test_client()
    callback = approve(emulator, start_login(client), "ava")
    emulator.faults.rate_limit(retry_after=3600, path_prefix="/v1/me")
    started = time.monotonic()
    response = client.get("/callback", query_string=callback)
    assert time.monotonic() - started < 5  # no worker sleeps through an hour
    assert response.status_code == 503 and response.headers["Retry-After"] == "3600"
    assert "Spotify asked us to wait 3600 s" in response.get_data(as_text=True)
    assert users_count(db) == 0
