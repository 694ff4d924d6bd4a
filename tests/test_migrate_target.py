"""migrate_to_postgresql.py against targets that are not empty, and what bulk mode restores."""

from __future__ import annotations

import psycopg2

import migrate_to_postgresql as cli
from legacy_factory import make_v1, make_v2, spotify_id

TABLES = ["users", "artists", "tracks", "playlists", "playlist_tracks", "snapshots"]


def structure(url) -> tuple[set, set]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = ANY(%s)", (TABLES,)
        )
        indexes = set(cur.fetchall())
        cur.execute(
            """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), condeferrable,
                              condeferred, convalidated FROM pg_constraint
                       WHERE conrelid::regclass::text = ANY(%s)""",
            (TABLES,),
        )
        constraints = set(cur.fetchall())
    conn.close()
    return indexes, constraints


def test_bulk_load_restores_every_index_and_constraint(make_database, tmp_path):
    reference = structure(make_database())
    for layout, make in (("v1", make_v1), ("v2", make_v2)):
        path = tmp_path / f"{layout}.db"
        make(path)
        url = make_database(schema=False)
        assert cli.main([str(path), "--database-url", url]) == cli.EXIT_OK
        assert structure(url) == reference


def test_existing_rows_are_kept_and_gaps_filled(make_database, tmp_path, capsys):
    path = tmp_path / "v2.db"
    make_v2(path, dirty=False)
    url = make_database()
    first, second = spotify_id("track", 1), spotify_id("track", 2)
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            """INSERT INTO tracks (spotify_id, name, raw_json) VALUES
                       (%s, 'Name from the app', '{"fresh": true}'), (%s, 'Track 2', '{}')""",
            (first, second),
        )
        cur.execute("INSERT INTO users (spotify_id, is_placeholder) VALUES ('legacy-owner', true) RETURNING id")
        owner = cur.fetchone()[0]
        cur.execute(
            """INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank)
                       VALUES (%s, %s, '1975-01-01', 'short_term', 1)""",
            (owner, second),
        )
    conn.close()
    assert cli.main([str(path), "--database-url", url]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert "already in the target with other values were kept" in out
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT name, raw_json, album_name FROM tracks WHERE spotify_id = %s", (first,))
        name, raw_json, album = cur.fetchone()
        assert (name, raw_json) == ("Name from the app", {"fresh": True})  # never overwritten
        assert album == "Album 1"  # gap filled
        cur.execute(
            "SELECT track_id FROM snapshots WHERE snapshot_date = '1975-01-01' "
            "AND time_range = 'short_term' AND rank = 1"
        )
        assert cur.fetchall() == [(second,)]
    conn.close()
    # the legacy row that wanted rank 1 that day (track 1) went to the rejects report
    report = (tmp_path / "v2.db.rejects.jsonl").read_text()
    assert "already held in the target by track " + second in report


def test_verify_only_checks_rows_when_a_constraint_is_missing(make_database, tmp_path, capsys):
    path = tmp_path / "v2.db"
    make_v2(path, dirty=False)
    url = make_database()
    assert cli.main([str(path), "--database-url", url]) == cli.EXIT_OK
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("ALTER TABLE snapshots DROP CONSTRAINT snapshots_track_id_fkey")
        cur.execute("""INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank)
                       SELECT id, 'ghost', '2150-01-01', 'short_term', 1 FROM users""")
    conn.close()
    capsys.readouterr()
    assert cli.main([str(path), "--database-url", url, "--verify-only"]) == cli.EXIT_UNRECONCILED
    assert "NOT RECONCILED: 1 snapshots.track_id value(s) point at nothing" in capsys.readouterr().out
