"""Compute once per change (issue 15): every writer moves the person's data version in its
own transaction, the stored charts equal the live SQL, a view after a sync shows the new
rows, and the HTTP layer answers an unchanged page with a 304."""

from __future__ import annotations

import itertools
import json
from datetime import date, timedelta

import psycopg2
import pytest

import dashboard
import spotify
import sync
import users_db
from helpers import charts_of, log_in_as, query, user_id
from insights_data import load_fixed_data
from page_cache import store_db


def data_version(cur, uid: int) -> int:
    cur.execute("SELECT data_version FROM users WHERE id = %s", (uid,))
    return cur.fetchone()[0]


# -- the data version ---------------------------------------------------------------
@pytest.mark.parametrize(
    "write",
    [
        "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) "
        "VALUES (%(me)s, 't5', '2026-02-09', 'short_term', 1)",
        "UPDATE snapshots SET rank = rank + 10 WHERE user_id = %(me)s AND snapshot_date = '2026-01-05'",
        "DELETE FROM snapshots WHERE user_id = %(me)s AND time_range = 'medium_term'",
        "INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%(me)s, 't6', now())",
        "UPDATE saved_tracks SET added_at = added_at - interval '1 day' WHERE user_id = %(me)s AND track_id = 't1'",
        "DELETE FROM saved_tracks WHERE user_id = %(me)s AND track_id = 't1'",
        "INSERT INTO plays (user_id, played_at, track_id) VALUES (%(me)s, now(), 't1')",
    ],
)
def test_every_write_to_a_persons_rows_moves_their_version_and_nobody_elses(conn, write):
    cur = conn.cursor()
    users = load_fixed_data(cur)
    before = {who: data_version(cur, uid) for who, uid in users.items()}
    cur.execute(write, users)
    assert cur.rowcount >= 1
    assert data_version(cur, users["me"]) == before["me"] + 1
    assert data_version(cur, users["other"]) == before["other"]


def test_a_write_that_changes_nothing_moves_nothing_and_one_statement_moves_each_person_once(conn):
    cur = conn.cursor()
    users = load_fixed_data(cur)
    me, other = users["me"], users["other"]
    before = data_version(cur, me), data_version(cur, other)
    # a re-sync of the same library: ON CONFLICT finds every row as it was
    cur.execute(
        """INSERT INTO saved_tracks (user_id, track_id, added_at)
           SELECT user_id, track_id, added_at FROM saved_tracks WHERE user_id = %s
           ON CONFLICT (user_id, track_id) DO UPDATE SET added_at = EXCLUDED.added_at
           WHERE saved_tracks.added_at <> EXCLUDED.added_at""",
        (me,),
    )
    cur.execute("DELETE FROM plays WHERE user_id = %s", (me,))
    assert (data_version(cur, me), data_version(cur, other)) == before
    # a bulk statement over two people (a migration, an import): each once
    cur.execute("UPDATE snapshots SET rank = rank + 100")
    assert (data_version(cur, me), data_version(cur, other)) == (before[0] + 1, before[1] + 1)
    users_db.bump_data_version(cur, other)
    assert data_version(cur, other) == before[1] + 2


def catalogue_version(url: str) -> int:
    return query(url, "SELECT version FROM catalogue_version")[0][0]


def test_the_catalogue_version_moves_once_at_commit_and_only_for_what_pages_show(db):
    with psycopg2.connect(db) as conn, conn.cursor() as cur:
        load_fixed_data(cur)
    conn.close()
    start = catalogue_version(db)
    conn = psycopg2.connect(db)
    with conn.cursor() as cur:
        cur.execute("UPDATE tracks SET audio_features = NULL")  # 7 rows
        cur.execute("UPDATE tracks SET name = name || '!' WHERE spotify_id = 't1'")
        cur.execute("SELECT version FROM catalogue_version")
        assert cur.fetchone()[0] == start  # not before the commit: no lock held while tracks are written
    conn.commit()
    assert catalogue_version(db) == start + 1
    query(db, "UPDATE tracks SET needs_enrichment = needs_enrichment")  # nothing a page shows
    query(db, "INSERT INTO artists (spotify_id, name) VALUES ('a9', 'New')")  # nobody's rows point at it
    assert catalogue_version(db) == start + 1
    query(db, "UPDATE artists SET name = 'Alfa' WHERE spotify_id = 'a1'")
    assert catalogue_version(db) == start + 2
    with conn.cursor() as cur:
        cur.execute("UPDATE tracks SET explicit = NOT explicit")
    conn.rollback()
    assert catalogue_version(db) == start + 2
    conn.close()


