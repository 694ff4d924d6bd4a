"""The Spotify emulator, driven by the real spotipy over real HTTP.

Every Web API response any test here receives is checked against Spotify's
published OpenAPI description (openapi-core), and its body is walked for
fields the description does not declare or marks deprecated (what a 2026
development-mode app no longer gets). No PostgreSQL needed.
"""

from __future__ import annotations

import hashlib
import html
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests
import spotipy
from spotipy.oauth2 import SpotifyOauthError

from conftest import FROZEN_NOW
from emulator import catalogue as emulator_catalogue
from emulator import listeners as emulator_listeners
from emulator import objects as emulator_objects
from emulator.live import plays_between, recently_played_now
from emulator.server import DEMO_USERS, TIME_RANGES
from emulator.web_api import REMOVED_ENDPOINT
from openapi_contract import find_operation, load_spec, response_problems

ROOT = Path(__file__).resolve().parents[1]

REDIRECT_URI = "http://127.0.0.1:5000/callback"
ALL_SCOPES = (
    "user-read-private user-top-read user-library-read user-read-recently-played "
    "playlist-modify-private playlist-modify-public"
)


# ----------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def clean_faults(emulator):
    emulator.faults.reset()
    yield
    emulator.faults.reset()


@pytest.fixture(scope="session")
def openapi_spec(emulator):
    return load_spec(emulator.api_url)


@pytest.fixture
def recorded(openapi_spec):
    """Every HTTP exchange of the test's spotipy objects; all validated at teardown."""
    exchanges = []
    yield exchanges
    problems = [p for response in exchanges for p in response_problems(openapi_spec, response)]
    assert not problems, "\n".join(problems)


@pytest.fixture
def make_oauth(emulator, recorded):
    """SpotifyOAuth pointed at the emulator: a per-test subclass, memory cache only."""

    class EmulatorOAuth(spotipy.SpotifyOAuth):
        OAUTH_AUTHORIZE_URL = emulator.authorize_url
        OAUTH_TOKEN_URL = emulator.token_url

    def build(scope=ALL_SCOPES, redirect_uri=REDIRECT_URI, client_secret=None):
        oauth = EmulatorOAuth(
            client_id=emulator.client_id,
            client_secret=client_secret or emulator.client_secret,
            redirect_uri=redirect_uri,
            scope=scope,
            open_browser=False,
            cache_handler=spotipy.MemoryCacheHandler(),
        )
        oauth._session.hooks["response"].append(lambda response, **_: recorded.append(response))
        return oauth

    return build


def approve(emulator, oauth, user_id="ava", state="s3cret-state", action="approve") -> str:
    """What a person does in the browser: open /authorize, pick a listener, press a button."""
    page = requests.get(oauth.get_authorize_url(state=state), timeout=5)
    assert page.status_code == 200 and '<form method="post"' in page.text
    form = {
        "client_id": oauth.client_id,
        "response_type": "code",
        "redirect_uri": oauth.redirect_uri,
        "scope": oauth.scope,
        "state": state,
        "user_id": user_id,
        "action": action,
    }
    answer = requests.post(emulator.authorize_url, data=form, allow_redirects=False, timeout=5)
    assert answer.status_code == 303
    return answer.headers["Location"]


@pytest.fixture
def login(emulator, make_oauth):
    """Full authorization-code flow for a demo user: (oauth manager, token info)."""

    def run(user_id="ava", scope=ALL_SCOPES):
        oauth = make_oauth(scope=scope)
        code = oauth.parse_response_code(approve(emulator, oauth, user_id))
        oauth.get_access_token(code, as_dict=False, check_cache=False)
        return oauth, oauth.cache_handler.get_cached_token()

    return run


@pytest.fixture
def make_spotify(emulator, login, recorded):
    """A logged-in spotipy client. Without `retries` it has a plain requests session,
    so a 429 or 5xx surfaces with its headers instead of spotipy's urllib3 retry."""

    def build(user_id="ava", scope=ALL_SCOPES, retries=0, **kwargs):
        oauth, _ = login(user_id, scope)
        session = requests.Session() if retries == 0 else True
        sp = spotipy.Spotify(
            auth_manager=oauth, requests_session=session, retries=retries, status_retries=retries, **kwargs
        )
        sp.prefix = emulator.api_url + "/v1/"
        sp._session.hooks["response"].append(lambda response, **_: recorded.append(response))
        return sp

    return build


@pytest.fixture
def sp(make_spotify):
    return make_spotify()


def all_pages(sp, first: dict, key: str | None = None) -> list:
    """Items of every page from `first` on, following `next` with spotipy.

    Search pages come wrapped (`{"tracks": page}`): pass key="tracks".
    """
    items, page = list(first["items"]), first
    while page["next"]:
        page = sp.next(page)
        page = page[key] if key else page
        items.extend(page["items"])
    return items


