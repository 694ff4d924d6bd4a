"""Bad input for migrate_to_postgresql.py: one clear line, non-zero exit, nothing written."""

from __future__ import annotations

import functools
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

import migrate_to_postgresql as cli
from legacy_factory import make_v1
from migration import sqlite_source as legacy_sqlite

ROOT = Path(__file__).resolve().parents[1]


def public_tables(url) -> int:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        count = cur.fetchone()[0]
    conn.close()
    return count


def run_and_capture(capsys, *args) -> tuple[int, str]:
    status = cli.main([str(a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    return status, err[-1] if err else ""


@pytest.fixture
def empty_url(make_database):
    return make_database(schema=False)


def test_not_a_sqlite_file(tmp_path, capsys, empty_url):
    text = tmp_path / "notes.db"
    text.write_text("just some text, long enough to have a header\n")
    status, line = run_and_capture(capsys, text, "--database-url", empty_url)
    assert status == cli.EXIT_INPUT and line == f"error: {text}: not a SQLite 3 database (wrong header)"
    empty = tmp_path / "empty.db"
    empty.touch()
    assert run_and_capture(capsys, empty, "--database-url", empty_url) == (
        cli.EXIT_INPUT,
        f"error: {empty}: an empty file",
    )
    missing = tmp_path / "missing.db"
    assert run_and_capture(capsys, missing, "--database-url", empty_url) == (
        cli.EXIT_INPUT,
        f"error: {missing}: no such file",
    )
    assert public_tables(empty_url) == 0


def test_unknown_layout(tmp_path, capsys, empty_url):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE weather (city TEXT, temp REAL)")
    conn.commit()
    conn.close()
    status, line = run_and_capture(capsys, path, "--database-url", empty_url)
    assert status == cli.EXIT_INPUT
    assert line.startswith(f"error: {path}: unknown layout") and "weather" in line
    assert public_tables(empty_url) == 0


def test_locked_file(tmp_path, capsys, empty_url, monkeypatch):
    path = tmp_path / "locked.db"
    make_v1(path, dirty=False)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # the old app in the middle of a write
    monkeypatch.setattr(cli, "open_legacy", functools.partial(legacy_sqlite.open_legacy, busy_timeout=0.1))
    try:
        status, line = run_and_capture(capsys, path, "--database-url", empty_url)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert status == cli.EXIT_INPUT and "locked by another process" in line
    assert public_tables(empty_url) == 0


def test_unreachable_target(tmp_path, capsys):
    path = tmp_path / "v1.db"
    make_v1(path, dirty=False)
    status, line = run_and_capture(capsys, path, "--database-url", "postgresql://nobody:secret@127.0.0.1:9/nowhere")
    assert status == cli.EXIT_INPUT
    assert line.startswith("error: cannot connect to PostgreSQL at postgresql://nobody:***@127.0.0.1:9/nowhere")
    assert "secret" not in line
    status, line = run_and_capture(capsys, path, "--database-url", "mysql://x@y/z")
    assert status == cli.EXIT_INPUT and "--database-url must start with postgresql://" in line


def test_conflicting_schema(tmp_path, capsys, empty_url):
    with psycopg2.connect(empty_url) as conn, conn.cursor() as cur:  # the book's schema
        cur.execute("""CREATE TABLE tracks (id SERIAL PRIMARY KEY, spotify_id VARCHAR(22) UNIQUE NOT NULL,
                       name VARCHAR(500) NOT NULL, audio_features JSONB)""")
    conn.close()
    path = tmp_path / "v1.db"
    make_v1(path, dirty=False)
    status, line = run_and_capture(capsys, path, "--database-url", empty_url)
    assert status == cli.EXIT_INPUT
    assert line.startswith("error: target database has a conflicting schema") and "tracks.spotify_id" in line
    assert public_tables(empty_url) == 1  # nothing added next to it


def test_help_explains_every_option():
    result = subprocess.run(
        [sys.executable, str(ROOT / "migrate_to_postgresql.py"), "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    for option in (
        "SQLITE_PATH",
        "--database-url",
        "--user",
        "--rejects",
        "--dry-run",
        "--verify-only",
        "--strict",
        "exit status",
    ):
        assert option in result.stdout


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["x.db", "--dry-run", "--verify-only"])
    assert exc.value.code == cli.EXIT_USAGE
    with pytest.raises(SystemExit) as exc:
        cli.main(["x.db", "--user", "two words"])
    assert exc.value.code == cli.EXIT_USAGE
