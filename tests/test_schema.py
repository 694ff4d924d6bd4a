"""The schema applies idempotently and its constraints keep bad rows out."""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2.extras import Json

import database

CATALOG_FINGERPRINT = """
SELECT 'column', table_name || '.' || column_name || ':' || data_type || ':' || is_nullable
  FROM information_schema.columns WHERE table_schema = 'public'
UNION ALL SELECT 'index', indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL SELECT 'constraint', conrelid::regclass || ':' || conname || ':' || pg_get_constraintdef(oid)
  FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL SELECT 'trigger', tgrelid::regclass || ':' || tgname FROM pg_trigger WHERE NOT tgisinternal
UNION ALL SELECT 'version', version || ':' || applied_at FROM schema_version
ORDER BY 1, 2
"""


def fingerprint(conn) -> list:
    with conn.cursor() as cur:
        cur.execute(CATALOG_FINGERPRINT)
        return cur.fetchall()


def test_applying_the_schema_twice_changes_nothing(make_database):
    url = make_database(schema=False)
    with psycopg2.connect(url) as conn:
        assert database.schema_version(conn) is None
        assert database.apply_schema(conn) == database.SCHEMA_VERSION
    with psycopg2.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("INSERT INTO users (spotify_id) VALUES ('survivor')")
        first = fingerprint(conn)
    with psycopg2.connect(url) as conn:
        assert database.apply_schema(conn) == database.SCHEMA_VERSION
        assert fingerprint(conn) == first
        with conn.cursor() as cur:
            cur.execute("SELECT spotify_id FROM users")
            assert cur.fetchall() == [("survivor",)]
    conn.close()
    assert len([row for row in first if row[0] == "index"]) >= 15


def test_init_db_command_applies_then_is_a_no_op(make_database, monkeypatch):
    from app import create_app

    url = make_database(schema=False)
    runner = create_app({"TESTING": True, "DATABASE_URL": url, "DB_POOL_MIN": 0}).test_cli_runner()
    first = runner.invoke(args=["init-db"])
    second = runner.invoke(args=["init-db"])
    database.close_pool()
    assert first.exit_code == 0 and second.exit_code == 0
    assert f"Schema version {database.SCHEMA_VERSION} is in place" in second.output
    with psycopg2.connect(url) as conn:
        assert database.schema_version(conn) == database.SCHEMA_VERSION
    conn.close()


@pytest.fixture
def user_and_track(conn):
    with conn.cursor() as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES ('alice') RETURNING id")
        user_id = cur.fetchone()[0]
        cur.execute("INSERT INTO tracks (spotify_id, name, raw_json) VALUES ('t1', 'Song', %s)", (Json({"id": "t1"}),))
    return user_id, "t1"


def insert(conn, statement, params=()):
    """Run one statement inside a savepoint, so a rejected row leaves the test usable."""
    with database.transaction(conn) as cur:
        cur.execute(statement, params)