# ------------------------------------------------------------- accounts


def test_authorize_page_lists_scopes_and_demo_users(emulator, make_oauth):
    page = requests.get(make_oauth().get_authorize_url(state="abc"), timeout=5)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    for scope in ALL_SCOPES.split():
        assert scope in page.text
    for user in DEMO_USERS.values():
        assert user.display_name in page.text
    assert 'value="approve"' in page.text and 'value="deny"' in page.text and 'value="abc"' in page.text


def test_full_code_flow_gives_spotify_shaped_tokens(emulator, login, make_spotify):
    _, token = login("bruno")
    assert token["token_type"] == "Bearer" and token["expires_in"] == 3600
    assert set(token["scope"].split()) == set(ALL_SCOPES.split()) and token["refresh_token"]
    assert make_spotify("bruno").me()["id"] == "bruno"


def test_approval_keeps_state_and_deny_answers_access_denied(emulator, make_oauth):
    oauth = make_oauth()
    approved = approve(emulator, oauth, state="st-1")
    assert approved.startswith(REDIRECT_URI + "?code=") and "state=st-1" in approved
    denied = approve(emulator, oauth, state="st-2", action="deny")
    assert denied == REDIRECT_URI + "?error=access_denied&state=st-2"


def test_code_is_single_use(emulator, make_oauth):
    oauth = make_oauth()
    code = oauth.parse_response_code(approve(emulator, oauth))
    oauth.get_access_token(code, as_dict=False, check_cache=False)
    with pytest.raises(SpotifyOauthError) as reused:
        oauth.get_access_token(code, as_dict=False, check_cache=False)
    assert reused.value.error == "invalid_grant"


def test_redirect_uri_must_match_and_be_loopback_or_https(emulator, make_oauth):
    oauth = make_oauth()
    code = oauth.parse_response_code(approve(emulator, oauth))
    other = make_oauth(redirect_uri="http://127.0.0.1:5000/elsewhere")
    with pytest.raises(SpotifyOauthError) as mismatch:
        other.get_access_token(code, as_dict=False, check_cache=False)
    assert (mismatch.value.error, mismatch.value.error_description) == ("invalid_grant", "Invalid redirect URI")
    page = requests.get(make_oauth(redirect_uri="http://localhost:5000/callback").get_authorize_url(), timeout=5)
    assert page.status_code == 400 and "Invalid redirect URI" in page.text


def test_wrong_client_secret_is_invalid_client(emulator, make_oauth):
    oauth = make_oauth()
    code = oauth.parse_response_code(approve(emulator, oauth))
    with pytest.raises(SpotifyOauthError) as failed:
        make_oauth(client_secret="wrong").get_access_token(code, as_dict=False, check_cache=False)
    assert failed.value.error == "invalid_client"


def test_client_may_authenticate_with_form_fields(emulator, make_oauth):
    oauth = make_oauth()
    code = oauth.parse_response_code(approve(emulator, oauth))
    answer = requests.post(
        emulator.token_url,
        timeout=5,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": emulator.client_id,
            "client_secret": emulator.client_secret,
        },
    )
    assert answer.status_code == 200 and answer.json()["refresh_token"]


def test_refresh_gives_a_working_access_token(emulator, login, recorded):
    oauth, token = login("chen")
    emulator.state.expire_access_tokens("chen")
    stale = spotipy.Spotify(auth=token["access_token"], retries=0)
    stale.prefix = emulator.api_url + "/v1/"
    stale._session.hooks["response"].append(lambda response, **_: recorded.append(response))
    with pytest.raises(spotipy.SpotifyException) as expired:
        stale.me()
    assert expired.value.http_status == 401 and "expired" in expired.value.msg
    fresh = oauth.refresh_access_token(token["refresh_token"])
    assert fresh["access_token"] != token["access_token"]
    assert fresh["refresh_token"] == token["refresh_token"]  # spotipy keeps the old one
    stale.set_auth(fresh["access_token"])
    assert stale.me()["id"] == "chen"


@pytest.mark.parametrize("how", ["revoke", "six_months", "admin_endpoint"])
def test_dead_refresh_token_answers_invalid_grant(emulator, login, how):
    oauth, token = login("dana")
    if how == "revoke":
        emulator.state.revoke_refresh_tokens("dana")
    elif how == "six_months":
        emulator.state.expire_refresh_tokens("dana")
    else:
        requests.post(emulator.base_url + "/_emulator/faults", json={"revoke_refresh_tokens": "dana"}, timeout=5)
    with pytest.raises(SpotifyOauthError) as dead:
        oauth.refresh_access_token(token["refresh_token"])
    assert dead.value.error == "invalid_grant"


