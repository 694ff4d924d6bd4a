"""Mutable state of one Spotify emulator: accounts, tokens, playlists, clock, faults.

Request threads of the emulator's server and the test or app thread that
flips switches share one `EmulatorState`, so every read-modify-write happens
under its lock. The catalogue itself is immutable and needs no lock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from . import crowd
from . import rate_limit as app_rate_limit
from .listeners import DEMO_USERS
from .live import play_interval_from_env

DEMO_CLIENT_ID = "mtm-demo-client"
DEMO_CLIENT_SECRET = "mtm-demo-secret"  # nosec B105: the emulator's public demo credentials
ACCESS_TOKEN_SECONDS = 3600
CODE_SECONDS = 600
REFRESH_TOKEN_LIFETIME = timedelta(days=182)  # Spotify: six months from consent
_ALL_SCOPES = (
    "user-top-read",
    "user-library-read",
    "user-read-recently-played",
    "playlist-modify-private",
    "playlist-modify-public",
)


class GrantError(Exception):
    """The token endpoint's OAuth error: `error` code and human description."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error, self.description = error, description


@dataclass
class FaultRule:
    kind: str  # rate_limit | server_error | slow | garbage | invalid_grant
    path_prefix: str = "/v1/"
    times: int | None = None  # None: every matching request until reset
    retry_after: int = 1
    status: int = 500
    delay: float = 0.0
    reason: str | None = None  # rate_limit: the body's error.reason ("QUOTA_EXCEEDED" since July 2026)
    # when the rule fired (epoch seconds, the last FIRED_KEPT): fault drills check that nobody
    # kept calling while a 429's Retry-After ran
    fired_at: list = field(default_factory=list)


FIRED_KEPT = 10_000


