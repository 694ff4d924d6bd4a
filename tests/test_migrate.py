"""migrate_to_postgresql.py end to end: dirty files of both layouts into real databases."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg2
import pytest

import migrate_to_postgresql as cli
from legacy_factory import make_v1, make_v2
from migration import workers as migration_clean
from processes import children_by_parent, is_running

ROOT = Path(__file__).resolve().parents[1]


def migrate(*args) -> int:
    return cli.main([str(a) for a in args])


def fetch(url, query, params=None):
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall()
    conn.close()
    return rows


def database_checksum(url) -> dict:
    """Every migrated table's full content, hashed (ids and timestamps included)."""
    tables = {
        "users": "spotify_id",
        "artists": "spotify_id",
        "tracks": "spotify_id",
        "playlists": "legacy_key",
        "playlist_tracks": "playlist_id, track_id",
        "snapshots": "user_id, track_id, snapshot_date, time_range",
    }
    columns_to_skip = {"tracks": "search_vector"}
    result = {}
    for table, order in tables.items():
        skip = columns_to_skip.get(table)
        select = f"to_jsonb(t) - '{skip}'" if skip else "t::text"
        rows = fetch(
            url,
            f"SELECT count(*), md5(coalesce(string_agg(({select})::text, '|' ORDER BY {order}), '')) FROM {table} t",
        )
        result[table] = rows[0]
    return result


PRIVATE_SCHEMAS = "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'mtm\\_import\\_%%'"
MIGRATED_TABLES = ("users", "artists", "tracks", "playlists", "playlist_tracks", "snapshots", "search_words")


def nothing_migrated(url) -> bool:
    """No row in any table a migration fills (the app's schema itself may exist: an empty
    target's build commits it first, as init-db would)."""
    for table in MIGRATED_TABLES:
        [(exists,)] = fetch(url, "SELECT to_regclass(%s) IS NOT NULL", (f"public.{table}",))
        if exists and fetch(url, f"SELECT count(*) FROM public.{table}") != [(0,)]:
            return False
    return True