def test_missing_or_unknown_token_is_401_in_spotify_shape(emulator, recorded):
    for headers, message in (({}, "No token provided"), ({"Authorization": "Bearer nope"}, "Invalid access token")):
        answer = requests.get(emulator.api_url + "/v1/me", headers=headers, timeout=5)
        recorded.append(answer)
        assert answer.status_code == 401 and answer.json() == {"error": {"status": 401, "message": message}}


def test_missing_scope_is_403(make_spotify):
    sp = make_spotify(scope="user-read-private")
    with pytest.raises(spotipy.SpotifyException) as refused:
        sp.current_user_top_tracks()
    assert refused.value.http_status == 403


# -------------------------------------------------------------- Web API


def test_me_has_no_fields_gone_in_2026(sp):
    me = sp.me()
    assert me["id"] == "ava" and me["display_name"] == "Ava Lindqvist" and me["account_id"]
    assert not {"email", "country", "product", "followers"} & set(me)


@pytest.mark.parametrize("time_range", ["short_term", "medium_term", "long_term"])
def test_top_tracks_stop_at_offset_49_like_spotify(sp, time_range):
    """spotify/web-api 1424, 1539, 1592: offsets from 50 on answer an empty page, so the
    99 top tracks are offset 0 and offset 49 (limit 50), and following `next` finds 50."""
    first = sp.current_user_top_tracks(limit=50, time_range=time_range)
    assert first["total"] == 99 and first["previous"] is None
    assert first["next"].startswith("http://127.0.0.1:") and f"time_range={time_range}" in first["next"]
    assert len(all_pages(sp, first)) == 50
    beyond = sp.next(first)
    assert (beyond["items"], beyond["total"], beyond["limit"], beyond["next"]) == ([], 0, 0, None)
    second = sp.current_user_top_tracks(limit=50, offset=49, time_range=time_range)
    assert second["items"][0] == first["items"][49] and second["next"] is None
    tracks = first["items"] + second["items"][1:]
    assert len(tracks) == 99 == len({t["id"] for t in tracks})
    track = tracks[0]
    assert "popularity" not in track and all("genres" not in a for a in track["artists"])
    assert track["external_ids"]["isrc"] and track["album"]["release_date_precision"] in ("year", "month", "day")
    assert (
        sp.previous(sp.current_user_top_tracks(limit=20, offset=20))["items"]
        == sp.current_user_top_tracks(limit=20)["items"]
    )


@pytest.mark.parametrize(
    "path",
    [
        "tracks?ids={track}",
        "artists?ids={artist}",
        "albums?ids={album}",
        "users/ava/playlists",
        "artists/{artist}/top-tracks",
        "playlists/{playlist}/tracks",
    ],
)
def test_endpoints_removed_in_development_mode_answer_403(sp, recorded, path):
    """February 2026: gone for development-mode apps, and Spotify says 403, not 404."""
    track = sp.current_user_top_tracks(limit=1)["items"][0]
    playlist = sp.current_user_playlist_create("Removed endpoints", public=False)
    url = path.format(
        track=track["id"], artist=track["artists"][0]["id"], album=track["album"]["id"], playlist=playlist["id"]
    )
    with pytest.raises(spotipy.SpotifyException) as refused:
        sp._get(url)
    assert refused.value.http_status == 403
    assert sp.track(track["id"])["id"] == track["id"]  # one id at a time still works


def test_top_tracks_reject_bad_limit_and_range(sp):
    for kwargs in ({"limit": 51}, {"time_range": "forever"}):
        with pytest.raises(spotipy.SpotifyException) as bad:
            sp.current_user_top_tracks(**kwargs)
        assert bad.value.http_status == 400


def test_saved_tracks_page_through_whole_library(make_spotify):
    sp = make_spotify("chen")
    first = sp.current_user_saved_tracks(limit=50)
    saves = all_pages(sp, first)
    assert len(saves) == first["total"] > 300
    added = [s["added_at"] for s in saves]
    assert added == sorted(added, reverse=True) and added[0].endswith("Z")
    assert all(s["added_at"][:4] >= s["track"]["album"]["release_date"][:4] for s in saves)


def test_recently_played_cursors(sp):
    first = sp.current_user_recently_played(limit=20)
    plays = all_pages(sp, first)
    assert 20 < len(plays) <= 50
    played = [p["played_at"] for p in plays]
    assert played == sorted(played, reverse=True) and played[0] <= "2026-11-02T18:30:00.000Z"
    newer = sp.current_user_recently_played(limit=50, after=int(first["cursors"]["before"]))
    assert [p["played_at"] for p in newer["items"]] == played[:19]
    with pytest.raises(spotipy.SpotifyException):
        sp.current_user_recently_played(after=1, before=2)