# -- the stored form is the live SQL ---------------------------------------------------
def test_every_stored_chart_equals_the_live_sql_for_every_filter(fixed_signed_in, conn):
    client, users = fixed_signed_in
    combos = list(itertools.product(spotify.TIME_RANGE_LABELS, dashboard.PERIODS))
    for time_range, period in combos:
        served = charts_of(client, f"?time_range={time_range}&period={period}")
        again = charts_of(client, f"?time_range={time_range}&period={period}")  # from the store
        assert again == served
    cur = conn.cursor()
    stored = store_db.stored_answers(cur, users["me"])
    assert {(a["chart"], a["params"]) for a in stored} == {
        (name, f"time_range={time_range}&period={period}") for name in dashboard.CHARTS for time_range, period in combos
    }
    for answer in stored:
        params = dict(pair.split("=") for pair in answer["params"].split("&"))
        filters = dashboard.Filters(params["time_range"], params["period"])
        live = dashboard.build_charts(cur, users["me"], filters, [answer["chart"]])[answer["chart"]]
        assert answer["body"] == json.loads(json.dumps(live)), answer["chart"]


def test_a_write_is_seen_by_the_next_view(fixed_signed_in, conn):
    client, users = fixed_signed_in
    before = charts_of(client, "?time_range=short_term&period=all")
    assert before["rank-movement"]["labels"][-1] == "2026-02-02"
    conn.cursor().execute(
        "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) "
        "VALUES (%s, 't2', '2026-02-09', 'short_term', 1)",
        (users["me"],),
    )
    after = charts_of(client, "?time_range=short_term&period=all")
    assert after["rank-movement"]["labels"][-1] == "2026-02-09"
    assert after["discovery"] != before["discovery"]


# -- a real sync ------------------------------------------------------------------------
def test_no_stale_page_after_a_sync_and_the_first_view_after_it_is_already_stored(logged_in, spotify_app, db):
    client = logged_in("dana")
    uid = user_id(db, "dana")
    page = client.get("/dashboard").get_data(as_text=True)
    charts = client.get("/api/charts").get_json()["charts"]
    days = query(db, "SELECT count(DISTINCT snapshot_date) FROM snapshots WHERE user_id = %s", (uid,))[0][0]
    assert f"{days} snapshot days" in page

    tomorrow = date.today() + timedelta(days=1)
    assert "summary" in sync.sync_now(spotify.settings_for(spotify_app), uid, day=tomorrow)
    # the sync stored the default view before it said "succeeded": nothing left to compute
    version = query(db, "SELECT data_version FROM users WHERE id = %s", (uid,))[0][0]
    stored = query(db, "SELECT chart, params, stamp FROM chart_cache WHERE user_id = %s", (uid,))
    current = {chart for chart, params, stamp in stored if f".{version}." in stamp}
    assert current == {*dashboard.CHARTS, dashboard.OVERVIEW}

    page = client.get("/dashboard").get_data(as_text=True)
    assert f"{days + 1} snapshot days" in page
    fresh = client.get("/api/charts").get_json()["charts"]
    assert fresh["rank-movement"]["labels"][-1] == tomorrow.isoformat()
    assert fresh["rank-movement"]["labels"][:-1] == charts["rank-movement"]["labels"]
    assert fresh["turnover"]["labels"][-1] == tomorrow.isoformat()


def test_a_catalogue_change_reaches_every_persons_next_view(logged_in, spotify_app, db, clean_emulator):
    clean_emulator.faults.set_audio_features(True)
    client = logged_in("ava")
    assert client.get("/api/charts/energy").get_json()["chart"]["empty"] is None
    query(db, "UPDATE tracks SET audio_features = NULL")  # committed by another session
    energy = client.get("/api/charts/energy").get_json()["chart"]
    assert energy["empty"].startswith("Mood charts need Spotify audio features")