def report_lines(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


@pytest.fixture
def v1_file(tmp_path):
    path = tmp_path / "v1.db"
    return path, make_v1(path)


@pytest.fixture
def v2_file(tmp_path):
    path = tmp_path / "v2.db"
    return path, make_v2(path)


def assert_accounted(url, manifest, report, table, target_count):
    """source rows = landed + merged + rejected, and each non-landed row has a report line."""
    expected = manifest[table]
    lines = [line for line in report if line["table"] == table]
    merged = sum(line["action"] == "merged" for line in lines)
    rejected = sum(line["action"] == "rejected" for line in lines)
    assert (merged, rejected) == (expected["merged"], expected["rejected"])
    assert target_count == expected["rows"] - merged - rejected
    for line in lines:
        assert line["reason"] and line["legacy_key"] and line["original"] is not None


def test_v1_dirty_file_into_an_empty_database(make_database, v1_file, capsys):
    path, manifest = v1_file
    url = make_database(schema=False)  # the tool creates the schema itself
    rejects = path.with_suffix(".jsonl")
    assert migrate(path, "--database-url", url, "--rejects", rejects) == cli.EXIT_OK
    out = capsys.readouterr()
    assert "migrated and verified" in out.out and "rows read and staged" in out.err
    report = report_lines(rejects)
    [(artists,)] = fetch(url, "SELECT count(*) FROM artists")
    [(tracks,)] = fetch(url, "SELECT count(*) FROM tracks")
    [(entries,)] = fetch(url, "SELECT count(*) FROM playlist_tracks")
    assert_accounted(url, manifest, report, "artists", artists)
    assert_accounted(url, manifest, report, "tracks", tracks)
    assert_accounted(url, manifest, report, "playlist_tracks", entries)
    # the duplicate track's playlist entries follow the surviving row: once in the playlist
    rows = fetch(
        url,
        """SELECT pt.track_id, pt.position, pt.added_at FROM playlist_tracks pt
                         JOIN playlists p ON p.id = pt.playlist_id
                         WHERE p.legacy_key = 'playlist_dirty' ORDER BY pt.position""",
    )
    assert [r[0] for r in rows].count(manifest["duplicate_track"]) == 1
    assert rows[0][2].isoformat() == "2023-11-14T22:13:20+00:00"  # epoch 1700000000, UTC
    # tracks that pointed at the duplicate artist row point at the survivor
    [(dangling,)] = fetch(
        url,
        """SELECT count(*) FROM tracks WHERE primary_artist_id IS NOT NULL
                                  AND primary_artist_id NOT IN (SELECT spotify_id FROM artists)""",
    )
    assert dangling == 0
    [(artist,)] = fetch(url, "SELECT primary_artist_id FROM tracks WHERE name = 'Double'")
    assert artist == manifest["duplicate_artist"]
    [(orphan_ref, orphan_name)] = fetch(
        url,
        "SELECT primary_artist_id, artist_name FROM tracks WHERE spotify_id = %s",
        (manifest["orphan_artist_track"],),
    )
    assert orphan_ref is None and orphan_name is None
    assert any("reference cleared" in line["reason"] for line in report)
    # JSON: double-encoded unwrapped, NaN / \u0000 sanitised, everything an object
    [(kind, energy)] = fetch(
        url,
        "SELECT jsonb_typeof(audio_features), audio_features->>'energy' FROM tracks WHERE spotify_id = %s",
        (manifest["double_encoded_track"],),
    )
    assert kind == "object" and float(energy) >= 0
    [(nan_features,)] = fetch(url, "SELECT audio_features FROM tracks WHERE name = 'Nan'")
    assert nan_features == {"energy": None, "tempo": 120}
    [(names,)] = fetch(
        url, "SELECT array_agg(name) FROM tracks WHERE name LIKE 'Zero%%' OR name LIKE 'Caf%%' OR name LIKE 'bad%%'"
    )
    assert sorted(names) == ["Café", "ZeroByte", "bad \ufffd utf8"]
    [(release, precision)] = fetch(
        url, "SELECT release_date::text, release_date_precision FROM tracks WHERE name = 'Orphan artist'"
    )
    assert (release, precision) == ("2020-03-01", "month")
    [(bad_dates,)] = fetch(
        url,
        "SELECT count(*) FROM tracks WHERE name IN ('Malformed', 'Array') "
        "AND release_date IS NULL AND duration_ms IS DISTINCT FROM -5",
    )
    assert bad_dates == 2
    [(owner, placeholder)] = fetch(url, "SELECT spotify_id, is_placeholder FROM users")
    assert owner == "legacy-owner" and placeholder


def test_v2_dirty_file(make_database, v2_file):
    path, manifest = v2_file
    url = make_database()
    assert migrate(path, "--database-url", url, "--user", "alice") == cli.EXIT_OK
    report = report_lines(str(path) + ".rejects.jsonl")  # the default report location
    [(tracks,)] = fetch(url, "SELECT count(*) FROM tracks")
    [(snapshots,)] = fetch(url, "SELECT count(*) FROM snapshots")
    assert_accounted(url, manifest, report, "tracks", tracks)
    assert_accounted(url, manifest, report, "snapshots", snapshots)
    [(bad_json,)] = fetch(url, "SELECT count(*) FROM tracks WHERE jsonb_typeof(raw_json) <> 'object'")
    assert bad_json == 0
    [(release, precision, explicit)] = fetch(
        url,
        "SELECT raw_json->'album'->>'release_date', release_date_precision, explicit FROM tracks WHERE spotify_id = %s",
        (manifest["double_encoded_track"],),
    )
    assert release and precision in ("year", "month", "day") and explicit is True
    [(album,)] = fetch(
        url, "SELECT raw_json->'album'->>'name' FROM tracks WHERE spotify_id = %s", (manifest["nul_track"],)
    )
    assert album == "Album"
    [(name,)] = fetch(url, "SELECT name FROM tracks WHERE spotify_id = %s", (manifest["payload_name_track"],))
    assert name == "From payload"
    [(nul_key,)] = fetch(url, "SELECT name FROM tracks WHERE spotify_id = %s", (manifest["nul_key_track"],))
    assert nul_key == "Nul in the key"
    assert any(line["legacy_key"] == repr(manifest["nul_key_track"] + "\x00") for line in report)
    [(tabbed,)] = fetch(url, "SELECT name FROM tracks WHERE name LIKE 'Tab%%'")
    assert tabbed == "Tab\tand\nnewline \\ backslash"
    # both spellings of the duplicate track land on one row, with one snapshot that day
    [(count,)] = fetch(
        url,
        "SELECT count(*) FROM snapshots WHERE track_id = %s AND snapshot_date = '2099-01-01'",
        (manifest["duplicate_track"],),
    )
    assert count == 1
    [(owner, placeholder)] = fetch(url, "SELECT spotify_id, is_placeholder FROM users")
    assert (owner, placeholder) == ("alice", False)


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_rerun_gives_the_same_database(make_database, tmp_path, layout):
    path = tmp_path / f"{layout}.db"
    (make_v1 if layout == "v1" else make_v2)(path)
    url = make_database()
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    first = database_checksum(url)
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    assert database_checksum(url) == first
    assert migrate(path, "--database-url", url, "--verify-only") == cli.EXIT_OK


# a row changed between the load and the verification of a table the run filled from empty
# (checked as a whole, not row by row): the totals must catch it and the report name it
DAMAGE = {  # case: (layout, table, damage, what the NOT RECONCILED line says)
    "artist renamed": (
        "v1",
        "artists",
        "UPDATE artists SET name = name || '!' WHERE spotify_id = (SELECT min(spotify_id) FROM artists)",
        "1 row(s) differ",
    ),
    "entry moved to another track": (
        "v1",
        "playlist_tracks",
        """UPDATE playlist_tracks e SET track_id = (
                                        SELECT t.spotify_id FROM tracks t WHERE NOT EXISTS (
                                            SELECT FROM playlist_tracks o WHERE o.playlist_id = e.playlist_id
                                            AND o.track_id = t.spotify_id) LIMIT 1)
                                    WHERE (playlist_id, track_id) = (SELECT playlist_id, track_id
                                        FROM playlist_tracks ORDER BY 1, 2 LIMIT 1)""",
        "source ",
    ),
    "snapshot re-ranked": (
        "v2",
        "snapshots",
        "UPDATE snapshots SET rank = rank + 100000 WHERE id = (SELECT min(id) FROM snapshots)",
        "1 row(s) differ",
    ),
    "snapshot added": (
        "v2",
        "snapshots",
        """INSERT INTO snapshots (user_id, track_id, snapshot_date, time_range, rank)
                                             SELECT user_id, track_id, snapshot_date + 1000, time_range, rank
                                             FROM snapshots ORDER BY id LIMIT 1""",
        "holds 1 row(s) the source does not account for",
    ),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_row_damaged_in_a_bulk_filled_table_is_caught(case, make_database, tmp_path, monkeypatch, capsys):
    layout, table, damage, problem = DAMAGE[case]
    path = tmp_path / "legacy.db"
    (make_v1 if layout == "v1" else make_v2)(path)
    url = make_database()
    real_load = cli.upsert.load

    def load_then_damage(cur, *args, **kwargs):
        filled = real_load(cur, *args, **kwargs)
        assert table in filled  # the whole-table check applies
        cur.execute(damage)
        assert cur.rowcount == 1
        return filled

    monkeypatch.setattr(cli.upsert, "load", load_then_damage)
    assert migrate(path, "--database-url", url) == cli.EXIT_UNRECONCILED
    out = capsys.readouterr().out
    assert any(line.startswith(f"NOT RECONCILED: {table}: ") and problem in line for line in out.splitlines()), out
    if "differ" in problem:  # the line names the rows, and no other problem is made up
        assert "(legacy keys )" not in out and "does not account for" not in out, out
    assert fetch(url, f"SELECT count(*) FROM {table}") == [(0,)]  # nothing committed


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_migrated_tracks_are_in_the_search_dictionary(layout, make_database, tmp_path):
    path = tmp_path / "legacy.db"
    (make_v1 if layout == "v1" else make_v2)(path)
    url = make_database()
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    words = """SELECT DISTINCT w.word FROM tracks t,
                      track_words(t.name, t.artist_name, t.album_name) AS w(word) ORDER BY 1"""
    expected = fetch(url, words)
    assert len(expected) > 3
    assert fetch(url, "SELECT DISTINCT word FROM search_words ORDER BY 1") == expected
    # the trigger that keeps it is back on: a synced track's words join the dictionary
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO tracks (spotify_id, name) VALUES ('new0000000000000000001', 'Zanzibar')")
    conn.close()
    assert fetch(url, "SELECT count(*) FROM search_words WHERE word = 'zanzibar'") == [(1,)]


TEST_PROCESS = os.getpid()


def _die_in_worker(*_args):
    if os.getpid() == TEST_PROCESS:  # cleaning fell back to in-process: never kill pytest
        raise RuntimeError("expected the cleaning to run in worker processes")
    os._exit(1)  # what the OOM killer does to a cleaning process


def test_a_dead_cleaning_process_stops_the_run_in_one_line(make_database, v2_file, monkeypatch, capsys):
    path, _ = v2_file
    url = make_database()
    monkeypatch.setattr(migration_clean, "default_workers", lambda: 2)
    monkeypatch.setattr(migration_clean, "clean_chunk", _die_in_worker)
    assert migrate(path, "--database-url", url) == cli.EXIT_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: a process cleaning tracks rows died")
    assert err[-1].endswith("nothing was committed")
    assert not any("Traceback" in line for line in err)
    assert fetch(url, "SELECT count(*) FROM tracks") == [(0,)]


def test_crash_mid_run_leaves_nothing_and_a_rerun_completes(make_database, v1_file, monkeypatch):
    path, _ = v1_file
    url = make_database()
    before = database_checksum(url)

    def crash(*_args, **_kwargs):
        raise RuntimeError("injected crash after the tables were loaded")

    monkeypatch.setattr(cli.verify, "check_database", crash)
    with pytest.raises(RuntimeError):
        migrate(path, "--database-url", url)
    assert database_checksum(url) == before  # nothing half-written
    monkeypatch.undo()
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    after = database_checksum(url)
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    assert database_checksum(url) == after


BIG_SNAPSHOTS = 200_000  # ten staging chunks: seconds of work after the first one
MID_RUN_BOUND = 120  # seconds to reach the first snapshots progress line


class StderrLines:
    """A process's stderr read on a thread: wait for a line with a bound, keep the rest."""

    def __init__(self, stream):
        self.lines: queue.Queue = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line)
        self.lines.put(None)  # end of the stream

    def wait_for(self, predicate, bound: float) -> str:
        deadline = time.monotonic() + bound
        while True:
            line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.001))
            assert line is not None, "the migration ended before reaching the line:\n" + "".join(self.seen)
            self.seen.append(line)
            if predicate(line):
                return line

    def rest(self, bound: float = 60) -> str:
        """Everything after the awaited line, up to the end of the stream."""
        self._thread.join(bound)
        tail = []
        while not self.lines.empty():
            line = self.lines.get_nowait()
            if line is not None:
                tail.append(line)
        return "".join(tail)


