"""Everything that talks to Spotify; the only module that imports spotipy.

- OAuth: authorization-code flow with a one-time ``state`` and PKCE (S256); codes exchanged
  with ``check_cache=False``; spotipy only ever sees a ``MemoryCacheHandler`` (its default
  file cache would share one token between all users).
- Tokens live in ``spotify_tokens`` (users_db), both encrypted with Fernet under a key
  derived from the app's secret (token_keys.py); refreshed a minute before expiry, under a row
  lock so two workers never refresh at once. ``invalid_grant`` (revoked, the 6-month
  expiry, or Spotify's own incident) raises ``ReloginNeeded``: the first one keeps the
  encrypted refresh token and marks the account (``users.needs_relogin_since``), one retry
  is allowed an hour later, and only a second confirms it and deletes the tokens.
- Retries are ours, not spotipy's (its clients get a plain ``requests.Session``, so
  urllib3 never retries): a 429 is waited out only while the total wait stays under
  ``RATE_LIMIT_WAIT_CAP`` seconds, else ``RateLimited`` tells the person how long Spotify
  wants; a 429 whose body says ``QUOTA_EXCEEDED`` is never retried (``QuotaExceeded``);
  5xx and timeouts get two quick retries, then ``SpotifyUnavailable``.
- 403 "User not registered in the Developer Dashboard" (development mode) is
  ``UserNotRegistered``, whose message says what the app's owner must do.
- Answers come back as plain dicts and lists; nothing outside this file sees spotipy.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import math
import secrets
import threading
import time
import warnings
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

import requests
import spotipy
from cryptography.fernet import MultiFernet
from spotipy.exceptions import SpotifyException, SpotifyOauthError

import token_keys
import users_db
from database import transaction

SCOPES = "user-top-read user-library-read user-read-recently-played playlist-modify-private playlist-modify-public"
# Spotify's three top-tracks windows, named as its reference describes them: long_term is
# "calculated from ~1 year of data", not all time.
TIME_RANGE_LABELS = {"short_term": "Last 4 weeks", "medium_term": "Last 6 months", "long_term": "About a year"}
TIME_RANGES = tuple(TIME_RANGE_LABELS)
RATE_LIMIT_WAIT_CAP = 10  # seconds a request may spend waiting out 429s
REQUEST_TIMEOUT = 10  # seconds per HTTP call to Spotify
REFRESH_MARGIN = timedelta(seconds=60)
SERVER_ERROR_RETRIES = 2
NOT_REGISTERED = "User not registered in the Developer Dashboard"  # development mode's 403
REFRESH_TOKEN_LIFETIME = timedelta(days=182)  # Spotify: 6 months after consent
RELOGIN_RETRY_AFTER = timedelta(hours=1)  # after a first invalid_grant, when the one retry is allowed
CONFIRMING_INVALID_GRANTS = 2  # the first may be Spotify's incident; the second is believed
NOT_RENEWED = (
    "Spotify did not accept this app's access to your account. It may have been revoked, it "
    "may be older than six months, or Spotify may be having trouble; we will try once more "
    "later. Please log in again to fix it now; your history here is safe."
)
# GET /me/top/tracks answers an empty page from offset 50 on (spotify/web-api issues 1424,
# 1539, 1592), so the 99 tracks anyone can reach are offset 0 and offset 49, 50 each.
TOP_TRACKS_PAGE = 50
TOP_TRACKS_OFFSETS = (0, 49)

log = logging.getLogger(__name__)
# spotipy logs every non-2xx at ERROR with the full URL; _call logs what matters instead.
logging.getLogger("spotipy.client").setLevel(logging.CRITICAL)


class SpotifyError(Exception):
    """Something a person should be told about; ``status`` is the HTTP status to answer with."""

    status = 502

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class LoginRequired(SpotifyError):
    status = 401


class ReloginNeeded(LoginRequired):
    """Spotify answered ``invalid_grant`` to our refresh. The person stays signed in to this
    app (their history is here) and reads a notice; only logging in again renews access."""


class AuthorizationFailed(SpotifyError):
    status = 400


class RateLimited(SpotifyError):
    status = 503

    def __init__(self, retry_after: int):
        super().__init__(f"Spotify asked us to wait {retry_after} s before trying again.")
        self.retry_after = retry_after


class SpotifyUnavailable(SpotifyError):
    status = 502


class SpotifyNotFound(SpotifyUnavailable):
    """404 (or 400 for an id Spotify cannot parse): nothing there, asking again will not help."""


class SpotifyForbidden(SpotifyError):
    """403: this app may not use the endpoint (audio features for new apps)."""

    status = 502


class QuotaExceeded(SpotifyError):
    """429 with reason QUOTA_EXCEEDED (July 2026): the app's quota is used up, which no
    short wait cures. Never retried; work that would call Spotify should stop."""

    status = 503

    def __init__(self, retry_after: int):
        super().__init__(
            "This app has used up its Spotify quota for now, so Spotify is not answering it "
            f"(Spotify says to wait {describe_wait(retry_after)}). Nothing was changed; please try again "
            "later. The app's administrator has been told."
        )
        self.retry_after = retry_after


class UserNotRegistered(SpotifyError):
    """403 "User not registered in the Developer Dashboard": a development-mode app (since
    February 2026) serves only the people its owner added, at most five."""

    status = 403

    def __init__(self):
        super().__init__(
            "Spotify refused your account: this app is in Spotify's development mode and you are not "
            "on its list of users yet. The app's owner must open the Spotify Developer Dashboard, "
            "choose this app, go to User Management and add your name and the e-mail address of "
            "your Spotify account. Development-mode apps allow at most 5 users and need an owner "
            "with Spotify Premium. Then log in again."
        )


@dataclass(frozen=True)
class SpotifySettings:
    client_id: str
    client_secret: str
    redirect_uri: str
    secret_key: str
    old_secret_keys: tuple[str, ...] = ()  # FLASK_SECRET_KEY_FALLBACKS: still open stored tokens
    accounts_url: str = "https://accounts.spotify.com"
    api_url: str = "https://api.spotify.com"
    demo: bool = False
    timeout: float = REQUEST_TIMEOUT
    demo_backfill_weeks: int = 26  # a new demo user sees six months of weekly history at once
    # Audio features answer 403 for new apps; once seen, stop asking for this process's life.
    audio_features_forbidden: dict = field(default_factory=lambda: {"value": False}, compare=False)


# -- OAuth ------------------------------------------------------------------------
def oauth_manager(
    settings: SpotifySettings, state: str | None = None, session: requests.Session | None = None
) -> spotipy.SpotifyOAuth:
    manager = spotipy.SpotifyOAuth(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        redirect_uri=settings.redirect_uri,
        scope=SCOPES,
        state=state,
        open_browser=False,
        cache_handler=spotipy.MemoryCacheHandler(),
        requests_timeout=settings.timeout,
        requests_session=session or True,
    )
    manager.OAUTH_AUTHORIZE_URL = settings.accounts_url + "/authorize"
    manager.OAUTH_TOKEN_URL = settings.accounts_url + "/api/token"
    return manager


# PKCE (RFC 7636, S256) on top of the client secret: the login's code is bound to a
# verifier that never leaves this server and the person's session, so a code stolen on its
# way back (a log, a referrer, a forged callback in someone else's browser) is worthless.
def pkce_pair() -> tuple[str, str]:
    """(code_verifier, code_challenge): 86 URL-safe characters and their S256 digest."""
    verifier = secrets.token_urlsafe(64)
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def authorize_url(settings: SpotifySettings, state: str, code_challenge: str) -> str:
    url = oauth_manager(settings, state).get_authorize_url()
    return f"{url}&{urlencode({'code_challenge': code_challenge, 'code_challenge_method': 'S256'})}"


class _CodeExchangeWithVerifier(requests.Session):
    """spotipy's code exchange with PKCE's ``code_verifier`` added to the form (spotipy
    sends one only from SpotifyPKCE, the flow for apps without a client secret)."""

    def __init__(self, code_verifier: str):
        super().__init__()
        self.code_verifier = code_verifier

    def post(self, url, data=None, **kwargs):  # type: ignore[override]
        if isinstance(data, dict) and data.get("grant_type") == "authorization_code":
            data = {**data, "code_verifier": self.code_verifier}
        return super().post(url, data=data, **kwargs)


def exchange_code(settings: SpotifySettings, code: str, code_verifier: str) -> dict:
    """Trade a one-time authorization code for {access_token, refresh_token, expires_at, scope}."""
    manager = oauth_manager(settings, session=_CodeExchangeWithVerifier(code_verifier))
    try:
        with warnings.catch_warnings():  # as_dict=True is "deprecated" but the only way to get the refresh token
            warnings.simplefilter("ignore", DeprecationWarning)
            info = manager.get_access_token(code, as_dict=True, check_cache=False)
    except SpotifyOauthError as exc:
        raise AuthorizationFailed(
            f"Spotify refused the login ({exc.error or 'unknown error'}). Please try logging in again."
        ) from None
    except requests.RequestException:
        raise SpotifyUnavailable("Spotify did not answer while logging you in. Please try again.") from None
    return token_record(info)


def token_record(info: dict) -> dict:
    if not isinstance(info, dict) or not info.get("access_token"):
        raise SpotifyUnavailable("Spotify sent a login answer we could not read.")
    return {
        "access_token": info["access_token"],
        "refresh_token": info.get("refresh_token"),
        "expires_at": datetime.fromtimestamp(int(info["expires_at"]), UTC),
        "scope": info.get("scope") or SCOPES,
    }


# -- token storage ------------------------------------------------------------------
def token_cipher(settings: SpotifySettings) -> MultiFernet:
    return token_keys.cipher(settings.secret_key, settings.old_secret_keys)


def store_tokens(cur, settings: SpotifySettings, user_id: int, record: dict, consented: bool) -> None:
    users_db.save_tokens(
        cur,
        user_id,
        access_token_encrypted=token_cipher(settings).encrypt(record["access_token"].encode()),
        refresh_token_encrypted=token_keys.encrypt(token_cipher(settings), record.get("refresh_token")),
        expires_at=record["expires_at"],
        scope=record["scope"],
        refresh_token_expires_at=(datetime.now(UTC) + REFRESH_TOKEN_LIFETIME) if consented else None,
    )


def access_token_for(settings: SpotifySettings, user_id: int, ahead: timedelta = REFRESH_MARGIN) -> str:
    """A valid access token for the user, refreshed if it expires within ``ahead``
    (housekeeping renews tokens further ahead than a call needs)."""
    with transaction() as cur:
        outcome = _current_or_refreshed_token(cur, settings, user_id, ahead)
    # Raised only now, after the commit: a dead token's deletion must stick.
    if isinstance(outcome, SpotifyError):
        raise outcome
    return outcome


def _current_or_refreshed_token(cur, settings: SpotifySettings, user_id: int, ahead: timedelta = REFRESH_MARGIN):
    tokens = users_db.lock_tokens(cur, user_id)  # FOR UPDATE: one refresh at a time per user
    if tokens is None:
        return LoginRequired("Please log in with Spotify.")
    cipher = token_cipher(settings)
    # a plain token is a row from before version 10; the next write encrypts it
    access_token = tokens["access_token"] or token_keys.decrypt(cipher, tokens["access_token_encrypted"])
    if access_token and tokens["expires_at"] - ahead > datetime.now(UTC):
        return access_token
    refresh_token = token_keys.decrypt(cipher, tokens["refresh_token_encrypted"])
    if refresh_token is None:
        users_db.delete_tokens(cur, user_id)
        return LoginRequired("Your Spotify session has ended. Please log in again.")
    relogin = users_db.relogin_state(cur, user_id)
    if relogin["needs_relogin_since"] and relogin["needs_relogin_since"] + RELOGIN_RETRY_AFTER > datetime.now(UTC):
        return ReloginNeeded(NOT_RENEWED)  # the one later retry is not due yet: Spotify is not asked
    try:
        info = oauth_manager(settings).refresh_access_token(refresh_token)
    except SpotifyOauthError as exc:
        if exc.error == "invalid_grant":
            return _invalid_grant(cur, user_id)
        return SpotifyUnavailable("Spotify refused to renew your session. Please try again later.")
    except requests.RequestException:
        return SpotifyUnavailable("Spotify did not answer while renewing your session.")
    # Spotify mostly sends no new refresh token: the old one is written back under the
    # current key, so a rotated secret reaches it too
    record = {"refresh_token": refresh_token} | {k: v for k, v in token_record(info).items() if v is not None}
    store_tokens(cur, settings, user_id, record, consented=False)
    if relogin["invalid_grant_count"]:  # the retry worked: that invalid_grant was Spotify's fault
        users_db.clear_relogin(cur, user_id)
    return record["access_token"]


def _invalid_grant(cur, user_id: int) -> ReloginNeeded:
    """Spotify has sent invalid_grant for good tokens during an incident, and apps that
    deleted tokens on the first one lost everyone's (listenbrainz-server PR 1921). The
    first one keeps the encrypted refresh token and marks the account; a second, on the
    retry an hour or more later, confirms it and the token goes."""
    count = users_db.mark_invalid_grant(cur, user_id)
    if count < CONFIRMING_INVALID_GRANTS:
        log.warning(
            "user %s: Spotify answered invalid_grant; refresh token kept, one retry after %s",
            user_id,
            RELOGIN_RETRY_AFTER,
        )
        return ReloginNeeded(NOT_RENEWED)
    users_db.delete_tokens(cur, user_id)
    log.warning("user %s: invalid_grant confirmed by a later retry; tokens deleted", user_id)
    return ReloginNeeded(
        "Spotify no longer accepts this app's access to your account (it was revoked, or it is "
        "older than six months). Your history here is safe; please log in again to keep syncing."
    )


# -- the Web API --------------------------------------------------------------------
class CallBudget:
    """Asked before every Web API call and told of every 429. This default keeps no
    shared state; jobs.rate_budget.SharedBudget shares one budget across the deployment."""

    def before_call(self) -> tuple[float, float]:
        """(seconds to wait for this call's turn, seconds every call is blocked for)."""
        return 0.0, 0.0

    def rate_limited(self, retry_after: float) -> None:
        pass

    def quota_exceeded(self, retry_after: float) -> None:
        pass


_budget = CallBudget()


def use_budget(budget: CallBudget) -> None:
    global _budget
    _budget = budget


class SpotifyClient:
    """The calls the app makes, each returning plain dicts, with our retry policy."""

    def __init__(self, settings: SpotifySettings, access_token: str, sleep=time.sleep):
        self.settings = settings
        self._sleep = sleep
        # A plain session: spotipy's own retrying session sleeps through a whole
        # Retry-After and then reports a 429 without its headers.
        self._sp = spotipy.Spotify(
            auth=access_token, requests_session=requests.Session(), requests_timeout=settings.timeout
        )
        self._sp.prefix = settings.api_url + "/v1/"

    @classmethod
    def for_user(cls, settings: SpotifySettings, user_id: int) -> SpotifyClient:
        return cls(settings, access_token_for(settings, user_id))

    def _call(self, method, *args, **kwargs):
        return self._call_expecting((), method, *args, **kwargs)

    def _call_expecting(self, expected: tuple[type[SpotifyError], ...], method, *args, **kwargs):
        """``expected``: errors the caller handles as a normal answer, so they are not
        logged as a WARNING here (the caller says what happened, at its own level)."""
        name = getattr(method, "__name__", method)
        try:
            return self._call_with_retries(method, *args, **kwargs)
        except QuotaExceeded as exc:
            # the operator's line (the person reads exc.message); no URL, no token
            log.error(
                "Spotify quota exceeded (429 QUOTA_EXCEEDED, Retry-After %s s) on %s: this Spotify app's "
                "quota is used up; not retrying, stop calling Spotify until it refills",
                exc.retry_after,
                name,
            )
            raise
        except SpotifyError as exc:
            if not isinstance(exc, expected):
                log.warning("Spotify call %s failed: %s", name, exc.message)
            raise

    def _call_with_retries(self, method, *args, **kwargs):
        waited, server_errors = 0.0, 0
        while True:
            turn, blocked = _budget.before_call()
            if blocked > 0:  # another worker's 429: wait it out like our own
                if waited + blocked > RATE_LIMIT_WAIT_CAP:
                    raise RateLimited(math.ceil(blocked))
                waited += blocked
                self._sleep(blocked)
                continue
            if turn > 0:
                self._sleep(turn)
            try:
                result = method(*args, **kwargs)
            except SpotifyException as exc:
                if exc.http_status == 429:
                    retry_after = retry_after_seconds(exc.headers)
                    if exc.reason == "QUOTA_EXCEEDED":
                        _budget.quota_exceeded(retry_after)
                        raise QuotaExceeded(retry_after) from None
                    _budget.rate_limited(retry_after)
                    if waited + retry_after > RATE_LIMIT_WAIT_CAP:
                        raise RateLimited(retry_after) from None
                    waited += retry_after
                    self._sleep(retry_after)
                    continue
                if exc.http_status == 403:
                    if NOT_REGISTERED in (exc.msg or ""):
                        raise UserNotRegistered() from None
                    raise SpotifyForbidden("Spotify does not let this app use that feature.") from None
                if exc.http_status == 401:
                    raise LoginRequired("Spotify no longer accepts our session. Please log in again.") from None
                if exc.http_status in (400, 404):
                    raise SpotifyNotFound(f"Spotify has no such item ({exc.http_status}).") from None
                if exc.http_status >= 500 and server_errors < SERVER_ERROR_RETRIES:
                    server_errors += 1
                    self._sleep(0.5 * server_errors)
                    continue
                raise SpotifyUnavailable(
                    f"Spotify answered with an error ({exc.http_status}). Please try again later."
                ) from None
            except requests.RequestException:
                if server_errors < 1:  # once: a timeout already cost a whole REQUEST_TIMEOUT
                    server_errors += 1
                    continue
                raise SpotifyUnavailable("Spotify did not answer in time. Please try again later.") from None
            if result is None or not isinstance(result, (dict, list)):
                raise SpotifyUnavailable("Spotify sent an answer we could not read.")
            return result

    def _all_pages(self, first_page: dict, item_check, on_page=None) -> list:
        items, page = [], first_page
        while True:
            items.extend(self._page_items(page, item_check))
            if on_page:
                on_page(len(items), page.get("total"))
            if not page.get("next"):
                return items
            page = self._call(self._sp.next, page)

    def me(self) -> dict:
        profile = self._call(self._sp.me)
        if not isinstance(profile.get("id"), str) or not profile["id"]:
            raise SpotifyUnavailable("Spotify sent a profile we could not read.")
        return profile

    def top_tracks(self, time_range: str, as_of: date | None = None) -> list:
        """The top tracks for the range, best first: at most 99, the most Spotify lets
        anyone reach (see ``TOP_TRACKS_OFFSETS``). ``as_of`` is an emulator extension
        (demo mode only) that answers as Spotify would have on that day."""
        params = {"time_range": time_range, "limit": TOP_TRACKS_PAGE}
        if as_of is not None:
            if not self.settings.demo:
                raise ValueError("as_of only exists on the emulator")
            params["as_of"] = as_of.isoformat()
        first_offset, second_offset = TOP_TRACKS_OFFSETS
        first = self._page_items(self._call(self._sp._get, "me/top/tracks", offset=first_offset, **params))
        if len(first) < TOP_TRACKS_PAGE:
            return first
        second = self._page_items(self._call(self._sp._get, "me/top/tracks", offset=second_offset, **params))
        # The pages overlap in one position (50): by position, not by id, since a top
        # list may name one track twice (spotify/web-api#1013).
        return first + second[TOP_TRACKS_PAGE - second_offset :]

    def _page_items(self, page: dict, item_check=None) -> list:
        items = page.get("items") if isinstance(page, dict) else None
        if not isinstance(items, list) or not all((item_check or is_track_object)(i) for i in items):
            raise SpotifyUnavailable("Spotify sent a page of results we could not read.")
        return items

    def saved_tracks(self, on_page=None) -> list:
        """The whole library, page by page; ``on_page(done, total)`` after each page."""
        first = self._call(self._sp.current_user_saved_tracks, limit=50)
        return self._all_pages(
            first, lambda i: isinstance(i, dict) and "added_at" in i and is_track_object(carried(i)), on_page
        )

    def recently_played(self, after_ms: int | None = None) -> list:
        """The last 50 plays, newest first; with ``after_ms`` only those after it (the
        capture's cursor: ms since the epoch of the newest play already seen)."""
        page = self._call(self._sp.current_user_recently_played, limit=50, after=after_ms)
        return self._all_pages(
            {**page, "next": None},
            lambda i: isinstance(i, dict) and "played_at" in i and is_track_object(carried(i)),
        )

    def audio_features(self, track_ids: list) -> list:
        """Audio features for the tracks, or [] when Spotify forbids them (new apps)."""
        flag = self.settings.audio_features_forbidden
        if flag["value"] or not track_ids:
            return []
        found: list[dict] = []
        for start in range(0, len(track_ids), 100):
            try:
                # new apps get 403 here since Nov 2024: expected, so INFO below, not a WARNING
                batch = track_ids[start : start + 100]
                answer = self._call_expecting((SpotifyForbidden,), self._sp.audio_features, batch)
            except SpotifyForbidden:
                flag["value"] = True
                log.info("audio features are forbidden for this Spotify app; not asking again")
                return found
            found.extend(f for f in answer if isinstance(f, dict) and f.get("id"))
        return found

    def track(self, track_id: str) -> dict:
        """One full track object, ``GET /v1/tracks/{id}`` (the batch endpoint is gone for
        development-mode apps since February 2026); SpotifyNotFound when there is none."""
        answer = self._call(self._sp.track, track_id)
        if not isinstance(answer.get("id"), str):
            raise SpotifyUnavailable("Spotify sent a track we could not read.")
        return answer

    def search_tracks(self, query: str, limit: int = 10, offset: int = 0) -> list:
        answer = self._call(self._sp.search, q=query, type="track", limit=min(limit, 10), offset=offset)
        return [t for t in answer.get("tracks", {}).get("items", []) if is_track_object(t)]

    def create_playlist(self, name: str, description: str, public: bool = False) -> dict:
        return self._call(self._sp.current_user_playlist_create, name, public=public, description=description)

    def add_to_playlist(self, playlist_id: str, uris: list) -> None:
        for start in range(0, len(uris), 100):  # Spotify takes at most 100 per request
            self._call(self._sp.playlist_add_items, playlist_id, uris[start : start + 100])

    def replace_playlist_items(self, playlist_id: str, uris: list) -> None:
        """The playlist holds ``uris`` and nothing else: the first 100 replace every item
        (``PUT /playlists/{id}/items``), the rest are added; SpotifyNotFound when the person
        has deleted it."""
        self._call_expecting((SpotifyNotFound,), self._sp.playlist_replace_items, playlist_id, uris[:100])
        self.add_to_playlist(playlist_id, uris[100:])


def catalogue_track(value) -> dict | None:
    """``value`` if it is a track of Spotify's catalogue, else None: a podcast episode
    (``type`` "episode"; playlists also send episodes track-shaped with ``episode`` true),
    a local file (``is_local``, id null) or a removed track (null) is never one."""
    if not isinstance(value, dict) or value.get("is_local") or value.get("episode") is True:
        return None
    if value.get("type", "track") != "track" or not isinstance(value.get("id"), str) or not value["id"]:
        return None
    return value


def carried(item) -> dict | None:
    """What an item of a list carries: ``item`` in playlist items since February 2026,
    ``track`` before (and in saved and recently-played items); some answers have both."""
    if not isinstance(item, dict):
        return None
    return item["item"] if isinstance(item.get("item"), dict) else item.get("track")


def item_kind(item) -> str:
    """'track', 'episode', 'local file' or 'unavailable': what a sync counts it as."""
    value = carried(item)
    if catalogue_track(value) is not None:
        return "track"
    if isinstance(value, dict) and (value.get("type") == "episode" or value.get("episode") is True):
        return "episode"
    if isinstance(value, dict) and (value.get("is_local") or (isinstance(item, dict) and item.get("is_local"))):
        return "local file"
    return "unavailable"


def is_track_object(value) -> bool:
    """Local files and removed tracks come without an id; a real track has one."""
    return value is None or (isinstance(value, dict) and (value.get("id") is None or isinstance(value.get("id"), str)))


def describe_wait(seconds: int) -> str:
    if seconds >= 2 * 3600:
        return f"about {round(seconds / 3600)} hours"
    if seconds >= 120:
        return f"about {round(seconds / 60)} minutes"
    return f"{seconds} s"


def retry_after_seconds(headers) -> int:
    try:
        return max(1, int(float((headers or {}).get("Retry-After", 1))))
    except (TypeError, ValueError):
        return 1


# -- app wiring -----------------------------------------------------------------------
def init_app(app) -> None:
    """Real Spotify when SPOTIPY_CLIENT_ID is set; otherwise demo mode on the emulator.
    Settings are built on first use, so commands that never call Spotify (init-db) never
    start an emulator."""
    app.extensions["spotify"] = None
    app.cli.add_command(token_keys.rotate_token_keys_command)


def settings_from_config(config) -> SpotifySettings:
    timeout = float(config.get("SPOTIFY_REQUEST_TIMEOUT") or REQUEST_TIMEOUT)
    if config.get("SPOTIPY_CLIENT_ID"):
        return SpotifySettings(
            client_id=config["SPOTIPY_CLIENT_ID"],
            client_secret=config.get("SPOTIPY_CLIENT_SECRET") or "",
            redirect_uri=config.get("SPOTIPY_REDIRECT_URI") or "http://127.0.0.1:5000/callback",
            secret_key=config["SECRET_KEY"],
            old_secret_keys=tuple(config.get("SECRET_KEY_FALLBACKS") or ()),
            accounts_url=config.get("SPOTIFY_ACCOUNTS_URL") or "https://accounts.spotify.com",
            api_url=config.get("SPOTIFY_API_URL") or "https://api.spotify.com",
            timeout=timeout,
        )
    from emulator import server as spotify_emulator

    emulator_url = config.get("SPOTIFY_EMULATOR_URL") or demo_emulator_url()
    return SpotifySettings(
        client_id=spotify_emulator.DEMO_CLIENT_ID,
        client_secret=spotify_emulator.DEMO_CLIENT_SECRET,
        redirect_uri=config.get("SPOTIPY_REDIRECT_URI") or "",
        secret_key=config["SECRET_KEY"],
        old_secret_keys=tuple(config.get("SECRET_KEY_FALLBACKS") or ()),
        accounts_url=emulator_url,
        api_url=emulator_url,
        demo=True,
        timeout=timeout,
        demo_backfill_weeks=int(config.get("DEMO_BACKFILL_WEEKS") or 26),
    )


_demo_emulator = None
_demo_emulator_lock = threading.Lock()


def demo_emulator_url() -> str:
    """Start this process's emulator on a thread of its own (a request of the app never
    waits on an HTTP call to its own worker). gunicorn starts one in the master instead
    (gunicorn.conf.py) and passes SPOTIFY_EMULATOR_URL to every worker.

    Under a lock: the first requests (and the embedded job worker) arrive together, and two
    emulators would send a person's login to one while the page's CSP allows the other."""
    global _demo_emulator
    with _demo_emulator_lock:
        if _demo_emulator is None:
            import os

            from emulator import server as spotify_emulator

            _demo_emulator = spotify_emulator.serve_in_thread(
                host="127.0.0.1", port=int(os.environ.get("SPOTIFY_EMULATOR_PORT", "0"))
            )
            log.info("demo mode: Spotify emulator at %s", _demo_emulator.base_url)
        return _demo_emulator.base_url


def settings_for(app) -> SpotifySettings:
    if app.extensions.get("spotify") is None:
        app.extensions["spotify"] = settings_from_config(app.config)
    return app.extensions["spotify"]
