"""Logging in with PKCE, and Spotify tokens at rest: both encrypted, rotatable keys.

The emulator checks PKCE as Spotify does: a code issued against an S256 challenge is
redeemed only with its verifier. So a login code taken from someone else's login (a log, a
referrer, a forged link) gets nobody in, and the database alone opens no Spotify account.
"""

from __future__ import annotations

import base64
import hashlib

import requests

import database
import spotify
import sync
import token_keys
from helpers import approve, log_in, query, sign_in_and_sync, start_login, user_id

SECRET = "test-secret"  # the spotify_app fixture's FLASK_SECRET_KEY


def token_post(emulator, **form):
    return requests.post(
        emulator.accounts_url + "/api/token",
        data=form,
        auth=(emulator.client_id, emulator.client_secret),
        timeout=5,
    )


def test_login_asks_spotify_with_an_s256_challenge(spotify_app):
    params = start_login(spotify_app.test_client())
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url of a SHA-256, unpadded


def test_a_code_from_another_browsers_login_lets_nobody_in(spotify_app, emulator, db):
    victim, attacker = spotify_app.test_client(), spotify_app.test_client()
    stolen = approve(emulator, start_login(victim), "ava")  # the victim's code, seen in a log
    own = start_login(attacker)  # the attacker's own login attempt: a valid state of theirs
    response = attacker.get("/callback", query_string={"code": stolen["code"], "state": own["state"]})
    assert response.status_code == 400 and "invalid_grant" in response.get_data(as_text=True)
    assert attacker.get("/dashboard").status_code == 302  # not logged in as ava
    assert query(db, "SELECT count(*) FROM users")[0][0] == 0


def test_the_emulator_redeems_a_pkce_code_only_with_its_verifier(emulator):
    verifier, challenge = spotify.pkce_pair()
    assert challenge == base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    redirect = "http://127.0.0.1:5000/callback"

    def code():
        return emulator.state.issue_code(emulator.client_id, redirect, "ava", ["user-top-read"], challenge)

    for wrong in ({}, {"code_verifier": "x" * 60}, {"code_verifier": challenge}):
        answer = token_post(emulator, grant_type="authorization_code", code=code(), redirect_uri=redirect, **wrong)
        assert answer.status_code == 400
        assert answer.json() == {"error": "invalid_grant", "error_description": "code_verifier was incorrect"}
    answer = token_post(
        emulator, grant_type="authorization_code", code=code(), redirect_uri=redirect, code_verifier=verifier
    )
    assert answer.status_code == 200 and answer.json()["access_token"]


def test_the_emulator_refuses_a_plain_challenge_method(emulator):
    page = requests.get(
        emulator.authorize_url,
        params={
            "client_id": emulator.client_id,
            "response_type": "code",
            "redirect_uri": "http://127.0.0.1:5000/callback",
            "code_challenge": "abc",
            "code_challenge_method": "plain",
        },
        timeout=5,
    )
    assert page.status_code == 400 and "code_challenge_method must be S256" in page.text


def stored(db, uid):
    return query(
        db,
        "SELECT access_token, access_token_encrypted, refresh_token_encrypted FROM spotify_tokens WHERE user_id = %s",
        (uid,),
    )[0]


def works_on_spotify(emulator, access_token: str) -> bool:
    answer = requests.get(emulator.api_url + "/v1/me", headers={"Authorization": f"Bearer {access_token}"}, timeout=5)
    return answer.status_code == 200


def test_both_tokens_are_stored_encrypted_only(spotify_app, emulator, db):
    sign_in_and_sync(spotify_app.test_client(), emulator, "bruno")
    plain, access_blob, refresh_blob = stored(db, user_id(db, "bruno"))
    assert plain is None
    cipher = token_keys.cipher(SECRET)
    access, refresh = token_keys.decrypt(cipher, access_blob), token_keys.decrypt(cipher, refresh_blob)
    assert works_on_spotify(emulator, access)
    assert access.encode() not in bytes(access_blob) and refresh.encode() not in bytes(refresh_blob)
    assert token_keys.decrypt(token_keys.cipher("another-secret"), access_blob) is None


def test_a_plain_access_token_from_before_version_10_still_works_and_is_encrypted_at_the_next_write(
    spotify_app, emulator, db
):
    sign_in_and_sync(spotify_app.test_client(), emulator, "chen")
    uid = user_id(db, "chen")
    access = token_keys.decrypt(token_keys.cipher(SECRET), stored(db, uid)[1])
    query(
        db,
        "UPDATE spotify_tokens SET access_token = %s, access_token_encrypted = NULL WHERE user_id = %s",
        (access, uid),
    )
    settings = spotify.settings_for(spotify_app)
    assert spotify.access_token_for(settings, uid) == access  # read as it is
    query(db, "UPDATE spotify_tokens SET expires_at = now() - interval '1 hour' WHERE user_id = %s", (uid,))
    assert "summary" in sync.sync_now(settings, uid)  # refreshed and written anew
    plain, access_blob, _ = stored(db, uid)
    assert plain is None and works_on_spotify(emulator, token_keys.decrypt(token_keys.cipher(SECRET), access_blob))


def test_version_10_clears_expired_plain_access_tokens(conn):
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES ('old'), ('live') RETURNING id")
        old, live = (r[0] for r in cur.fetchall())
        cur.execute(
            "INSERT INTO spotify_tokens (user_id, access_token, expires_at) VALUES "
            "(%s, 'BQ-expired', now() - interval '1 day'), (%s, 'BQ-live', now() + interval '1 hour')",
            (old, live),
        )
    database.apply_schema(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT user_id, access_token FROM spotify_tokens ORDER BY user_id")
        assert cur.fetchall() == [(old, None), (live, "BQ-live")]


def test_a_rotated_secret_still_opens_old_tokens_and_the_command_re_encrypts_them(spotify_app, emulator, db):
    client = spotify_app.test_client()
    log_in(client, emulator, "dana")
    uid = user_id(db, "dana")
    _, before, refresh_before = stored(db, uid)
    spotify_app.config.update(SECRET_KEY="the-new-secret-key", SECRET_KEY_FALLBACKS=[SECRET])
    spotify_app.extensions["spotify"] = None  # settings are rebuilt from the new config
    settings = spotify.settings_for(spotify_app)
    assert works_on_spotify(emulator, spotify.access_token_for(settings, uid))  # the fallback opens it
    assert client.get("/dashboard").status_code == 200  # and still verifies the session cookie

    result = spotify_app.test_cli_runner().invoke(args=["rotate-token-keys"])
    assert result.exit_code == 0 and "1 users' tokens encrypted under the current key" in result.output
    _, after, refresh_after = stored(db, uid)
    new_only = token_keys.cipher("the-new-secret-key")
    assert token_keys.decrypt(new_only, after) == token_keys.decrypt(token_keys.cipher(SECRET), before)
    assert token_keys.decrypt(new_only, refresh_after) == token_keys.decrypt(token_keys.cipher(SECRET), refresh_before)
