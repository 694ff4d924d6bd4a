"""The importer's set-based path into plays (history_db.write_plays_set_based) against the
row-by-row one: the same plays, counts, rollup notes and data version, and it steps aside
for a trigger it does not know."""

from __future__ import annotations

import threading
from datetime import timedelta

from helpers import query, wait_until
from history import history_db
from history_files import START, connect, extended_row, plays, run_import, track_uri, user, write_json

# An ordinary trigger on plays the fast path was never taught: it must turn the fast path
# off, and then see every row.
UNKNOWN_TRIGGER = """
CREATE TABLE seen_plays (n bigint NOT NULL);
INSERT INTO seen_plays VALUES (0);
CREATE FUNCTION count_seen_plays() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE seen_plays SET n = n + 1; RETURN NULL; END $$;
CREATE TRIGGER plays_count_seen AFTER INSERT ON plays FOR EACH ROW EXECUTE FUNCTION count_seen_plays();
"""


def fast_path(db_url: str) -> bool:
    conn = connect(db_url)
    try:
        with conn.cursor() as cur:
            return history_db.fast_path_possible(cur)
    finally:
        conn.rollback()
        conn.close()


def test_the_fast_path_knows_every_trigger_and_foreign_key_of_plays(db):
    # If this fails, plays gained a trigger or key: teach write_plays_set_based its work and
    # add it to FAST_PATH_TRIGGERS / FAST_PATH_FOREIGN_KEYS, or imports go row by row.
    assert fast_path(db)


def import_story(db_url: str, tmp_path) -> dict:
    """A captured play the export completes, a known track, a local file, a play twice in
    two overlapping files, a batch that is all known the second time; and a file a year
    later (a span with no plays: straight into plays on the fast path) with a known track,
    new ones, one met before, a local file, a second twice in the file and a month
    without plays between two with plays."""
    listener = user(db_url)
    known = track_uri(7)[14:]
    query(db_url, "INSERT INTO tracks (spotify_id, name) VALUES (%s, 'Song 7')", (known,))
    query(db_url, "INSERT INTO plays (user_id, played_at, track_id) VALUES (%s, %s, %s)", (listener, START, known))
    before = query(db_url, "SELECT data_version FROM users WHERE id = %s", (listener,))[0][0]
    query(db_url, "DELETE FROM play_rollup_dirty")
    rows = [
        extended_row(START, 7, reason_end="endplay"),
        *plays(40, start=START + timedelta(days=35), first=1),
        extended_row(START + timedelta(days=80), 99, spotify_track_uri=None, master_metadata_track_name="Home demo"),
    ]
    first = write_json(tmp_path / "Streaming_History_Audio_2021_0.json", rows)
    second = write_json(tmp_path / "Streaming_History_Audio_2021_1.json", rows[20:] + plays(5, start=START, step=7))
    later = START + timedelta(days=400)  # April 2022
    later_rows = [
        *plays(10, start=later, first=100),
        extended_row(later + timedelta(seconds=240), 120, reason_end="fwdbtn"),  # the second of Song 101 again
        extended_row(later + timedelta(days=1), 7),
        extended_row(later + timedelta(days=2), 3),  # met in the first file
        extended_row(later + timedelta(days=3), 98, spotify_track_uri=None, master_metadata_track_name="Demo 2"),
        *plays(5, start=later + timedelta(days=92), first=105, step=600),  # July: nothing in May and June
    ]
    third = write_json(tmp_path / "Streaming_History_Audio_2022_2.json", later_rows)
    summary = run_import(db_url, listener, first, second, third)
    again = run_import(db_url, listener, first, force=True)
    counts = ("new_plays", "new_tracks", "completed", "already_known", "duplicates")
    return {
        "batches": summary["batches"],
        "summary": {key: summary[key] for key in counts},
        "again": {key: again[key] for key in counts},
        "plays": query(
            db_url,
            "SELECT played_at, track_id, track_name, artist_name, album_name, ms_played, reason_start, reason_end,"
            " skipped, shuffle, offline, platform, country, source FROM plays ORDER BY played_at",
        ),
        "tracks": query(db_url, "SELECT spotify_id, name, needs_enrichment FROM tracks ORDER BY spotify_id"),
        "dirty_months": query(db_url, "SELECT DISTINCT user_id, month FROM play_rollup_dirty ORDER BY month"),
        "months": query(
            db_url,
            "SELECT DISTINCT user_id, date_trunc('month', played_at AT TIME ZONE 'UTC')::date FROM plays ORDER BY 2",
        ),
        "data_version_moved": query(db_url, "SELECT data_version FROM users WHERE id = %s", (listener,))[0][0] > before,
    }