def test_search_limit_above_ten_is_rejected(sp):
    assert len(sp.search("heart", limit=10)["tracks"]["items"]) == 10
    with pytest.raises(spotipy.SpotifyException) as refused:
        sp.search("heart", limit=11)
    assert refused.value.http_status == 400
    assert sp._get("search", q="heart", type="track")["tracks"]["limit"] == 5  # Spotify's default


@pytest.mark.parametrize(
    "query, low, high, word",
    [
        ("year:1999", 1999, 1999, ""),
        ("heart year:1990-1999", 1990, 1999, "heart"),
        ('year:1965 artist:"the"', 1965, 1965, "the"),
    ],
)
def test_search_year_filter(sp, query, low, high, word):
    result = sp.search(query, limit=10)["tracks"]
    tracks = all_pages(sp, result, key="tracks")
    assert len(tracks) == result["total"] > 0
    assert all(low <= int(t["album"]["release_date"][:4]) <= high for t in tracks)
    names = [" ".join([t["name"], t["album"]["name"]] + [a["name"] for a in t["artists"]]) for t in tracks]
    assert all(word in n.lower() for n in names)


def test_track_by_id(sp):
    track_id = sp.current_user_top_tracks(limit=1)["items"][0]["id"]
    assert sp.track(track_id)["id"] == track_id
    for bad, status in (("0" * 22, 404), ("not-an-id", 400)):
        with pytest.raises(spotipy.SpotifyException) as missing:
            sp._get("tracks/" + bad)
        assert missing.value.http_status == status


def test_playlist_create_and_add_items(emulator, sp, make_spotify, recorded):
    uris = [t["uri"] for t in sp.current_user_top_tracks(limit=50, time_range="long_term")["items"]]
    playlist = sp.current_user_playlist_create("Time machine 1999", public=False, description="from the past")
    assert playlist["owner"]["id"] == "ava" and playlist["items"]["total"] == 0 and playlist["public"] is False
    assert sp.playlist_add_items(playlist["id"], uris[:30])["snapshot_id"]  # spotipy's bare array
    headers = {"Authorization": sp._auth_headers()["Authorization"]}
    wrapped = requests.post(
        f"{emulator.api_url}/v1/playlists/{playlist['id']}/items",
        timeout=5,
        headers=headers,
        json={"uris": uris[30:40], "position": 0},
    )
    recorded.append(wrapped)
    assert wrapped.status_code == 201
    with pytest.raises(spotipy.SpotifyException) as too_many:
        sp.playlist_add_items(playlist["id"], (uris * 3)[:101])
    assert too_many.value.http_status == 400
    stored = all_pages(sp, sp._get(f"playlists/{playlist['id']}/items", limit=50))
    assert [i["item"]["uri"] for i in stored] == uris[30:40] + uris[:30]
    with pytest.raises(spotipy.SpotifyException) as not_owner:
        make_spotify("bruno").playlist_add_items(playlist["id"], uris[:1])
    assert not_owner.value.http_status == 403


def test_web_player_pages_name_what_they_show(emulator, sp):
    track = sp.current_user_top_tracks(limit=1)["items"][0]
    pages = {
        "track": (track["id"], track["name"]),
        "album": (track["album"]["id"], track["album"]["name"]),
        "artist": (track["artists"][0]["id"], track["artists"][0]["name"]),
    }
    for kind, (obj_id, name) in pages.items():
        page = requests.get(f"{emulator.base_url}/open/{kind}/{obj_id}", timeout=5)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert f"<h1>{html.escape(name)}</h1>" in page.text and 'name="viewport"' in page.text
    for missing in ("track/" + "0" * 22, "playlist/nosuchplaylist", "episode/x"):
        assert requests.get(f"{emulator.base_url}/open/{missing}", timeout=5).status_code == 404