@pytest.mark.parametrize(
    "statement, params, error",
    [
        (
            "INSERT INTO tracks (spotify_id, name, raw_json) VALUES ('x', 'n', %s)",
            (Json([1, 2]),),
            psycopg2.errors.CheckViolation,
        ),
        (
            "INSERT INTO tracks (spotify_id, name, raw_json) VALUES ('x', 'n', %s)",
            (Json("{}"),),
            psycopg2.errors.CheckViolation,
        ),  # a JSON string, not an object: the double-encoding bug
        (
            "INSERT INTO tracks (spotify_id, name, audio_features) VALUES ('x', 'n', %s)",
            (Json(0.5),),
            psycopg2.errors.CheckViolation,
        ),
        (
            "INSERT INTO tracks (spotify_id, name, release_date) VALUES ('x', 'n', '2020-01-01')",
            (),
            psycopg2.errors.CheckViolation,
        ),  # a date must say how precise it is
        (
            "INSERT INTO tracks (spotify_id, name, release_date_precision) VALUES ('x', 'n', 'week')",
            (),
            psycopg2.errors.CheckViolation,
        ),
        (
            "INSERT INTO tracks (spotify_id, name, duration_ms) VALUES ('x', 'n', -1)",
            (),
            psycopg2.errors.CheckViolation,
        ),
        (
            "INSERT INTO tracks (spotify_id, name, popularity) VALUES ('x', 'n', 101)",
            (),
            psycopg2.errors.CheckViolation,
        ),
        ("INSERT INTO tracks (spotify_id, name) VALUES ('', 'n')", (), psycopg2.errors.CheckViolation),
        ("INSERT INTO tracks (spotify_id, name) VALUES ('x', NULL)", (), psycopg2.errors.NotNullViolation),
        (
            "INSERT INTO tracks (spotify_id, name, primary_artist_id) VALUES ('x', 'n', 'ghost')",
            (),
            psycopg2.errors.ForeignKeyViolation,
        ),
        (
            "INSERT INTO artists (spotify_id, name, raw_json) VALUES ('a', 'n', %s)",
            (Json(None),),
            psycopg2.errors.CheckViolation,
        ),
        ("INSERT INTO users (spotify_id) VALUES ('alice')", (), psycopg2.errors.UniqueViolation),
        (
            "INSERT INTO playlists (user_id, kind, name) SELECT id, 'favourites', 'x' FROM users",
            (),
            psycopg2.errors.CheckViolation,
        ),
        (
            "INSERT INTO playlists (user_id, kind, name, parameters) SELECT id, 'mood', 'x', %s FROM users",
            (Json([]),),
            psycopg2.errors.CheckViolation,
        ),
    ],
)
def test_constraints_reject_bad_rows(conn, user_and_track, statement, params, error):
    with pytest.raises(error):
        insert(conn, statement, params)


@pytest.mark.parametrize(
    "time_range, rank, error",
    [
        ("all_time", 1, psycopg2.errors.CheckViolation),
        ("short_term", 0, psycopg2.errors.CheckViolation),
        ("short_term", -3, psycopg2.errors.CheckViolation),
    ],
)
def test_snapshots_reject_unknown_ranges_and_non_positive_ranks(conn, user_and_track, time_range, rank, error):
    user_id, track_id = user_and_track
    with pytest.raises(error):
        insert(
            conn,
            "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) "
            "VALUES (%s, %s, '2026-11-01', %s, %s)",
            (user_id, track_id, time_range, rank),
        )


def test_snapshot_rows_are_unique_per_user_track_day_and_range(conn, user_and_track):
    user_id, track_id = user_and_track
    row = (
        "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) "
        "VALUES (%s, %s, '2026-11-01', 'short_term', %s)"
    )
    insert(conn, row, (user_id, track_id, 1))
    with pytest.raises(psycopg2.errors.UniqueViolation):
        insert(conn, row, (user_id, track_id, 2))
    with pytest.raises(psycopg2.errors.ForeignKeyViolation):
        insert(conn, row.replace("%s, %s, '2026", "%s, 'no-such-track', '2026"), (user_id, 3))


def test_two_tracks_can_swap_ranks_within_one_transaction(conn, user_and_track):
    user_id, _ = user_and_track
    with database.transaction(conn) as cur:
        cur.execute("INSERT INTO tracks (spotify_id, name) VALUES ('t2', 'Other')")
        cur.execute(
            "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) VALUES "
            "(%(u)s, 't1', '2026-11-01', 'long_term', 1), (%(u)s, 't2', '2026-11-01', 'long_term', 2)",
            {"u": user_id},
        )
    with database.transaction(conn) as cur:  # a same-day re-sync where the two swapped places
        cur.execute("UPDATE snapshots SET rank = 3 - rank WHERE user_id = %s", (user_id,))
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # check now, as COMMIT would
    with pytest.raises(psycopg2.errors.UniqueViolation):
        with database.transaction(conn) as cur:
            cur.execute("UPDATE snapshots SET rank = 1 WHERE user_id = %s", (user_id,))
            cur.execute("SET CONSTRAINTS ALL IMMEDIATE")