def _staging_snapshots_mid_way(line: str) -> bool:
    """A progress line that proves the run is mid-staging: `snapshots: X/Y rows` with X < Y."""
    text = line.strip()
    if not text.startswith("snapshots: ") or "/" not in text:
        return False
    done, total = (int(n.replace(",", "")) for n in text.split()[1].split("/"))
    return done < total


def _start_migration_of_a_big_file(make_database, tmp_path, **popen):
    """(process, url, path, its cleaning workers, its stderr): the CLI started and provably
    mid-run (staging snapshots, most of them still to come)."""
    path = tmp_path / "big.db"
    make_v2(path, tracks=1000, snapshots=BIG_SNAPSHOTS, dirty=False)
    url = make_database(schema=False)
    env = dict(os.environ, PYTHONPATH=str(ROOT), MIGRATION_PROGRESS_SECONDS="0")  # a line per chunk
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "migrate_to_postgresql.py"), str(path), "--database-url", url],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **popen,
    )
    stderr = StderrLines(proc.stderr)
    stderr.wait_for(_staging_snapshots_mid_way, MID_RUN_BOUND)
    workers = children_by_parent().get(proc.pid, [])
    assert len(workers) == migration_clean.default_workers()
    return proc, url, path, workers, stderr


def test_killed_process_then_rerun(make_database, tmp_path):
    proc, url, path, workers, stderr = _start_migration_of_a_big_file(make_database, tmp_path)
    proc.send_signal(signal.SIGKILL)  # kill it while it is staging rows
    assert proc.wait() == -signal.SIGKILL  # it was still running
    deadline = time.monotonic() + 5  # its cleaning processes follow it
    while any(map(is_running, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(is_running, workers))
    stderr.rest()
    assert nothing_migrated(url)  # the killed build lives only in its private schema
    assert fetch(url, PRIVATE_SCHEMAS) == [(1,)]
    assert migrate(path, "--database-url", url) == cli.EXIT_OK  # which the rerun drops first
    assert fetch(url, PRIVATE_SCHEMAS) == [(0,)]
    [(snapshots,)] = fetch(url, "SELECT count(*) FROM snapshots")
    assert snapshots == BIG_SNAPSHOTS


def test_ctrl_c_rolls_back_in_one_line(make_database, tmp_path):
    proc, url, _, workers, stderr = _start_migration_of_a_big_file(make_database, tmp_path, start_new_session=True)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    assert proc.wait(timeout=MID_RUN_BOUND) == 130
    rest = stderr.rest()
    assert rest.strip().splitlines()[-1] == "interrupted: nothing was committed"
    assert "Traceback" not in rest
    assert not any(map(is_running, workers))
    assert nothing_migrated(url) and fetch(url, PRIVATE_SCHEMAS) == [(0,)]  # dropped on the way out
    assert not list(tmp_path.glob("*.partial"))


def test_ctrl_c_between_the_commit_and_the_report_keeps_the_report(make_database, v1_file, monkeypatch, capsys):
    path, _ = v1_file
    url = make_database()
    rejects = path.with_suffix(".jsonl")
    real_finish = cli.Report.finish

    def interrupted_once(report):
        monkeypatch.setattr(cli.Report, "finish", real_finish)  # the next call goes through
        raise KeyboardInterrupt  # Ctrl-C lands after the commit, before the report is renamed

    monkeypatch.setattr(cli.Report, "finish", interrupted_once)
    assert migrate(path, "--database-url", url, "--rejects", rejects) == cli.EXIT_OK
    assert "interrupted after the commit: the migration is complete" in capsys.readouterr().err
    assert {line["action"] for line in report_lines(rejects)} >= {"merged", "rejected"}
    assert not list(path.parent.glob("*.partial"))
    assert fetch(url, "SELECT count(*) FROM artists") != [(0,)]  # committed


def _refuse_to_stream(*_args, **_kwargs):
    raise AssertionError("the main process read the rows itself")


def test_the_cleaning_processes_read_the_file_themselves(make_database, v1_file, monkeypatch):
    """With workers, the main process never reads a row (it hands out rowid ranges); the
    result is the one of the main process reading, as a WAL file (read that way) shows."""
    path, manifest = v1_file
    url = make_database()
    monkeypatch.setattr(migration_clean, "default_workers", lambda: 2)
    with monkeypatch.context() as patched:
        patched.setattr(cli.LegacySource, "stream", _refuse_to_stream)
        assert migrate(path, "--database-url", url) == cli.EXIT_OK
    counts = (
        "SELECT (SELECT count(*) FROM artists), (SELECT count(*) FROM tracks), (SELECT count(*) FROM playlist_tracks)"
    )
    landed = fetch(url, counts)
    wal = path.with_name("wal.db")
    make_v1(wal)
    conn = sqlite3.connect(wal)
    assert conn.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
    conn.close()
    source = cli.open_legacy(wal)
    assert not source.shared_snapshot  # another connection could see another snapshot
    source.close()
    other = make_database()
    assert migrate(wal, "--database-url", other) == cli.EXIT_OK
    assert fetch(other, counts) == landed
    assert landed[0][1] == manifest["tracks"]["rows"] - manifest["tracks"]["merged"] - manifest["tracks"]["rejected"]


def test_rowid_ranges_cover_every_row_once(tmp_path):
    path = tmp_path / "sparse.db"
    make_v1(path, artists=40, tracks=0, entries=0, dirty=False)
    conn = sqlite3.connect(path)
    conn.execute("DELETE FROM artists WHERE id % 3 = 0 OR id BETWEEN 10 AND 20")
    conn.execute("INSERT INTO artists VALUES (-5, 'negativeRowid000000001', 'Below', '2020-01-01 00:00:00')")
    conn.execute("INSERT INTO artists VALUES (9000000000, 'hugeRowid0000000000001', 'Far', '2020-01-01 00:00:00')")
    conn.commit()
    rowids = [r[0] for r in conn.execute("SELECT rowid FROM artists ORDER BY rowid")]
    conn.close()
    source = cli.open_legacy(path)
    [spec] = [s for s in source.tables if s.name == "artists"]
    ranges = list(source.ranges(spec, 4))
    source.close()
    covered = [[r for r in rowids if (after is None or after < r) and r <= up_to] for after, up_to in ranges]
    assert [r for chunk in covered for r in chunk] == rowids
    assert all(1 <= len(chunk) <= 4 for chunk in covered)


def test_empty_legacy_database(make_database, tmp_path, capsys):
    path = tmp_path / "empty.db"
    make_v1(path, artists=0, tracks=0, entries=0, dirty=False)
    url = make_database()
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    assert fetch(url, "SELECT (SELECT count(*) FROM tracks), (SELECT count(*) FROM playlists)") == [(0, 0)]
    assert not Path(str(path) + ".rejects.jsonl").read_text()


def test_database_with_only_artists(make_database, tmp_path):
    path = tmp_path / "artists.db"
    make_v1(path, artists=30, tracks=0, entries=0, dirty=False)
    url = make_database()
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    assert fetch(url, "SELECT count(*) FROM artists") == [(30,)]
    # a file that has nothing but the artists table is v1 too; absent tables count as empty
    only = tmp_path / "only_artists.db"
    conn = sqlite3.connect(only)
    conn.execute(
        "CREATE TABLE artists (id INTEGER PRIMARY KEY, spotify_id TEXT NOT NULL, "
        "name TEXT NOT NULL, created_at TEXT NOT NULL)"
    )
    conn.execute("INSERT INTO artists VALUES (1, 'onlyArtist000000000001', 'Solo', '2020-01-01 00:00:00')")
    conn.commit()
    conn.close()
    assert migrate(only, "--database-url", url) == cli.EXIT_OK
    assert fetch(url, "SELECT created_at::text FROM artists WHERE name = 'Solo'") == [("2020-01-01 00:00:00+00",)]


def test_the_app_reads_migrated_data(make_database, v2_file):
    path, manifest = v2_file
    url = make_database()
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    import snapshots as snapshots_db
    import tracks_db
    import users_db

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        claimed = users_db.claim_legacy_placeholder(cur, "real-listener", "Real Listener")
        assert claimed and not claimed["is_placeholder"]
        top = snapshots_db.latest_top_tracks(cur, claimed["id"], "short_term", limit=3)
        assert [row["rank"] for row in top] == [1, 2, 3] and all(row["name"] for row in top)
        assert snapshots_db.snapshot_dates(cur, claimed["id"])
        track = tracks_db.get_track(cur, manifest["double_encoded_track"])
        assert track["isrc"] and track["release_date"]
        cur.execute("""SELECT u.spotify_id, t.name, t.raw_json->'album'->>'release_date', s.rank
                       FROM snapshots s JOIN tracks t ON t.spotify_id = s.track_id
                       JOIN users u ON u.id = s.user_id
                       WHERE t.search_vector @@ plainto_tsquery('english', 'track')
                       ORDER BY s.snapshot_date DESC, s.rank LIMIT 5""")
        assert len(cur.fetchall()) == 5
        cur.execute(
            "INSERT INTO playlists (user_id, kind, name) VALUES (%s, 'mood', 'new') RETURNING id", (claimed["id"],)
        )  # identities still work after the migration
        assert cur.fetchone()[0]
    conn.close()


def test_dry_run_writes_nothing(make_database, v1_file, capsys):
    path, _ = v1_file
    url = make_database(schema=False)
    assert migrate(path, "--database-url", url, "--dry-run") == cli.EXIT_OK
    assert "dry run: nothing was written" in capsys.readouterr().out
    assert fetch(url, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]
    assert not Path(str(path) + ".rejects.jsonl").exists()


def test_strict_refuses_rejects_and_commits_nothing(make_database, v1_file, tmp_path, capsys):
    path, _ = v1_file
    url = make_database()
    assert migrate(path, "--database-url", url, "--strict") == cli.EXIT_STRICT
    assert "--strict" in capsys.readouterr().out
    assert fetch(url, "SELECT count(*) FROM tracks") == [(0,)]
    clean = tmp_path / "clean.db"
    make_v2(clean, dirty=False)
    assert migrate(clean, "--database-url", url, "--strict") == cli.EXIT_OK


def test_verify_only_detects_a_changed_row(make_database, v2_file, capsys):
    path, manifest = v2_file
    url = make_database()
    assert migrate(path, "--database-url", url, "--verify-only") == cli.EXIT_UNRECONCILED
    assert migrate(path, "--database-url", url) == cli.EXIT_OK
    capsys.readouterr()
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE tracks SET raw_json = raw_json - 'album' WHERE spotify_id = %s", (manifest["double_encoded_track"],)
        )
    conn.close()
    assert migrate(path, "--database-url", url, "--verify-only") == cli.EXIT_UNRECONCILED
    out = capsys.readouterr().out
    assert "NOT RECONCILED: tracks: 1 row(s) differ from the source" in out