def test_the_fast_path_stores_what_the_row_by_row_path_stores(make_database, tmp_path):
    fast_db, slow_db = make_database(schema=True), make_database(schema=True)
    query(slow_db, UNKNOWN_TRIGGER)
    assert fast_path(fast_db) and not fast_path(slow_db)

    (tmp_path / "fast").mkdir()
    (tmp_path / "slow").mkdir()
    fast = import_story(fast_db, tmp_path / "fast")
    slow = import_story(slow_db, tmp_path / "slow")

    # the overlapping files are resolved through the stage, the later one COPYed straight in
    assert fast.pop("batches") == {"copied": 1, "staged": 2, "copy_collided": 0}
    assert slow.pop("batches") == {"copied": 0, "staged": 3, "copy_collided": 0}
    assert fast == slow
    assert fast["summary"] == {"new_plays": 63, "new_tracks": 49, "completed": 1, "already_known": 23, "duplicates": 1}
    assert fast["again"]["new_plays"] == 0 and fast["again"]["already_known"] == 42
    assert fast["plays"][0][-1] == "export" and fast["plays"][0][7] == "endplay"  # the captured play, completed
    # the second met twice in one file: its first row is the play
    assert [p[1:3] for p in fast["plays"] if p[0] == START + timedelta(days=400, seconds=240)] == [
        (track_uri(101)[14:], "Song 101")
    ]
    assert fast["dirty_months"] == fast["months"]  # every written month noted for the rollups
    assert [m[1].month for m in fast["months"] if m[1].year == 2022] == [4, 7]
    assert fast["data_version_moved"]
    # the trigger the fast path does not know saw every row written after it was made
    assert query(slow_db, "SELECT n FROM seen_plays") == [(1 + 63,)]


def test_a_batch_that_collides_with_a_play_stored_meanwhile_is_staged_instead(db, tmp_path):
    listener = user(db)
    known = track_uri(5)[14:]
    query(db, "INSERT INTO tracks (spotify_id, name) VALUES (%s, 'Song 5')", (known,))
    path = write_json(tmp_path / "Streaming_History_Audio_2021_0.json", plays(20, step=300))
    # a capture storing one of the file's plays, not committed yet: the import's look at the
    # span does not see it, and its COPY comes after it (the capture holds the person's row
    # until it commits, moving their data version)
    capture = connect(db)
    with capture.cursor() as cur:
        cur.execute(
            "INSERT INTO plays (user_id, played_at, track_id) VALUES (%s, %s, %s)",
            (listener, START + timedelta(seconds=4 * 300), known),
        )
    summary: dict = {}
    importing = threading.Thread(target=lambda: summary.update(run_import(db, listener, path)))
    importing.start()
    try:
        wait_until(
            lambda: query(
                db,
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
            )[0][0]
            == 1,
            "the import waiting for the capture",
            timeout=30,
        )
    finally:
        capture.commit()
        capture.close()
        importing.join(timeout=60)
    assert summary["batches"] == {"copied": 0, "staged": 1, "copy_collided": 1}
    assert (summary["new_plays"], summary["completed"], summary["already_known"]) == (19, 1, 0)
    stored = query(db, "SELECT track_id, source, count(*) FROM plays GROUP BY 1, 2 ORDER BY 1")
    assert [row[1:] for row in stored] == [("export", 1)] * 20  # the captured play completed, none twice
    assert query(db, "SELECT count(*) FROM plays WHERE played_at = %s", (START + timedelta(seconds=1200),)) == [(1,)]