def test_long_and_unicode_names_are_stored_whole(conn):
    name = "Ünïcødé 🎵 " * 2000
    insert(
        conn,
        "INSERT INTO tracks (spotify_id, name, artist_name, album_name) VALUES ('long', %s, %s, %s)",
        (name, name, name),
    )
    with conn.cursor() as cur:
        cur.execute("SELECT name FROM tracks WHERE spotify_id = 'long'")
        assert cur.fetchone()[0] == name


def test_search_vector_weighs_name_over_artist_over_album(conn):
    insert(
        conn,
        "INSERT INTO tracks (spotify_id, name, artist_name, album_name) VALUES "
        "('a', 'Dancing Queen', 'ABBA', 'Arrival'), ('b', 'Waterloo', 'Dance Band', 'Arrival'), "
        "('c', 'Fernando', 'ABBA', 'Dance Album')",
    )
    with conn.cursor() as cur:
        cur.execute(
            "SELECT spotify_id FROM tracks, websearch_to_tsquery('english', 'dance') q "
            "WHERE search_vector @@ q ORDER BY ts_rank(search_vector, q) DESC"
        )
        assert [row[0] for row in cur.fetchall()] == ["a", "b", "c"]


def test_updated_at_moves_on_update(conn, user_and_track):
    with conn.cursor() as cur:
        cur.execute("UPDATE tracks SET updated_at = '2000-01-01', created_at = '2000-01-01' WHERE spotify_id = 't1'")
        cur.execute("UPDATE tracks SET name = 'Renamed' WHERE spotify_id = 't1'")
        cur.execute("SELECT updated_at > created_at FROM tracks WHERE spotify_id = 't1'")
        assert cur.fetchone()[0] is True


def test_deleting_a_user_removes_every_row_that_belongs_to_them(conn, user_and_track):
    user_id, track_id = user_and_track
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank) "
            "VALUES (%s, %s, '2026-11-01', 'short_term', 1)",
            (user_id, track_id),
        )
        cur.execute("INSERT INTO saved_tracks VALUES (%s, %s, now())", (user_id, track_id))
        cur.execute("INSERT INTO plays VALUES (%s, now(), %s)", (user_id, track_id))
        cur.execute(
            "INSERT INTO spotify_tokens (user_id, access_token, expires_at) VALUES (%s, 'x', now())", (user_id,)
        )
        cur.execute("INSERT INTO playlists (user_id, kind, name) VALUES (%s, 'mood', 'Calm') RETURNING id", (user_id,))
        cur.execute("INSERT INTO playlist_tracks VALUES (%s, %s, 0)", (cur.fetchone()[0], track_id))
        cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
        cur.execute(
            "SELECT (SELECT count(*) FROM snapshots) + (SELECT count(*) FROM saved_tracks) + "
            "(SELECT count(*) FROM plays) + (SELECT count(*) FROM spotify_tokens) + "
            "(SELECT count(*) FROM playlists) + (SELECT count(*) FROM playlist_tracks)"
        )
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM tracks WHERE spotify_id = %s", (track_id,))
        assert cur.fetchone()[0] == 1  # tracks are shared, they stay


@pytest.mark.parametrize(
    "text, stated, expected_date, expected_precision",
    [
        ("1999", "year", "1999-01-01", "year"),
        ("1999-07", "month", "1999-07-01", "month"),
        ("1999-07-21", "day", "1999-07-21", "day"),
        ("2010", "day", "2010-01-01", "year"),  # the text is coarser than it claims
        ("2010-05-17", "year", "2010-01-01", "year"),  # a coarser claim wins
        ("2001-09-11", None, "2001-09-11", "day"),  # no claim: the text says
        ("1999-02-30", "day", None, "day"),  # no such day
        ("2020-13", "month", None, "month"),
        ("0000", "year", None, "year"),  # Spotify's "unknown"
        ("abc", "day", None, None),
        (None, "day", None, None),
    ],
)
def test_release_dates_parse_to_what_the_text_really_says(conn, text, stated, expected_date, expected_precision):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT parse_release_date(%s, %s)::text, release_date_precision(%s, %s)", (text, stated, text, stated)
        )
        assert cur.fetchone() == (expected_date, expected_precision)
