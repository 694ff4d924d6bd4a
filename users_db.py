"""SQL for users and their Spotify tokens. Connection-first (a cursor), never commits."""

from __future__ import annotations

from database import fetch_all, fetch_one

# A migrated SQLite install whose owner was not named becomes this placeholder user; the
# first person to log in to a server with no other users claims it (and its history).
LEGACY_PLACEHOLDER_USER = "legacy-owner"
LEGACY_PLACEHOLDER_NAME = "Legacy SQLite owner (unclaimed)"


USER_COLUMNS = "id, spotify_id, account_id, display_name, is_placeholder, last_synced_at, created_at"


def user_for_login(cur, account_id: str | None, spotify_id: str, display_name: str | None) -> dict | None:
    """The user for this Spotify account, created on first login, with last_login_at now.

    Found by ``account_id`` first (May 2026: stable for the life of the account, while
    ``id`` is not meant for linking), then by the old Spotify ``id`` for users from before
    account_id, who get theirs filled in. None when the id belongs to a row linked to
    another account_id: handing that row over would give one person another's history.
    A login brings new tokens, so an earlier invalid_grant's mark is cleared.
    """
    if account_id is not None:
        cur.execute(
            f"""
            UPDATE users SET spotify_id = %s, display_name = %s, last_login_at = now(),
                             needs_relogin_since = NULL, invalid_grant_count = 0
            WHERE account_id = %s
            RETURNING {USER_COLUMNS}
        """,
            (spotify_id, display_name, account_id),
        )
        user = fetch_one(cur)
        if user is not None:
            return user
    cur.execute(
        f"""
        INSERT INTO users (spotify_id, account_id, display_name, last_login_at)
        VALUES (%s, %s, %s, now())
        ON CONFLICT (spotify_id) DO UPDATE
            SET account_id = coalesce(users.account_id, EXCLUDED.account_id),
                display_name = EXCLUDED.display_name, last_login_at = now(),
                needs_relogin_since = NULL, invalid_grant_count = 0
            WHERE users.account_id IS NULL OR EXCLUDED.account_id IS NULL
               OR users.account_id = EXCLUDED.account_id
        RETURNING {USER_COLUMNS}
    """,
        (spotify_id, account_id, display_name),
    )
    return fetch_one(cur)


def claim_legacy_placeholder(
    cur, spotify_id: str, display_name: str | None, account_id: str | None = None
) -> dict | None:
    """Hand a migrated placeholder's history to the first real user of this server."""
    cur.execute(
        f"""
        UPDATE users SET spotify_id = %s, account_id = %s, display_name = %s, is_placeholder = false,
                         last_login_at = now()
        WHERE is_placeholder AND spotify_id = %s
          AND NOT EXISTS (SELECT 1 FROM users WHERE NOT is_placeholder)
          AND (SELECT count(*) FROM users WHERE is_placeholder) = 1
        RETURNING {USER_COLUMNS}
    """,
        (spotify_id, account_id, display_name, LEGACY_PLACEHOLDER_USER),
    )
    return fetch_one(cur)


def get_user(cur, user_id: int) -> dict | None:
    cur.execute(
        """
        SELECT u.id, u.spotify_id, u.display_name, u.last_synced_at, u.created_at, u.needs_relogin_since,
               t.expires_at AS token_expires_at, t.refresh_token_expires_at,
               t.user_id IS NOT NULL AS has_token
        FROM users u LEFT JOIN spotify_tokens t ON t.user_id = u.id
        WHERE u.id = %s
    """,
        (user_id,),
    )
    return fetch_one(cur)


def session_version(cur, user_id: int) -> int | None:
    """The version a session cookie of this user must carry; None when the user is gone."""
    cur.execute("SELECT session_version FROM users WHERE id = %s", (user_id,))
    row = cur.fetchone()
    return None if row is None else row[0]


def end_sessions(cur, user_id: int) -> None:
    """Every session cookie issued so far stops opening anything (logout, log out everywhere)."""
    cur.execute("UPDATE users SET session_version = session_version + 1 WHERE id = %s", (user_id,))


def relogin_state(cur, user_id: int) -> dict:
    """Whether Spotify refused the user's refresh token (invalid_grant): since when, how often."""
    cur.execute("SELECT needs_relogin_since, invalid_grant_count FROM users WHERE id = %s", (user_id,))
    return fetch_one(cur) or {"needs_relogin_since": None, "invalid_grant_count": 0}


def mark_invalid_grant(cur, user_id: int) -> int:
    """Count one more invalid_grant (the first one's time is kept); returns the count."""
    cur.execute(
        """
        UPDATE users SET invalid_grant_count = invalid_grant_count + 1,
                         needs_relogin_since = coalesce(needs_relogin_since, now())
        WHERE id = %s RETURNING invalid_grant_count
    """,
        (user_id,),
    )
    row = cur.fetchone()
    return row[0] if row else 0