def test_playlist_items_replaced_by_put(emulator, sp, make_spotify, recorded):
    uris = [t["uri"] for t in sp.current_user_top_tracks(limit=50, time_range="long_term")["items"]]
    playlist = sp.current_user_playlist_create("Replaced", public=False)
    sp.playlist_add_items(playlist["id"], uris[:20])
    headers = {"Authorization": sp._auth_headers()["Authorization"]}
    replaced = requests.put(
        f"{emulator.api_url}/v1/playlists/{playlist['id']}/items",
        timeout=5,
        headers=headers,
        json={"uris": uris[20:25]},
    )
    recorded.append(replaced)
    assert replaced.status_code == 200 and replaced.json()["snapshot_id"]
    assert [i["item"]["uri"] for i in sp._get(f"playlists/{playlist['id']}/items")["items"]] == uris[20:25]
    sp.playlist_replace_items(playlist["id"], [])  # an empty list empties it
    assert sp._get(f"playlists/{playlist['id']}/items")["total"] == 0
    for client, items, status in ((sp, (uris * 3)[:101], 400), (make_spotify("bruno"), uris[:1], 403)):
        with pytest.raises(spotipy.SpotifyException) as refused:
            client.playlist_replace_items(playlist["id"], items)
        assert refused.value.http_status == status
    with pytest.raises(spotipy.SpotifyException) as missing:
        sp.playlist_replace_items("0" * 22, uris[:1])
    assert missing.value.http_status == 404


def test_audio_features_forbidden_until_switched_on(emulator, sp):
    ids = [t["id"] for t in sp.current_user_top_tracks(limit=3)["items"]]
    with pytest.warns(DeprecationWarning), pytest.raises(spotipy.SpotifyException) as forbidden:
        sp.audio_features(ids)
    assert forbidden.value.http_status == 403
    requests.post(emulator.base_url + "/_emulator/faults", json={"audio_features": True}, timeout=5)
    with pytest.warns(DeprecationWarning):
        features = sp.audio_features(ids)
    assert [f["id"] for f in features] == ids and all(0 <= f["valence"] <= 1 for f in features)


# ---------------------------------------------------------------- faults


def test_rate_limit_carries_retry_after(emulator, sp, make_spotify):
    emulator.faults.rate_limit(retry_after=30, path_prefix="/v1/me/top")
    with pytest.raises(spotipy.SpotifyException) as limited:
        sp.current_user_top_tracks()
    assert limited.value.http_status == 429 and limited.value.headers["Retry-After"] == "30"
    assert sp.me()["id"] == "ava"  # other paths are not limited
    emulator.faults.reset()
    emulator.faults.rate_limit(retry_after=0, times=1)
    patient = make_spotify(retries=3)  # spotipy's own retry honours Retry-After
    assert patient.current_user_top_tracks(limit=1)["total"] == 99


def test_a_used_up_quota_says_so_in_the_429_body(emulator, sp):
    """July 2026 changelog: a 429 for an exceeded quota carries reason QUOTA_EXCEEDED; a
    short rate limit does not."""
    emulator.faults.rate_limit(retry_after=5, times=1, path_prefix="/v1/me")
    with pytest.raises(spotipy.SpotifyException) as short:
        sp.me()
    assert short.value.http_status == 429 and short.value.reason is None
    emulator.faults.rate_limit(retry_after=86400, times=1, path_prefix="/v1/me", reason="QUOTA_EXCEEDED")
    with pytest.raises(spotipy.SpotifyException) as quota:
        sp.me()
    assert (quota.value.http_status, quota.value.reason) == (429, "QUOTA_EXCEEDED")
    assert quota.value.headers["Retry-After"] == "86400"


def test_development_mode_allowlist_refuses_unregistered_users(emulator, make_spotify, allowlist):
    """February 2026: a development-mode app serves only the users added in its dashboard."""
    allowlist(["ava", "bruno"])
    assert make_spotify("ava").me()["id"] == "ava"
    with pytest.raises(spotipy.SpotifyException) as refused:
        make_spotify("chen").me()  # the login itself works; every API call is refused
    assert refused.value.http_status == 403
    assert "User not registered in the Developer Dashboard" in refused.value.msg
    faults = requests.post(emulator.base_url + "/_emulator/faults", json={"allowed_users": None}, timeout=5)
    assert faults.json()["allowed_users"] is None and make_spotify("chen").me()["id"] == "chen"


def test_invalid_grant_during_an_incident_passes(emulator, login):
    """Spotify has answered invalid_grant for good tokens during an outage (listenbrainz PR 1921)."""
    oauth, token = login("dana")
    emulator.faults.invalid_grant(times=1)
    with pytest.raises(SpotifyOauthError) as refused:
        oauth.refresh_access_token(token["refresh_token"])
    assert refused.value.error == "invalid_grant"
    assert oauth.refresh_access_token(token["refresh_token"])["access_token"]


def test_server_errors_and_recovery(emulator, sp, make_spotify):
    emulator.faults.server_error(status=503)
    with pytest.raises(spotipy.SpotifyException) as failed:
        sp.me()
    assert failed.value.http_status == 503
    emulator.faults.reset()
    emulator.faults.server_error(status=502, times=1)
    assert make_spotify(retries=2).me()["id"] == "ava"


