"""The importer's set-based path into plays (history_db.write_plays_set_based) against the
row-by-row one: the same plays, counts, rollup notes and data version, and it steps aside
for a trigger it does not know."""

from __future__ import annotations

from datetime import timedelta

from helpers import query
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
    two overlapping files, a batch that is all known the second time."""
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
    summary = run_import(db_url, listener, first, second)
    again = run_import(db_url, listener, first, force=True)
    counts = ("new_plays", "new_tracks", "completed", "already_known", "duplicates")
    return {
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

    assert fast == slow
    assert fast["summary"] == {"new_plays": 45, "new_tracks": 39, "completed": 1, "already_known": 23, "duplicates": 0}
    assert fast["again"]["new_plays"] == 0 and fast["again"]["already_known"] == 42
    assert fast["plays"][0][-1] == "export" and fast["plays"][0][7] == "endplay"  # the captured play, completed
    assert fast["dirty_months"] == fast["months"]  # every written month noted for the rollups
    assert fast["data_version_moved"]
    # the trigger the fast path does not know saw every row written after it was made
    assert query(slow_db, "SELECT n FROM seen_plays") == [(1 + 45,)]
