"""An empty target is built in a private schema and swapped in: the result must be the app's
schema exactly (as a fresh init-db makes it), and nobody waits or sees rows before the swap."""

from __future__ import annotations

import psycopg2
import pytest

import migrate_to_postgresql as cli
from legacy_factory import make_v1, make_v2
from test_migrate import fetch

# the public schema's shape, by name (OIDs, attnums of dropped columns and sizes aside)
CATALOG = {
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               a.attgenerated, pg_get_expr(d.adbin, d.adrelid), a.attstattarget, a.attstorage,
               row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped""",
    "relations": """
        SELECT relname, relkind, relpersistence, reloptions, pg_get_userbyid(relowner), relacl::text
        FROM pg_class WHERE relnamespace = 'public'::regnamespace""",
    "constraints": """
        SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid), condeferrable,
               condeferred, convalidated
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "triggers": """
        SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgenabled FROM pg_trigger
        WHERE NOT tgisinternal""",
    "sequences": """
        SELECT s.seqrelid::regclass::text, s.seqtypid::regtype::text, s.seqstart, s.seqincrement, s.seqmax,
               s.seqcycle, d.refobjid::regclass::text, d.refobjsubid, d.deptype
        FROM pg_sequence s LEFT JOIN pg_depend d ON d.objid = s.seqrelid AND d.classid = 'pg_class'::regclass
             AND d.refclassid = 'pg_class'::regclass""",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'",
    "schemas": "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'",
}


def catalog(url) -> dict[str, set]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        shape = {}
        for name, query in CATALOG.items():
            cur.execute(query)
            shape[name] = set(cur.fetchall())
    conn.close()
    return shape


def execute(url, statement) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(statement)
    conn.close()


# what another app version or an operator may have added around the moved tables: a view
# over them and a foreign key into them from a table the migration does not fill
EXTRAS = """
    CREATE VIEW track_titles AS SELECT spotify_id, name FROM tracks;
    CREATE TABLE track_notes (track_id text REFERENCES tracks (spotify_id) ON DELETE CASCADE, note text);
    ALTER TABLE tracks DISABLE TRIGGER tracks_set_updated_at;
"""


@pytest.mark.parametrize("layout", ["v1", "v2"])
@pytest.mark.parametrize("start", ["no schema", "empty schema", "schema with extras"])
def test_the_swapped_in_schema_is_the_app_schema(layout, start, make_database, tmp_path):
    fresh = make_database()
    url = make_database(schema=start != "no schema")
    if start == "schema with extras":
        execute(fresh, EXTRAS)
        execute(url, EXTRAS)
    path = tmp_path / f"{layout}.db"
    (make_v1 if layout == "v1" else make_v2)(path)
    assert cli.main([str(path), "--database-url", url]) == cli.EXIT_OK
    expected, migrated = catalog(fresh), catalog(url)
    for part in CATALOG:
        assert migrated[part] == expected[part], part
    if start == "schema with extras":
        assert fetch(url, "SELECT count(*) FROM track_titles") == fetch(url, "SELECT count(*) FROM tracks")
    # the moved tables hold the data and work like the app's own: identities, triggers
    assert fetch(url, "SELECT count(*) > 0 FROM tracks") == [(True,)]
    execute(url, "INSERT INTO tracks (spotify_id, name) VALUES ('swapTest00000000000001', 'Quixotic')")
    assert fetch(url, "SELECT count(*) FROM search_words WHERE word = 'quixotic'") == [(1,)]


def test_readers_see_empty_unlocked_tables_until_the_swap(make_database, tmp_path, monkeypatch):
    path = tmp_path / "v2.db"
    make_v2(path)
    url = make_database()
    seen = []
    real_check = cli.verify.check_database

    def look_from_another_session(cur, *args):
        # the migration has loaded and built everything by now, in its private schema
        with psycopg2.connect(url) as reader, reader.cursor() as other:
            other.execute("SET lock_timeout = '2s'")
            other.execute("SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM snapshots)")
            seen.append(other.fetchone())
        reader.close()
        return real_check(cur, *args)

    monkeypatch.setattr(cli.verify, "check_database", look_from_another_session)
    assert cli.main([str(path), "--database-url", url]) == cli.EXIT_OK
    assert seen == [(0, 0)]
    [(tracks, snapshots)] = fetch(url, "SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM snapshots)")
    assert tracks > 0 and snapshots > 0
    assert fetch(url, "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'mtm\\_import\\_%'") == [(0,)]


def test_an_existing_owner_sees_new_data_not_cached_charts(make_database, tmp_path):
    """The private tables fill without the app's triggers: the owner's data_version (what
    cached charts are stamped with) must still move, or their empty charts would be served."""
    path = tmp_path / "v2.db"
    make_v2(path, dirty=False)
    url = make_database()
    execute(url, "INSERT INTO users (spotify_id, data_version) VALUES ('alice', 5)")
    assert cli.main([str(path), "--database-url", url, "--user", "alice"]) == cli.EXIT_OK
    [(version,)] = fetch(url, "SELECT data_version FROM users WHERE spotify_id = 'alice'")
    assert version > 5