# -- HTTP --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/api/charts", "/api/charts/turnover", "/dashboard"])
def test_an_unchanged_answer_is_a_304_and_a_change_a_new_tag(fixed_signed_in, conn, path):
    client, users = fixed_signed_in
    first = client.get(path)
    assert first.status_code == 200 and first.headers["Cache-Control"] == "private, no-cache"
    tag = first.headers["ETag"]
    again = client.get(path, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == tag and again.headers["Cache-Control"] == "private, no-cache"
    assert client.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200

    other_filters = client.get(path + "?period=all", headers={"If-None-Match": tag})
    assert other_filters.status_code == 200 and other_filters.headers["ETag"] != tag

    conn.cursor().execute("DELETE FROM saved_tracks WHERE user_id = %s AND track_id = 't5'", (users["me"],))
    changed = client.get(path, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["ETag"] != tag

    with client.session_transaction() as session:
        session["user_id"] = users["other"]
    theirs = client.get(path, headers={"If-None-Match": changed.headers["ETag"]})
    assert theirs.status_code == 200 and theirs.headers["ETag"] != changed.headers["ETag"]


def test_a_sync_in_progress_and_a_flash_message_are_never_hidden_by_a_304(fixed_signed_in, conn):
    client, users = fixed_signed_in
    tag = client.get("/dashboard").headers["ETag"]
    cur = conn.cursor()
    cur.execute(
        "INSERT INTO sync_runs (user_id, stage) VALUES (%s, 'Reading your library') RETURNING id", (users["me"],)
    )
    running = client.get("/dashboard", headers={"If-None-Match": tag})
    assert running.status_code == 200 and "Running: Reading your library" in running.get_data(as_text=True)
    cur.execute("UPDATE users SET needs_relogin_since = now() WHERE id = %s", (users["me"],))
    notice = client.get("/dashboard", headers={"If-None-Match": running.headers["ETag"]})
    assert notice.status_code == 200 and notice.headers["ETag"] != running.headers["ETag"]
    with client.session_transaction() as session:
        session["_flashes"] = [("message", "Sync started.")]
    flashed = client.get("/dashboard", headers={"If-None-Match": notice.headers["ETag"]})
    assert flashed.status_code == 200 and "Sync started." in flashed.get_data(as_text=True)
    assert "ETag" not in flashed.headers and flashed.headers["Cache-Control"] == "no-store"


def test_other_personal_pages_are_never_stored_and_static_files_keep_theirs(fixed_signed_in):
    client, _ = fixed_signed_in
    assert client.get("/settings").headers["Cache-Control"] == "no-store"
    assert client.get("/api/sync/status").headers["Cache-Control"] == "no-store"
    assert client.get("/static/charts.js").headers["Cache-Control"] == "no-cache"


def test_the_track_page_is_stored_and_revalidated_and_follows_a_change(client, conn, people):
    log_in_as(client, people["ava"])
    track_id = query_one(
        conn,
        """SELECT track_id FROM snapshots s WHERE user_id = %s
           AND NOT EXISTS (SELECT FROM saved_tracks l WHERE l.user_id = s.user_id AND l.track_id = s.track_id)
           ORDER BY track_id LIMIT 1""",
        people["ava"],
    )
    first = client.get(f"/tracks/{track_id}")
    assert first.status_code == 200 and first.headers["Cache-Control"] == "private, no-cache"
    assert "<dt>In your library</dt><dd>no</dd>" in first.get_data(as_text=True)
    again = client.get(f"/tracks/{track_id}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    stored = [a for a in store_db.stored_answers(conn.cursor(), people["ava"]) if a["chart"] == "track-page"]
    assert [a["params"] for a in stored] == [track_id]

    conn.cursor().execute(
        "INSERT INTO saved_tracks (user_id, track_id, added_at) VALUES (%s, %s, '2026-03-04T05:06:07Z')",
        (people["ava"], track_id),
    )
    changed = client.get(f"/tracks/{track_id}", headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200 and "since 2026-03-04" in changed.get_data(as_text=True)
    # somebody else's track is a 404, and a 404 is not stored
    assert client.get("/tracks/no-such-track").status_code == 404
    assert len([a for a in store_db.stored_answers(conn.cursor(), people["ava"]) if a["chart"] == "track-page"]) == 1


def query_one(conn, sql: str, *params):
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]