def test_slow_answers_and_garbage_bodies(emulator, sp):
    emulator.faults.slow(delay=0.3, times=1, path_prefix="/v1/me")
    started = time.monotonic()
    sp.me()
    assert time.monotonic() - started >= 0.3
    emulator.faults.garbage(times=1)
    assert sp.me() is None  # spotipy swallows an unparsable body: callers must check
    assert sp.me()["id"] == "ava"


def test_token_endpoint_can_be_rate_limited(emulator, make_oauth):
    oauth = make_oauth()
    code = oauth.parse_response_code(approve(emulator, oauth))
    emulator.faults.rate_limit(retry_after=7, times=1, path_prefix="/api/token")
    answer = requests.post(
        emulator.token_url,
        auth=(emulator.client_id, emulator.client_secret),
        timeout=5,
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI},
    )
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"


def test_admin_endpoint_sets_shows_and_resets_faults(emulator):
    url = emulator.base_url + "/_emulator/faults"
    shown = requests.post(
        url,
        timeout=5,
        json={"rate_limit": {"retry_after": 5, "times": 2}, "slow": [{"delay": 0.01}], "audio_features": True},
    ).json()
    assert [r["kind"] for r in shown["rules"]] == ["rate_limit", "slow"] and shown["audio_features"] is True
    assert requests.post(url, json={"bogus": 1}, timeout=5).status_code == 400
    assert requests.delete(url, timeout=5).json()["rules"] == []
    assert emulator.faults.audio_features_enabled is False


# ------------------------------------------------- determinism and drift


def _fingerprint() -> str:
    catalogue = emulator_catalogue.get_catalogue()
    digest = hashlib.sha256()
    for track in catalogue.track_list:
        digest.update(f"{track.id}{track.name}{track.isrc}{track.explicit}{track.duration_ms}".encode())
    for user_id in DEMO_USERS:
        digest.update(",".join(emulator_listeners.top_track_ids(user_id, "short_term", date(2026, 6, 1))).encode())
        digest.update(str(emulator_listeners.saved_tracks(user_id, FROZEN_NOW)[:50]).encode())
        digest.update(str(emulator_listeners.recently_played(user_id, FROZEN_NOW)).encode())  # its quirks too
        for day in range(0, 120, 10):  # duplicates included (about 3 % of lists)
            served = emulator_listeners.served_top_track_ids(user_id, "short_term", date(2026, 6, 1) + timedelta(day))
            digest.update(",".join(served).encode())
    return digest.hexdigest()


def test_same_data_in_every_process(sp):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[2]); "
        "import test_spotify_emulator as t; print(t._fingerprint())"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert other.stdout.strip() == _fingerprint()
    assert len(emulator_catalogue.get_catalogue().tracks) > 3000
    assert sp.current_user_top_tracks(limit=50) == sp.current_user_top_tracks(limit=50)


