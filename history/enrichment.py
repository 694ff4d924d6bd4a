"""Full track objects for the tracks an export only named (``tracks.needs_enrichment``).

One ``GET /v1/tracks/{id}`` at a time (Spotify removed the batch endpoint for
development-mode apps in February 2026) through the app's normal SpotifyClient, so every
call counts against the deployment's Spotify rate budget like any other. Each track is
written in a transaction of its own and its flag cleared with it: an interrupted run
(Spotify limiting us, down, a restart) leaves exactly the tracks still to do flagged, and
the next run goes on from there. Plays never wait for it: they already carry the export's
names, which is all the charts need.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import tracks_db
from database import transaction
from spotify import RateLimited, SpotifyClient, SpotifyError, SpotifyNotFound, SpotifySettings

log = logging.getLogger(__name__)

PAGE = 50  # ids read per query


def enrich(
    settings: SpotifySettings,
    user_id: int,
    limit: int | None = None,
    client_for: Callable[[SpotifySettings, int], SpotifyClient] = SpotifyClient.for_user,
) -> dict:
    """Fetch up to ``limit`` (None: all) flagged tracks with the user's token. Returns
    {"enriched", "gone" (Spotify has no such track), "left", "stopped" (why it stopped early,
    or None), "retry_after" (seconds, when Spotify asked us to wait)}."""
    done: dict[str, Any] = {"enriched": 0, "gone": 0, "stopped": None, "retry_after": None}
    try:
        client = client_for(settings, user_id)
        after = ""
        while limit is None or done["enriched"] + done["gone"] < limit:
            with transaction() as cur:
                ids = tracks_db.tracks_needing_enrichment(cur, after, PAGE)
            if not ids:
                break
            for track_id in ids:
                if limit is not None and done["enriched"] + done["gone"] >= limit:
                    break
                fetch_one_track(client, track_id, done)
                after = track_id
    except RateLimited as exc:
        done["stopped"], done["retry_after"] = exc.message, exc.retry_after
    except SpotifyError as exc:
        done["stopped"] = exc.message
    with transaction() as cur:
        done["left"] = tracks_db.count_needing_enrichment(cur)
    if done["stopped"]:
        log.info("track enrichment stopped (%s); %s tracks left for the next run", done["stopped"], done["left"])
    return done


def fetch_one_track(client: SpotifyClient, track_id: str, done: dict) -> None:
    try:
        track = client.track(track_id)
    except SpotifyNotFound:
        with transaction() as cur:
            tracks_db.mark_enriched(cur, [track_id])  # keeps the export's names
        done["gone"] += 1
        return
    with transaction() as cur:
        tracks_db.upsert_catalogue(cur, [track])
        tracks_db.mark_enriched(cur, [track_id])
    done["enriched"] += 1