class Faults:
    """Switches that make the emulator misbehave the way Spotify sometimes does."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self):
        with self._lock:
            self._rules: list[FaultRule] = []
            self.audio_features_enabled = False  # 403 like a 2026 development-mode app

    def rate_limit(
        self, retry_after: int = 1, times: int | None = None, path_prefix: str = "/v1/", reason: str | None = None
    ):
        """A 429; ``reason="QUOTA_EXCEEDED"`` is the July 2026 answer for a used-up quota."""
        self._add(FaultRule("rate_limit", path_prefix, times, retry_after=retry_after, reason=reason))

    def invalid_grant(self, times: int | None = None):
        """Refresh grants answer invalid_grant although the token is fine: what Spotify
        did during an incident (listenbrainz-server PR 1921)."""
        self._add(FaultRule("invalid_grant", "/api/token", times))

    def server_error(self, status: int = 500, times: int | None = None, path_prefix: str = "/v1/"):
        self._add(FaultRule("server_error", path_prefix, times, status=status))

    def slow(self, delay: float, times: int | None = None, path_prefix: str = "/"):
        self._add(FaultRule("slow", path_prefix, times, delay=delay))

    def garbage(self, times: int | None = None, path_prefix: str = "/v1/"):
        self._add(FaultRule("garbage", path_prefix, times))

    def set_audio_features(self, enabled: bool):
        with self._lock:
            self.audio_features_enabled = bool(enabled)

    def _add(self, rule: FaultRule):
        if rule.kind not in ("rate_limit", "server_error", "slow", "garbage", "invalid_grant"):
            raise ValueError(f"unknown fault kind {rule.kind!r}")
        with self._lock:
            self._rules.append(rule)

    def take(self, path: str) -> list[FaultRule]:
        """Rules firing for this request (each use counts against `times`)."""
        fired: list[FaultRule] = []
        with self._lock:
            for rule in list(self._rules):
                if not path.startswith(rule.path_prefix):
                    continue
                if rule.kind != "slow" and any(r.kind != "slow" for r in fired):
                    continue  # one failure per request; the next rule waits its turn
                fired.append(rule)
                rule.fired_at.append(time.time())
                del rule.fired_at[:-FIRED_KEPT]
                if rule.times is not None:
                    rule.times -= 1
                    if rule.times <= 0:
                        self._rules.remove(rule)
        return fired

    def describe(self) -> dict:
        with self._lock:
            return {"rules": [asdict(r) for r in self._rules], "audio_features": self.audio_features_enabled}


@dataclass
class _Token:
    user_id: str
    client_id: str
    scopes: frozenset
    revoked: bool = False


@dataclass
class _AccessToken(_Token):
    expires_at: datetime = field(kw_only=True)


@dataclass
class _RefreshToken(_Token):
    consented_at: datetime = field(kw_only=True)  # the 6-month clock


@dataclass
class Playlist:
    id: str
    owner_id: str
    name: str
    description: str | None
    public: bool
    collaborative: bool
    items: list = field(default_factory=list)  # (uri, added_at)
    version: int = 1


def pkce_matches(verifier: str | None, challenge: str) -> bool:
    """S256: the challenge is BASE64URL(SHA256(verifier)) without padding."""
    if not verifier or not 43 <= len(verifier) <= 128:
        return False
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii", "replace")).digest()).rstrip(b"=")
    return hmac.compare_digest(digest.decode(), challenge)


class EmulatorState:
    """Accounts, tokens and playlists of one emulator, plus its clock and faults."""

    def __init__(self, clients: dict | None = None, allowed_users=None):
        self._lock = threading.Lock()
        self.clients = dict(clients or {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET})
        self.set_allowed_users(allowed_users)
        self.faults = Faults()
        # the per-app limit and the latency of every call (emulator/rate_limit.py)
        self.rate_limit = app_rate_limit.from_env()
        self._frozen_now: datetime | None = None
        self._codes: dict[str, dict] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, _RefreshToken] = {}
        self.playlists: dict[str, Playlist] = {}
        # listeners keep listening from now on (emulator/live.py)
        self.started_at = datetime.now(UTC)
        self.play_interval: float | None = play_interval_from_env()

    # -- clock: tests freeze it so "today's" top tracks are reproducible
    def now(self) -> datetime:
        return self._frozen_now or datetime.now(UTC)

    def set_now(self, when: datetime | None):
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        self._frozen_now = when

    # -- development mode (February 2026): only the users the owner added in the
    # Developer Dashboard (at most 5) may use the app; None lets everyone in (demo mode)
    def set_allowed_users(self, user_ids):
        self.allowed_users = None if user_ids is None else frozenset(user_ids)

    def user_allowed(self, user_id: str) -> bool:
        return self.allowed_users is None or user_id in self.allowed_users

    def register_client(self, client_id: str, client_secret: str):
        with self._lock:
            self.clients[client_id] = client_secret

    def client_ok(self, client_id: str | None, client_secret: str | None) -> bool:
        return client_id in self.clients and secrets.compare_digest(self.clients[client_id], client_secret or "")

    # -- authorization codes
    def issue_code(
        self, client_id: str, redirect_uri: str, user_id: str, scopes, code_challenge: str | None = None
    ) -> str:
        """``code_challenge``: PKCE's S256 challenge, when the authorize request had one."""
        if user_id not in DEMO_USERS:
            raise KeyError(user_id)
        code = "AQ" + secrets.token_urlsafe(48)
        with self._lock:
            self._codes[code] = {
                "client_id": client_id,
                "redirect_uri": redirect_uri,
                "user_id": user_id,
                "scopes": frozenset(scopes),
                "issued_at": self.now(),
                "code_challenge": code_challenge or None,
            }
        return code

    def redeem_code(
        self, code: str, client_id: str, redirect_uri: str | None, code_verifier: str | None = None
    ) -> dict:
        with self._lock:
            # pop: a code works once, whatever the outcome (RFC 6749 4.1.2)
            grant = self._codes.pop(code, None)
        if (
            grant is None
            or grant["client_id"] != client_id
            or self.now() - grant["issued_at"] > timedelta(seconds=CODE_SECONDS)
        ):
            raise GrantError("invalid_grant", "Invalid authorization code")
        if redirect_uri != grant["redirect_uri"]:
            raise GrantError("invalid_grant", "Invalid redirect URI")
        # PKCE (RFC 7636): a code issued against a challenge is redeemed only with the
        # verifier it was made from, so a code stolen on its way back is useless elsewhere.
        if grant["code_challenge"] and not pkce_matches(code_verifier, grant["code_challenge"]):
            raise GrantError("invalid_grant", "code_verifier was incorrect")
        refresh = secrets.token_urlsafe(96)
        with self._lock:
            self._refresh[refresh] = _RefreshToken(
                grant["user_id"], client_id, grant["scopes"], consented_at=self.now()
            )
        return self._new_access(grant["user_id"], client_id, grant["scopes"]) | {"refresh_token": refresh}

    def refresh(self, refresh_token: str, client_id: str) -> dict:
        with self._lock:
            token = self._refresh.get(refresh_token)
        if token is None or token.client_id != client_id or token.revoked:
            raise GrantError("invalid_grant", "Refresh token revoked")
        if self.now() - token.consented_at > REFRESH_TOKEN_LIFETIME:
            raise GrantError("invalid_grant", "Refresh token expired")
        # like Spotify mostly does, no new refresh token: the client keeps the old one
        return self._new_access(token.user_id, client_id, token.scopes)

    def _new_access(self, user_id: str, client_id: str, scopes) -> dict:
        access = "BQ" + secrets.token_urlsafe(96)
        with self._lock:
            self._access[access] = _AccessToken(
                user_id, client_id, frozenset(scopes), expires_at=self.now() + timedelta(seconds=ACCESS_TOKEN_SECONDS)
            )
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_SECONDS,  # nosec B105
            "scope": " ".join(sorted(scopes)),
        }

    def access_token_user(self, access_token: str) -> tuple[_AccessToken | None, str]:
        """(token, problem): problem is '' when the token may be used."""
        with self._lock:
            token = self._access.get(access_token)
        if token is None or token.revoked:
            return None, "Invalid access token"
        if self.now() >= token.expires_at:
            return None, "The access token expired"
        return token, ""

    def add_crowd(self, count: int, client_id: str = DEMO_CLIENT_ID) -> list[dict]:
        """Simulated listeners crowd-1 ... crowd-``count`` (emulator/crowd.py), each with a
        fresh token pair for ``client_id`` and every scope: what a login would give them."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= crowd.MAX_COUNT:
            raise ValueError(f"crowd: count must be a whole number from 1 to {crowd.MAX_COUNT}")
        if client_id not in self.clients:
            raise ValueError(f"crowd: unknown client {client_id!r}")
        scopes = frozenset(_ALL_SCOPES)
        listeners = []
        for number in range(1, count + 1):
            user_id = crowd.listener_id(number)
            refresh = secrets.token_urlsafe(48)
            with self._lock:
                self._refresh[refresh] = _RefreshToken(user_id, client_id, scopes, consented_at=self.now())
            grant = self._new_access(user_id, client_id, scopes) | {"refresh_token": refresh}
            listeners.append({"id": user_id, "display_name": crowd.display_name(user_id)} | grant)
        return listeners

    def revoke_refresh_tokens(self, user_id: str | None = None):
        """Every refresh token (of one user, or all) now answers invalid_grant."""
        with self._lock:
            for token in self._refresh.values():
                if user_id is None or token.user_id == user_id:
                    token.revoked = True

    def expire_refresh_tokens(self, user_id: str | None = None):
        """Age consents past Spotify's six months, as if half a year went by."""
        with self._lock:
            for token in self._refresh.values():
                if user_id is None or token.user_id == user_id:
                    token.consented_at -= REFRESH_TOKEN_LIFETIME + timedelta(days=1)

    def expire_access_tokens(self, user_id: str | None = None):
        with self._lock:
            for token in self._access.values():
                if user_id is None or token.user_id == user_id:
                    token.expires_at = self.now() - timedelta(seconds=1)

    # -- playlists
    def create_playlist(self, owner_id: str, name: str, description, public: bool, collaborative: bool) -> Playlist:
        playlist = Playlist(_base62(22), owner_id, name, description, public, collaborative)
        with self._lock:
            self.playlists[playlist.id] = playlist
        return playlist

    def add_playlist_items(self, playlist: Playlist, uris: list, position: int | None) -> str:
        added_at = self.now()
        with self._lock:
            at = len(playlist.items) if position is None else max(0, min(position, len(playlist.items)))
            playlist.items[at:at] = [(uri, added_at) for uri in uris]
            playlist.version += 1
            return snapshot_id(playlist)

    def replace_playlist_items(self, playlist: Playlist, uris: list) -> str:
        added_at = self.now()
        with self._lock:
            playlist.items[:] = [(uri, added_at) for uri in uris]
            playlist.version += 1
            return snapshot_id(playlist)


def snapshot_id(playlist: Playlist) -> str:
    return f"{playlist.version:08d}{playlist.id[:16]}"


def _base62(length: int) -> str:
    alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(length))
