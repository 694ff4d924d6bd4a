"""Enrichment: tracks an export only named are fetched whole, one GET /v1/tracks/{id} at a
time, and a run that Spotify interrupts leaves the rest for the next one."""

from __future__ import annotations

import spotify
from emulator.catalogue import get_catalogue
from helpers import query, user_id
from history import enrichment

UNKNOWN = "z" * 22  # a well-formed id no track has, after every real one


def flag_tracks(db, count: int) -> list[str]:
    """Catalogue tracks the app has not seen, stored as an export names them."""
    known = {row[0] for row in query(db, "SELECT spotify_id FROM tracks")}
    ids = sorted(t.id for t in get_catalogue().track_list if t.id not in known)[:count]
    for track_id in [*ids, UNKNOWN]:
        query(
            db,
            "INSERT INTO tracks (spotify_id, name, artist_name, needs_enrichment)"
            " VALUES (%s, 'as exported', 'x', true)",
            (track_id,),
        )
    return ids


def counting_client(calls: list):
    def client_for(settings, user):
        client = spotify.SpotifyClient.for_user(settings, user)
        real = client.track

        def track(track_id):
            calls.append(track_id)
            return real(track_id)

        client.track = track  # type: ignore[method-assign]
        return client

    return client_for


def test_enrichment_fetches_flagged_tracks_and_resumes_where_it_stopped(logged_in, spotify_app, clean_emulator, db):
    logged_in("ava")
    ava, settings = user_id(db, "ava"), spotify.settings_for(spotify_app)
    ids = flag_tracks(db, 6)
    calls: list = []

    first = enrichment.enrich(settings, ava, limit=3, client_for=counting_client(calls))
    assert (first["enriched"], first["left"], first["stopped"]) == (3, 4, None)

    clean_emulator.faults.server_error(status=503, path_prefix="/v1/tracks/")  # Spotify goes down
    down = enrichment.enrich(settings, ava, client_for=counting_client(calls))
    assert down["enriched"] == 0 and down["left"] == 4 and "try again later" in down["stopped"]

    clean_emulator.faults.reset()
    calls.clear()
    resumed = enrichment.enrich(settings, ava, client_for=counting_client(calls))
    assert (resumed["enriched"], resumed["gone"], resumed["left"]) == (3, 1, 0)
    assert sorted(calls) == sorted([*ids[3:], UNKNOWN])  # nothing fetched twice

    rows = query(
        db,
        "SELECT name, needs_enrichment, raw_json->'album'->>'name' IS NOT NULL FROM tracks WHERE spotify_id = ANY(%s)",
        (ids,),
    )
    catalogue = get_catalogue()
    assert sorted(r[0] for r in rows) == sorted(catalogue.tracks[i].name for i in ids)
    assert all(not r[1] and r[2] for r in rows)
    assert query(db, "SELECT name, needs_enrichment FROM tracks WHERE spotify_id = %s", (UNKNOWN,)) == [
        ("as exported", False)
    ]


def test_a_long_rate_limit_stops_enrichment_with_the_wait(logged_in, spotify_app, clean_emulator, db):
    logged_in("bruno")
    flag_tracks(db, 2)
    clean_emulator.faults.rate_limit(retry_after=120, path_prefix="/v1/tracks/")
    outcome = enrichment.enrich(spotify.settings_for(spotify_app), user_id(db, "bruno"))
    assert outcome["enriched"] == 0 and outcome["left"] == 3 and outcome["retry_after"] == 120


def test_housekeeping_queues_the_enrichment_of_anything_still_flagged(logged_in, spotify_app, db):
    from helpers import wait_until
    from jobs.engine import defer

    logged_in("chen")
    ids = flag_tracks(db, 3)
    with spotify_app.app_context():
        defer("history.enrich_flagged", timestamp=0)  # what the schedule defers every ten minutes
    wait_until(
        lambda: query(db, "SELECT count(*) FROM tracks WHERE needs_enrichment") == [(0,)], "tracks enriched", 60, 0.1
    )
    catalogue = get_catalogue()
    assert sorted(r[0] for r in query(db, "SELECT name FROM tracks WHERE spotify_id = ANY(%s)", (ids,))) == sorted(
        catalogue.tracks[i].name for i in ids
    )
