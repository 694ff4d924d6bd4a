"""The listening pages, the track page and search served from the version-keyed store
(issue 15): what is stored equals the live SQL, an unchanged page is a 304, and a capture
or an import is seen by the very next view."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest

import listening
import plays_insights_db as pdb
import spotify
from helpers import data_number, log_in_as, query, user_id
from history_files import extended_row, run_import, write_json
from jobs import capture
from page_cache import store_db

REVALIDATE = "private, no-cache"


LISTENING_VIEWS = [
    "/listening",
    "/listening?preset=all&by=plays",
    "/listening?preset=year&grain=week",
    "/listening?from=2025-02-01&to=2025-07-31&by=minutes&grain=day",
    "/listening?to=2025-03-31",
]


def test_every_stored_listening_page_equals_the_live_sql(signed_in_with_plays, played_history, conn):
    served = {}
    for path in [*LISTENING_VIEWS, "/listening/2025", "/listening/2024"]:
        first = signed_in_with_plays.get(path)
        assert first.status_code == 200, path
        again = signed_in_with_plays.get(path)  # from what the first stored, or the rendered page
        assert again.get_data(as_text=True) == first.get_data(as_text=True), path
        served[path] = first
    cur = conn.cursor()
    stored = [
        a for a in store_db.stored_answers(cur, played_history.me) if a["chart"] in ("year-in-review", "listening-page")
    ]
    assert sorted(a["params"] for a in stored if a["chart"] == "year-in-review") == ["year=2024", "year=2025"]
    assert len([a for a in stored if a["chart"] == "listening-page"]) == len(LISTENING_VIEWS)
    for answer in stored:
        params = dict(pair.split("=", 1) for pair in answer["params"].split("&"))
        if answer["chart"] == "year-in-review":
            live = listening.year_page(cur, played_history.me, int(params["year"]))
        else:
            args = {k: v for k, v in params.items() if k in ("preset", "from", "to") and v}
            live = listening.listening_page(cur, played_history.me, args, params["by"], params["grain"] or None)
        assert answer["body"] == live, answer["params"]


@pytest.mark.parametrize("path", ["/listening/2025", "/listening?preset=all"])
def test_an_unchanged_listening_page_is_a_304_and_a_new_play_a_new_page(
    signed_in_with_plays, played_history, conn, path
):
    first = signed_in_with_plays.get(path)
    assert first.status_code == 200 and first.headers["Cache-Control"] == REVALIDATE
    tag = first.headers["ETag"]
    again = signed_in_with_plays.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    plays = int(data_number(first.get_data(as_text=True), "plays").replace(",", ""))
    conn.cursor().execute(
        "INSERT INTO plays (user_id, played_at, track_name, artist_name, ms_played, source) "
        "VALUES (%s, '2025-06-15T12:00:00Z', 'A new song', 'A new artist', 60000, 'export')",
        (played_history.me,),
    )
    changed = signed_in_with_plays.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag
    assert data_number(changed.get_data(as_text=True), "plays") == f"{plays + 1:,}"


def test_a_time_zone_change_is_a_new_page(signed_in_with_plays, played_history):
    first = signed_in_with_plays.get("/listening/2025")
    token = re.search(r'name="csrf_token" value="([^"]+)"', first.get_data(as_text=True)).group(1)
    moved = signed_in_with_plays.post(
        "/listening/time-zone",
        data={"csrf_token": token, "time_zone": "Asia/Tokyo"},
        headers={"Accept": "application/json"},
    )
    assert moved.get_json()["changed"] is True
    after = signed_in_with_plays.get("/listening/2025", headers={"If-None-Match": first.headers["ETag"]})
    assert after.status_code == 200 and "Days and months are Asia/Tokyo time." in after.get_data(as_text=True)


def test_bad_listening_input_is_still_a_400_with_a_message(signed_in_with_plays, played_history):
    for path, message in [
        ("/listening?preset=decade", "Unknown period"),
        ("/listening?from=yesterday", "is not a date"),
        ("/listening?from=2025-05-01&to=2025-04-01", "after it ends"),
        ("/listening?by=skips", "Unknown by"),
    ]:
        answer = signed_in_with_plays.get(path)
        assert answer.status_code == 400 and message in answer.get_data(as_text=True), path


def test_a_dead_session_gets_no_stored_page(signed_in_with_plays, played_history, conn):
    assert signed_in_with_plays.get("/listening/2025").status_code == 200
    conn.cursor().execute("UPDATE users SET session_version = session_version + 1 WHERE id = %s", (played_history.me,))
    gone = signed_in_with_plays.get("/listening/2025")
    assert gone.status_code == 302 and gone.headers["Location"].endswith("/login")
    assert signed_in_with_plays.get("/api/charts/turnover").status_code == 401


# -- a capture and an import reach the next view -------------------------------------------
def plays_on(client, path: str) -> int:
    page = client.get(path)
    assert page.status_code == 200
    return int(data_number(page.get_data(as_text=True), "plays").replace(",", ""))


def test_no_stale_listening_page_after_a_capture_or_an_import(logged_in, spotify_app, db, tmp_path):
    client = logged_in("ava")
    uid = user_id(db, "ava")
    year = f"/listening/{datetime.now(UTC).year}"
    before = plays_on(client, year), plays_on(client, "/listening")
    assert before[0] > 0
    # the three newest plays, as if the capture had not run yet: the pages follow the delete
    newest = query(db, "SELECT played_at FROM plays WHERE user_id = %s ORDER BY played_at DESC LIMIT 3", (uid,))
    query(db, "DELETE FROM plays WHERE user_id = %s AND played_at >= %s", (uid, newest[-1][0]))
    query(db, "DELETE FROM capture_state WHERE user_id = %s", (uid,))
    assert (plays_on(client, year), plays_on(client, "/listening")) == (before[0] - 3, before[1] - 3)

    with spotify_app.app_context():
        assert capture.capture(spotify.settings_for(spotify_app), uid)["new_plays"] == 3
    assert (plays_on(client, year), plays_on(client, "/listening")) == before

    today = datetime.now(UTC).replace(microsecond=0)
    export = write_json(
        tmp_path / "Streaming_History_Audio_2026.json",
        [extended_row(today - timedelta(days=2, minutes=n), n) for n in range(1, 5)],
    )
    assert run_import(db, uid, export)["new_plays"] == 4
    assert (plays_on(client, year), plays_on(client, "/listening")) == (before[0] + 4, before[1] + 4)
    stored = query(db, "SELECT chart, stamp FROM chart_cache WHERE user_id = %s", (uid,))
    version = query(db, "SELECT data_version FROM users WHERE id = %s", (uid,))[0][0]
    assert {chart for chart, stamp in stored if f".{version}." in stamp} >= {"year-in-review", "listening-page"}


# -- search -------------------------------------------------------------------------------
def test_a_search_found_as_typed_is_revalidated_and_follows_a_change(client, conn, people):
    log_in_as(client, people["ava"])
    first = client.get("/search?q=dancing")
    assert first.status_code == 200 and first.headers["Cache-Control"] == REVALIDATE
    assert client.get("/search?q=dancing", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304
    assert client.get("/search?q=dance").headers["ETag"] != first.headers["ETag"]
    # bob's "Dancing in the Dark" joins ava's library: her next search shows it
    track = query_one(conn, "SELECT spotify_id FROM tracks WHERE name = 'Dancing in the Dark'")
    conn.cursor().execute(
        "INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, %s, now())", (people["ava"], track)
    )
    changed = client.get("/search?q=dancing", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and "in the Dark" in changed.get_data(as_text=True)


def test_a_typo_search_leans_on_the_whole_catalogue_and_is_never_stored(client, people):
    log_in_as(client, people["ava"])
    typo = client.get("/search?q=Bee+Gess")
    assert "Night Fever" in typo.get_data(as_text=True)
    assert "ETag" not in typo.headers and typo.headers["Cache-Control"] == "no-store"
    assert client.get("/search").headers["Cache-Control"] == "no-store"  # the empty form


def query_one(conn, sql: str, *params):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def test_the_stored_forms_are_json_as_the_pages_read_them(conn, played_history):
    cur = conn.cursor()
    pdb.refresh_rollups(cur, played_history.me)
    page = listening.year_page(cur, played_history.me, 2025)
    assert json.loads(json.dumps(page)) == page
    revived = listening.revive_year(json.loads(json.dumps(page)))
    assert isinstance(revived["review"]["biggest_month"]["period"], date)