def test_catalogue_spans_six_decades_with_date_precisions():
    catalogue = emulator_catalogue.get_catalogue()
    decades = {t.year // 10 * 10 for t in catalogue.track_list}
    assert decades >= {1960, 1970, 1980, 1990, 2000, 2010, 2020}
    precisions = [a.release_date_precision for a in catalogue.albums.values()]
    assert precisions.count("day") > len(precisions) / 2 and "year" in precisions and "month" in precisions
    assert 0 < sum(t.explicit for t in catalogue.track_list) < len(catalogue.tracks) / 4


def test_taste_drifts_over_months_but_not_totally(sp):
    def top(as_of, time_range="short_term"):
        return {t["id"] for t in sp._get("me/top/tracks", limit=50, time_range=time_range, as_of=as_of)["items"]}

    for time_range in ("short_term", "medium_term"):
        overlap = len(top("2026-05-01", time_range) & top("2026-10-01", time_range))
        assert 2 <= overlap <= 40, (time_range, overlap)
    week = len(top("2026-10-01") & top("2026-10-08"))
    assert week > len(top("2026-05-01") & top("2026-10-01"))  # a week moves less than five months


def test_python_backfill_matches_the_as_of_extension(emulator, sp):
    ids = [t["id"] for t in emulator.top_tracks_as_of("ava", "medium_term", date(2026, 6, 1))]
    first = sp._get("me/top/tracks", limit=50, time_range="medium_term", as_of="2026-06-01")
    second = sp._get("me/top/tracks", limit=50, offset=49, time_range="medium_term", as_of="2026-06-01")
    assert "as_of=2026-06-01" in first["next"]
    assert [t["id"] for t in first["items"] + second["items"][1:]] == ids
    assert sp._get("me/tracks", limit=1, as_of="2020-01-01")["total"] < sp.current_user_saved_tracks()["total"]


def test_every_user_has_a_distinct_taste():
    charts = {u: set(emulator_listeners.top_track_ids(u, "long_term", date(2026, 6, 1))) for u in DEMO_USERS}
    assert len(charts) >= 4 and all(len(c) == 99 for c in charts.values())
    for a in charts:
        for b in charts:
            assert a == b or len(charts[a] & charts[b]) < 30


def test_extras_users_images_unknown_routes(emulator, sp, recorded):
    users = requests.get(emulator.base_url + "/_emulator/users", timeout=5).json()["users"]
    assert {u["id"] for u in users} == set(DEMO_USERS)
    cover = requests.get(sp.me()["images"][0]["url"], timeout=5)
    assert cover.status_code == 200 and cover.text.startswith("<svg")
    unknown = requests.get(emulator.api_url + "/v1/nothing-here", headers=sp._auth_headers(), timeout=5)
    recorded.append(unknown)
    assert unknown.status_code == 404 and unknown.json()["error"]["status"] == 404


def test_runs_standalone_from_the_command_line():
    process = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        banner = process.stdout.readline()
        base_url = banner.split()[3]
        assert requests.get(base_url + "/_emulator/users", timeout=5).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_every_served_endpoint_is_in_the_description_and_checked(emulator, sp, openapi_spec, recorded):
    """One call per served operation; the `recorded` teardown validates each answer."""
    from emulator import server as spotify_emulator

    spec, _ = openapi_spec
    served = {
        (method.lower(), rule.rule[len("/v1") :].replace("<", "{").replace(">", "}"))
        for rule in spotify_emulator.create_app().url_map.iter_rules()
        if rule.rule.startswith("/v1/") and REMOVED_ENDPOINT not in rule.endpoint
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    for method, path in served:
        find_operation(spec, path, method)  # raises for a route Spotify does not have
    emulator.faults.set_audio_features(True)
    track_id = sp.current_user_top_tracks(limit=2)["items"][0]["id"]
    playlist = sp.current_user_playlist_create("Checked", public=True)
    sp.playlist_add_items(playlist["id"], [f"spotify:track:{track_id}"])
    calls = [
        sp.me(),
        sp.current_user_saved_tracks(limit=2),
        sp.current_user_recently_played(limit=2),
        sp.search("year:1984", limit=2),
        sp.track(track_id),
        sp._get(f"playlists/{playlist['id']}/items"),
        sp.playlist_replace_items(playlist["id"], [f"spotify:track:{track_id}"]),
        sp._get("audio-features", ids=track_id),
    ]
    assert all(calls)
    seen = {
        (r.request.method.lower(), requests.utils.urlparse(r.url).path.rstrip("/")[len("/v1") :])
        for r in recorded
        if r.ok and "/v1/" in r.url
    }
    covered = {(m, p) for m, p in served if any(m == sm and _same_template(p, sp_) for sm, sp_ in seen)}
    assert covered == served


def _same_template(template: str, path: str) -> bool:
    parts, actual = template.strip("/").split("/"), path.strip("/").split("/")
    return len(parts) == len(actual) and all(p.startswith("{") or p == a for p, a in zip(parts, actual, strict=True))


def test_many_threads_share_one_emulator(emulator, make_oauth):
    from concurrent.futures import ThreadPoolExecutor

    def session(n):
        oauth = make_oauth()
        user = list(DEMO_USERS)[n % len(DEMO_USERS)]
        oauth.get_access_token(
            oauth.parse_response_code(approve(emulator, oauth, user)), as_dict=False, check_cache=False
        )
        client = spotipy.Spotify(auth_manager=oauth, requests_session=requests.Session())
        client.prefix = emulator.api_url + "/v1/"
        uris = [t["uri"] for t in client.current_user_top_tracks(limit=10)["items"]]
        playlist = client.current_user_playlist_create(f"thread {n}", public=False)
        for uri in uris:
            client.playlist_add_items(playlist["id"], [uri])
        return user, client.me()["id"], client._get(f"playlists/{playlist['id']}/items")["total"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(session, range(16)))
    assert all(user == me and total == 10 for user, me, total in results)


# ------------------------------------------------------ real-world quirks


def test_recently_played_holds_episodes_and_local_files_beside_tracks(make_spotify):
    plays = [
        i["track"] for user in DEMO_USERS for i in make_spotify(user).current_user_recently_played(limit=50)["items"]
    ]
    episodes = [p for p in plays if p["type"] == "episode"]
    local = [p for p in plays if p.get("is_local")]
    assert 0 < len(episodes) < 0.15 * len(plays) and 0 < len(local) < 0.1 * len(plays)
    assert all(e["show"]["name"] and e["duration_ms"] > 60_000 for e in episodes)
    assert all(t["id"] is None and t["uri"].startswith("spotify:local:") and t["name"] for t in local)
    # the `recorded` teardown checks each shape against the description


def test_some_albums_have_no_cover_and_a_few_were_released_in_year_0000(sp):
    albums = emulator_catalogue.get_catalogue().albums
    quirks = [emulator_objects.album_quirk(a) for a in albums]
    assert 0.01 < quirks.count("no images") / len(albums) < 0.04 and quirks.count("year 0000") >= 1
    tracks = emulator_catalogue.get_catalogue().track_list
    for quirk in ("no images", "year 0000"):
        track = next(t for t in tracks if emulator_objects.album_quirk(t.album_id) == quirk)
        album = sp.track(track.id)["album"]
        assert album["images"] == [] if quirk == "no images" else album["release_date"] == "0000"


def test_a_few_top_lists_name_one_track_twice(sp):
    """spotify/web-api#1013: the same id at two places of a top list, for that day."""
    days = [date(2026, 1, 1) + timedelta(n) for n in range(120)]
    lists = [emulator_listeners.served_top_track_ids(u, r, d) for u in DEMO_USERS for r in TIME_RANGES for d in days]
    doubled = [ids for ids in lists if len(set(ids)) < len(ids)]
    assert 0.01 < len(doubled) / len(lists) < 0.06 and all(len(ids) <= 99 for ids in lists)
    day = next(d for d in days if len(set(emulator_listeners.served_top_track_ids("ava", "long_term", d))) < 99)
    first = sp._get("me/top/tracks", limit=50, time_range="long_term", as_of=day.isoformat())["items"]
    second = sp._get("me/top/tracks", limit=50, offset=49, time_range="long_term", as_of=day.isoformat())["items"]
    ids = [t["id"] for t in first + second[1:]]
    assert len(ids) == 99 and len(set(ids)) == 98


# -- live plays (a new play every second, as the capture tests and drills run it) ----------
def a_session_with_live_plays_around(fraction: float) -> tuple[datetime, datetime, datetime]:
    """(emulator start, span start, span end): a span of ava's day in which one of her
    listening sessions runs while live plays come every second, the emulator started at
    ``fraction`` of a second."""
    day = date(2026, 6, 1)
    session_start = emulator_listeners.day_plays("ava", day)[0][1]
    started_at = session_start - timedelta(seconds=90, microseconds=-int(fraction * 1e6))
    return started_at, session_start - timedelta(seconds=30), session_start + timedelta(minutes=20)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_a_listener_finishes_one_play_a_second_sessions_and_live_plays_together(fraction):
    """One listener cannot end two tracks in one second, and plays are kept by (listener,
    second): a live play in the second of a session play would lose one of the two."""
    started_at, start, end = a_session_with_live_plays_around(fraction)
    plays = plays_between("ava", start, end, started_at, 1.0)
    sessions = {at for _, at in emulator_listeners.day_plays("ava", start.date()) if start <= at <= end}
    seconds = [at.replace(microsecond=0) for _, at in plays]
    assert len(sessions) > 3 and sessions <= {at for _, at in plays}
    assert len(plays) > 20 * 60 * 0.9 and len(set(seconds)) == len(seconds)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_polling_with_the_after_cursor_at_any_moment_sees_every_play(fraction):
    """A capture asks for plays after the newest it has seen (in ms); a play must not become
    visible later than the moment it is reported at, or the cursor passes over it."""
    started_at, start, end = a_session_with_live_plays_around(0.0)
    seen, cursor, moment = set(), int(start.timestamp() * 1000), start + timedelta(seconds=fraction)
    while moment <= end:
        newer = [p for p in recently_played_now("ava", moment, started_at, 1.0) if p[1].timestamp() * 1000 > cursor]
        seen |= set(newer)
        cursor = max([cursor] + [round(at.timestamp() * 1000) for _, at in newer])
        moment += timedelta(seconds=2.5)
    played = set(
        plays_between("ava", start + timedelta(milliseconds=1), moment - timedelta(seconds=2.5), started_at, 1.0)
    )
    assert len(played) > 400 and played - seen == set()


@pytest.mark.parametrize("hour", [0, 6, 12, 23])
def test_recently_played_always_holds_the_last_fifty_whatever_the_hour(hour):
    """Spotify keeps a listener's last 50 plays, however long ago: early in the day, before
    the day's first session, a capture after four quiet days still gets a full page."""
    for day in (date(2026, 12, 3), date(2026, 6, 1)):
        now = datetime(day.year, day.month, day.day, hour, 30, tzinfo=UTC)
        for user in DEMO_USERS:
            plays = emulator_listeners.recently_played(user, now)
            assert len(plays) == 50 and all(at <= now for _, at in plays), (user, now)
