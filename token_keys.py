"""The keys that encrypt the Spotify tokens stored in ``spotify_tokens``.

Both tokens (access and refresh) are Fernet tokens (AES-128-CBC + HMAC-SHA256) under a key
derived from FLASK_SECRET_KEY with HKDF, so the database alone, a backup or a leaked dump,
holds nothing that opens anyone's Spotify account. Rotating the secret: put the old one in
FLASK_SECRET_KEY_FALLBACKS (comma-separated; Flask accepts session cookies signed with it
too), deploy, run ``flask --app app rotate-token-keys`` to re-encrypt every stored token
under the new key, then drop the fallback once PERMANENT_SESSION_LIFETIME has passed.
"""

from __future__ import annotations

import base64

import click
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from flask.cli import with_appcontext

# Unchanged since refresh tokens were first encrypted, so their stored ciphertexts still open.
_HKDF_INFO = b"music-time-machine refresh tokens"


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def cipher(secret_key: str, old_secret_keys=()) -> MultiFernet:
    """Encrypts under ``secret_key``; decrypts what it or any of ``old_secret_keys`` encrypted."""
    return MultiFernet([_fernet(secret_key), *(_fernet(k) for k in old_secret_keys if k)])


def encrypt(tokens: MultiFernet, token: str | None) -> bytes | None:
    return None if token is None else tokens.encrypt(token.encode())


def decrypt(tokens: MultiFernet, blob) -> str | None:
    """The token, or None when no key opens it (the secret changed with no fallback: the
    person logs in again)."""
    if blob is None:
        return None
    try:
        return tokens.decrypt(bytes(blob)).decode()
    except InvalidToken:
        return None


def app_cipher(app) -> MultiFernet:
    return cipher(app.config["SECRET_KEY"], app.config.get("SECRET_KEY_FALLBACKS") or ())


@click.command("rotate-token-keys")
@with_appcontext
def rotate_token_keys_command():
    """Re-encrypt every stored Spotify token under the current FLASK_SECRET_KEY."""
    import users_db
    from database import long_running, transaction

    tokens = app_cipher(current_app)
    rotated = unreadable = 0
    with transaction() as cur:
        long_running(cur)
        for row in users_db.stored_tokens(cur):
            access = row["access_token"] or decrypt(tokens, row["access_token_encrypted"])
            refresh = decrypt(tokens, row["refresh_token_encrypted"])
            if refresh is None and row["refresh_token_encrypted"] is not None:
                unreadable += 1  # left as it is: its next refresh fails and the person logs in
            # an access token no key opens is dropped: the next use refreshes it
            users_db.replace_encrypted_tokens(cur, row["user_id"], encrypt(tokens, access), encrypt(tokens, refresh))
            rotated += 1
    click.echo(
        f"{rotated} users' tokens encrypted under the current key"
        + (f"; {unreadable} refresh tokens no key opens (those people log in again)" if unreadable else "")
        + "."
    )