def clear_relogin(cur, user_id: int) -> None:
    cur.execute("UPDATE users SET needs_relogin_since = NULL, invalid_grant_count = 0 WHERE id = %s", (user_id,))


def mark_synced(cur, user_id: int) -> None:
    cur.execute("UPDATE users SET last_synced_at = now() WHERE id = %s", (user_id,))


def save_tokens(
    cur,
    user_id: int,
    *,
    access_token_encrypted: bytes,
    refresh_token_encrypted: bytes | None,
    expires_at,
    scope: str,
    refresh_token_expires_at=None,
) -> None:
    """Store tokens, both encrypted (the plain access_token column of rows from before
    version 10 is cleared); a refresh that returns no new refresh token keeps the old one."""
    cur.execute(
        """
        INSERT INTO spotify_tokens (user_id, access_token, access_token_encrypted, refresh_token_encrypted,
                                    expires_at, scope, refresh_token_expires_at)
        VALUES (%s, NULL, %s, %s, %s, %s, %s)
        ON CONFLICT (user_id) DO UPDATE SET
            access_token = NULL,
            access_token_encrypted = EXCLUDED.access_token_encrypted,
            refresh_token_encrypted = coalesce(EXCLUDED.refresh_token_encrypted,
                                               spotify_tokens.refresh_token_encrypted),
            expires_at = EXCLUDED.expires_at,
            scope = EXCLUDED.scope,
            refresh_token_expires_at = coalesce(EXCLUDED.refresh_token_expires_at,
                                                spotify_tokens.refresh_token_expires_at)
    """,
        (user_id, access_token_encrypted, refresh_token_encrypted, expires_at, scope, refresh_token_expires_at),
    )


def lock_tokens(cur, user_id: int) -> dict | None:
    cur.execute(
        """
        SELECT access_token, access_token_encrypted, refresh_token_encrypted, expires_at, scope,
               refresh_token_expires_at
        FROM spotify_tokens WHERE user_id = %s FOR UPDATE
    """,
        (user_id,),
    )
    return fetch_one(cur)


def stored_tokens(cur) -> list[dict]:
    """Every user's stored tokens, locked, for re-encryption under a new key."""
    cur.execute("""
        SELECT user_id, access_token, access_token_encrypted, refresh_token_encrypted
        FROM spotify_tokens ORDER BY user_id FOR UPDATE
    """)
    return fetch_all(cur)


def replace_encrypted_tokens(
    cur, user_id: int, access_token_encrypted: bytes | None, refresh_token_encrypted: bytes | None
) -> None:
    """New ciphertexts for a user's tokens; a refresh token given as None stays as it is."""
    cur.execute(
        """
        UPDATE spotify_tokens SET access_token = NULL, access_token_encrypted = %s,
               refresh_token_encrypted = coalesce(%s, refresh_token_encrypted)
        WHERE user_id = %s
    """,
        (access_token_encrypted, refresh_token_encrypted, user_id),
    )


def delete_tokens(cur, user_id: int) -> None:
    cur.execute("DELETE FROM spotify_tokens WHERE user_id = %s", (user_id,))


def users_with_tokens(cur) -> list[dict]:
    """Every user the daily snapshot can sync (a live or refreshable token)."""
    cur.execute("""
        SELECT u.id, u.spotify_id, u.display_name
        FROM users u JOIN spotify_tokens t ON t.user_id = u.id
        WHERE t.refresh_token_encrypted IS NOT NULL OR t.expires_at > now()
        ORDER BY u.id
    """)
    return fetch_all(cur)


def bump_data_version(cur, user_id: int) -> None:
    """Say that something this person's pages show has changed, in the caller's
    transaction: every stored chart of theirs is recomputed at its next view.

    Writes to snapshots, saved_tracks and plays need no call (their statement triggers
    bump, see schema version 11); call it when you change anything else a chart or page
    reads: a setting such as the time zone, or a row of a new table that feeds a chart.
    It locks the person's users row until commit, as those triggers do, so make it after
    any catalogue (tracks, artists) writes of the same transaction: tracks first, then
    the person, is the lock order every writer keeps.
    """
    cur.execute("SELECT bump_data_versions(ARRAY[%s]::bigint[])", (user_id,))


def users_with_tokens_expiring(cur, within_seconds: float) -> list[int]:
    """Users whose access token expires within the given time and can be refreshed."""
    cur.execute(
        """
        SELECT user_id FROM spotify_tokens
        WHERE refresh_token_encrypted IS NOT NULL AND expires_at < now() + make_interval(secs => %s)
        ORDER BY expires_at
    """,
        (within_seconds,),
    )
    return [row[0] for row in cur.fetchall()]
