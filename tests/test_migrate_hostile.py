"""Hostile legacy files against the real CLI (issue 17, points 10-14): one line and exit 1,
or a rejects entry; never a traceback, never a hang."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from legacy_factory import make_v1, make_v2, spotify_id
from test_migrate import PRIVATE_SCHEMAS, fetch, nothing_migrated

ROOT = Path(__file__).resolve().parents[1]
EXIT_INPUT = 1
RUN_BOUND = 60  # seconds: a hang fails the test instead of the suite


def run_cli(*args) -> subprocess.CompletedProcess:
    """migrate_to_postgresql.py as a person runs it: its own process, its own exit status."""
    return subprocess.run(
        [sys.executable, str(ROOT / "migrate_to_postgresql.py"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        timeout=RUN_BOUND,
    )


def assert_one_line_refusal(result: subprocess.CompletedProcess, *expected: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == EXIT_INPUT, (result.returncode, result.stdout, result.stderr)
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and all(part in line for part in expected), line
    return line


def fetch_one(url, query, params=None):
    return fetch(url, query, params)[0]


def public_tables(url) -> int:
    return fetch_one(url, "SELECT count(*) FROM pg_tables WHERE schemaname <> ALL('{pg_catalog,information_schema}')")[
        0
    ]


def report(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


# --- 10. invalid UTF-8 inside a JSON column --------------------------------------------


@pytest.mark.parametrize("layout", ["v1", "v2"])
def test_invalid_utf8_inside_json_is_a_repair_entry(layout, make_database, tmp_path):
    path = tmp_path / f"{layout}.db"
    rejects = tmp_path / "rejects.jsonl"
    bad_json = b'{"energy": 0.5, "note": "caf\xe9 \xff"}'  # Latin-1 bytes inside a JSON string
    (make_v1 if layout == "v1" else make_v2)(path, dirty=False)
    conn = sqlite3.connect(path)
    if layout == "v1":
        bad_id = spotify_id("track", 9001)
        conn.execute(
            "INSERT INTO tracks (id, spotify_id, name, audio_features, created_at) "
            "VALUES (9001, ?, 'Bad bytes', CAST(? AS TEXT), '2021-01-01 00:00:00')",
            (bad_id, bad_json),
        )
        column = "audio_features"
    else:
        bad_id = spotify_id("track", 9001)
        conn.execute(
            "INSERT INTO tracks (track_id, name, raw_json) VALUES (?, 'Bad bytes', CAST(? AS TEXT))",
            (bad_id, bad_json),
        )
        column = "raw_json"
    conn.commit()
    conn.close()
    url = make_database()
    result = run_cli(path, "--database-url", url, "--rejects", rejects)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    [line] = [entry for entry in report(rejects) if entry["legacy_key"] in (bad_id, "9001")]
    assert line["action"] == "repaired" and column in line["reason"] and "UTF-8" in line["reason"]
    assert line["original"][column] == {"invalid_utf8_hex": bad_json.hex()}
    stored = fetch_one(
        url, f"SELECT {column}->>'note', {column}->>'energy' FROM tracks WHERE spotify_id = %s", (bad_id,)
    )
    assert stored == ("caf\ufffd \ufffd", "0.5")


# --- 11. a corrupt data page -------------------------------------------------------------


def corrupt_a_data_page(path: Path) -> None:
    """Overwrite 8 KB in the middle of the file, leaving the header and schema page intact."""
    size = path.stat().st_size
    page_size = 4096
    assert size > 40 * page_size
    with path.open("r+b") as handle:
        handle.seek((size // page_size // 2) * page_size)
        handle.write(bytes(range(256)) * 32)


@pytest.mark.parametrize("dry_run", [False, True], ids=["migrate", "dry-run"])
def test_corrupt_data_page_is_one_line_naming_the_file(dry_run, make_database, tmp_path):
    path = tmp_path / "damaged.db"
    make_v2(path, tracks=300, snapshots=3000, dirty=False)
    corrupt_a_data_page(path)
    url = make_database(schema=False)
    result = run_cli(path, "--database-url", url, *(["--dry-run"] if dry_run else []))
    assert_one_line_refusal(result, str(path), "damaged", "nothing was committed")
    assert nothing_migrated(url) and fetch_one(url, PRIVATE_SCHEMAS) == (0,)


# --- 12. an expected table that is a view -------------------------------------------------


def test_an_expected_table_that_is_a_view_is_refused(make_database, tmp_path):
    path = tmp_path / "view.db"
    make_v2(path, dirty=False)
    conn = sqlite3.connect(path)
    conn.executescript(
        "ALTER TABLE snapshots RENAME TO snapshots_data; CREATE VIEW snapshots AS SELECT * FROM snapshots_data;"
    )
    conn.close()
    url = make_database(schema=False)
    line = assert_one_line_refusal(run_cli(path, "--database-url", url), str(path), "snapshots is a view")
    assert "not a table" in line
    assert public_tables(url) == 0


# --- 13. table names containing a double quote -------------------------------------------


def test_table_names_with_a_double_quote(make_database, tmp_path):
    path = tmp_path / "quoted.db"
    make_v2(path, dirty=False)
    conn = sqlite3.connect(path)
    conn.execute('CREATE TABLE "odd""name" ("col""umn" TEXT)')
    conn.commit()
    conn.close()
    url = make_database()
    result = run_cli(path, "--database-url", url)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert fetch_one(url, "SELECT count(*) FROM snapshots") == (150,)
    # a file that holds nothing else is still told apart, with the odd name in the message
    other = tmp_path / "only_odd.db"
    conn = sqlite3.connect(other)
    conn.execute('CREATE TABLE "we""ird" (x)')
    conn.commit()
    conn.close()
    assert_one_line_refusal(run_cli(other, "--database-url", url), "unknown layout", 'we"ird')


# --- 14. a FIFO or other non-regular file -----------------------------------------------


def test_a_fifo_is_refused_without_hanging(make_database, tmp_path):
    fifo = tmp_path / "legacy.db"
    os.mkfifo(fifo)
    url = make_database(schema=False)
    assert_one_line_refusal(run_cli(fifo, "--database-url", url), str(fifo), "not a regular file")
    assert_one_line_refusal(run_cli("/dev/zero", "--database-url", url), "/dev/zero", "not a regular file")
    assert public_tables(url) == 0


# --- SQLite's lowest rowid ----------------------------------------------------------------


@pytest.mark.parametrize("journal", ["delete", "wal"])  # workers read ranges / one reader streams
def test_a_row_at_sqlites_lowest_rowid_is_migrated(journal, make_database, tmp_path):
    path = tmp_path / "lowest.db"
    make_v2(path, dirty=False)
    conn = sqlite3.connect(path)
    [(track_id,)] = conn.execute("SELECT track_id FROM tracks ORDER BY rowid LIMIT 1").fetchall()
    conn.execute("UPDATE tracks SET rowid = ? WHERE track_id = ?", (-(2**63), track_id))
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.commit()
    conn.close()
    url = make_database()
    result = run_cli(path, "--database-url", url)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    assert fetch_one(url, "SELECT count(*) FROM tracks WHERE spotify_id = %s", (track_id,)) == (1,)
    assert fetch_one(url, "SELECT count(*) FROM tracks") == (60,)
