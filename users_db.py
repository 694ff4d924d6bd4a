"""SQL for users and their Spotify tokens. Connection-first (a cursor), never commits."""

from __future__ import annotations

from database import fetch_all, fetch_one, fetch_single

# A migrated SQLite install whose owner was not named becomes this placeholder user; the
# first person to log in to a server with no other users claims it (and its history).
LEGACY_PLACEHOLDER_USER = "legacy-owner"
LEGACY_PLACEHOLDER_NAME = "Legacy SQLite owner (unclaimed)"


def upsert_user(cur, spotify_id: str, display_name: str | None) -> dict:
    """The user for this Spotify account, created on first login, with last_login_at now."""
    cur.execute(
        """
        INSERT INTO users (spotify_id, display_name, last_login_at)
        VALUES (%s, %s, now())
        ON CONFLICT (spotify_id) DO UPDATE
            SET display_name = EXCLUDED.display_name, last_login_at = now()
        RETURNING id, spotify_id, display_name, is_placeholder, last_synced_at, created_at
    """,
        (spotify_id, display_name),
    )
    return fetch_single(cur)


def claim_legacy_placeholder(cur, spotify_id: str, display_name: str | None) -> dict | None:
    """Hand a migrated placeholder's history to the first real user of this server."""
    cur.execute(
        """
        UPDATE users SET spotify_id = %s, display_name = %s, is_placeholder = false, last_login_at = now()
        WHERE is_placeholder AND spotify_id = %s
          AND NOT EXISTS (SELECT 1 FROM users WHERE NOT is_placeholder)
          AND (SELECT count(*) FROM users WHERE is_placeholder) = 1
        RETURNING id, spotify_id, display_name, is_placeholder, last_synced_at, created_at
    """,
        (spotify_id, display_name, LEGACY_PLACEHOLDER_USER),
    )
    return fetch_one(cur)


def get_user(cur, user_id: int) -> dict | None:
    cur.execute(
        """
        SELECT u.id, u.spotify_id, u.display_name, u.last_synced_at, u.created_at,
               t.expires_at AS token_expires_at, t.refresh_token_expires_at,
               t.user_id IS NOT NULL AS has_token
        FROM users u LEFT JOIN spotify_tokens t ON t.user_id = u.id
        WHERE u.id = %s
    """,
        (user_id,),
    )
    return fetch_one(cur)


def user_exists(cur, user_id: int) -> bool:
    cur.execute("SELECT 1 FROM users WHERE id = %s", (user_id,))
    return cur.fetchone() is not None


def mark_synced(cur, user_id: int) -> None:
    cur.execute("UPDATE users SET last_synced_at = now() WHERE id = %s", (user_id,))


def save_tokens(
    cur,
    user_id: int,
    *,
    access_token: str,
    refresh_token_encrypted: bytes | None,
    expires_at,
    scope: str,
    refresh_token_expires_at=None,
) -> None:
    """Store tokens; a refresh that returns no new refresh token keeps the old one."""
    cur.execute(
        """
        INSERT INTO spotify_tokens (user_id, access_token, refresh_token_encrypted, expires_at, scope,
                                    refresh_token_expires_at)
        VALUES (%s, %s, %s, %s, %s, %s)
        ON CONFLICT (user_id) DO UPDATE SET
            access_token = EXCLUDED.access_token,
            refresh_token_encrypted = coalesce(EXCLUDED.refresh_token_encrypted,
                                               spotify_tokens.refresh_token_encrypted),
            expires_at = EXCLUDED.expires_at,
            scope = EXCLUDED.scope,
            refresh_token_expires_at = coalesce(EXCLUDED.refresh_token_expires_at,
                                                spotify_tokens.refresh_token_expires_at)
    """,
        (user_id, access_token, refresh_token_encrypted, expires_at, scope, refresh_token_expires_at),
    )


def lock_tokens(cur, user_id: int) -> dict | None:
    cur.execute(
        """
        SELECT access_token, refresh_token_encrypted, expires_at, scope, refresh_token_expires_at
        FROM spotify_tokens WHERE user_id = %s FOR UPDATE
    """,
        (user_id,),
    )
    return fetch_one(cur)


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
