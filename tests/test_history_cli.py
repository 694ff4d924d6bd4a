"""`flask --app app import-history PATH... --user SPOTIFY_ID`: exit codes and messages."""

from __future__ import annotations

import pytest

import database
from app import create_app
from helpers import query
from history_files import plays, write_json, write_zip


@pytest.fixture
def cli(db):
    application = create_app({"TESTING": True, "DATABASE_URL": db, "SECRET_KEY": "test", "DB_POOL_MIN": 0})
    runner = application.test_cli_runner()  # click 8.2+: result.stderr apart from stdout
    yield lambda *args: runner.invoke(args=["import-history", *args])
    database.close_pool()


def test_import_creates_the_user_and_exits_0(cli, db, tmp_path):
    archive = write_zip(tmp_path / "my_spotify_data.zip", {"Streaming_History_Audio_2020_0.json": plays(12)})
    result = cli(str(archive), "--user", "newcomer")
    assert result.exit_code == 0, result.output
    assert "newcomer: 12 new plays" in result.stdout
    assert query(
        db, "SELECT count(*) FROM plays p JOIN users u ON u.id = p.user_id WHERE u.spotify_id = 'newcomer'"
    ) == [(12,)]

    again = cli(str(archive), "--user", "newcomer")
    assert again.exit_code == 0 and "Nothing new: this file was imported before." in again.stdout


def test_bad_input_is_one_line_and_exit_1(cli, db, tmp_path):
    good = write_json(tmp_path / "Streaming_History_Audio_2020_0.json", plays(5))
    bad = tmp_path / "photo.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 64)
    result = cli(str(good), str(bad), "--user", "someone")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "Error: photo.jpg: not a zip or JSON file (upload the zip Spotify sent, or the JSON files in it);"
        " nothing was imported"
    ]
    assert "Traceback" not in result.output
    assert query(db, "SELECT count(*) FROM plays") == [(0,)]

    missing = cli(str(tmp_path / "nowhere.zip"), "--user", "someone")
    assert missing.exit_code == 1 and "nowhere.zip: cannot be read" in missing.stderr


@pytest.mark.parametrize(
    "args",
    [[], ["file.json"], ["file.json", "--user", ""], ["file.json", "--user", "two words"], ["--user", "x"]],
)
def test_usage_errors_exit_2(cli, args):
    assert cli(*args).exit_code == 2


def test_the_import_queues_the_enrichment_of_the_tracks_it_named(cli, db, tmp_path):
    waiting = "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'history.enrich' AND status = 'todo'"
    first = write_json(tmp_path / "Streaming_History_Audio_2020_0.json", plays(4))
    assert cli(str(first), "--user", "newcomer").exit_code == 0
    assert query(db, "SELECT count(*) FROM tracks WHERE needs_enrichment") == [(4,)]
    assert query(db, waiting) == [(1,)]  # a worker fetches them; the CLI does not wait
    second = write_json(tmp_path / "Streaming_History_Audio_2020_1.json", plays(3, first=10))
    assert cli(str(second), "--user", "newcomer").exit_code == 0
    assert query(db, waiting) == [(1,)]  # the waiting job will do these too
