"""The app answers, says clearly when its database cannot serve, and never shows a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from urllib.parse import urlsplit

import pytest

import database
import spotify
from app import create_app
from tests.conftest import ROOT


def make_app(**config):
    application = create_app({"TESTING": True, "SECRET_KEY": "test", "DB_POOL_MIN": 0, **config})

    @application.get("/needs-db")
    def needs_db():  # a stand-in for any page that reads the database
        with database.transaction() as cur:
            cur.execute("SELECT 1")
        return "ok"

    return application


@pytest.fixture
def fresh_app():
    """An app on a database the test chooses; its pool is closed afterwards."""
    made = []

    def build(**config):
        made.append(make_app(**config))
        return made[-1]

    yield build
    database.close_pool()


def test_landing_page_says_what_the_app_does(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"music taste" in response.data


def test_healthz_reports_database_schema_and_pool(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["schema_version"] == database.SCHEMA_VERSION
    assert set(body["pool"]) >= {"size", "in_use", "idle", "waiting"}
    assert body["pool"]["size"] == 10


def test_request_connection_is_returned_after_each_request(fresh_app, db_url):
    application = fresh_app(DATABASE_URL=db_url)
    client = application.test_client()
    for _ in range(15):  # more requests than the pool has connections
        assert client.get("/needs-db").data == b"ok"
    assert database.get_pool().stats()["in_use"] == 0


def test_postgres_scheme_from_railway_and_heroku_is_accepted(fresh_app, db_url):
    heroku_style = "postgres://" + db_url.split("://", 1)[1]
    response = fresh_app(DATABASE_URL=heroku_style).test_client().get("/healthz")
    assert response.status_code == 200


def test_db_host_variables_select_the_server(fresh_app, db_url, monkeypatch):
    parts = urlsplit(db_url)
    host = parts.hostname or dict(q.split("=", 1) for q in parts.query.split("&"))["host"]
    monkeypatch.setenv("DB_HOST", host)
    monkeypatch.setenv("DB_PORT", str(parts.port or 5432))
    monkeypatch.setenv("DB_NAME", parts.path.lstrip("/"))
    monkeypatch.setenv("DB_USER", parts.username or "postgres")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    response = fresh_app().test_client().get("/healthz")
    assert response.status_code == 200, response.get_json()


def test_server_down_gives_503_with_retry_after_and_a_friendly_page(fresh_app):
    application = fresh_app(DATABASE_URL="postgresql://app:s3cret-pw@127.0.0.1:1/music")
    client = application.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503 and health.headers["Retry-After"]
    assert "cannot connect to the database in DATABASE_URL" in health.get_json()["error"]
    assert "s3cret-pw" not in health.get_data(as_text=True)
    page = client.get("/needs-db", headers={"Accept": "text/html"})
    assert page.status_code == 503 and page.headers["Retry-After"] == "5"
    assert b"try again" in page.data and b"Traceback" not in page.data and b"s3cret-pw" not in page.data


def test_malformed_database_url_names_the_setting_and_hides_the_password(fresh_app):
    client = fresh_app(DATABASE_URL="mysql://root:hunter2@db/music").test_client()
    health = client.get("/healthz")
    assert health.status_code == 503
    error = health.get_json()["error"]
    assert "DATABASE_URL must start with postgresql://" in error and "hunter2" not in error
    page = client.get("/needs-db")
    assert page.status_code == 503 and b"hunter2" not in page.data


def test_unknown_host_names_db_host(fresh_app, monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("DB_HOST", "no-such-host.invalid")
    health = fresh_app().test_client().get("/healthz")
    assert health.status_code == 503
    assert "DB_HOST (no-such-host.invalid:5432)" in health.get_json()["error"]


def test_exhausted_pool_gives_503_with_retry_after_not_a_hang(fresh_app, db_url):
    application = fresh_app(DATABASE_URL=db_url, DB_POOL_MAX=1, DB_POOL_TIMEOUT=0.2)
    hog = database.get_pool().getconn()
    try:
        response = application.test_client().get("/needs-db", headers={"Accept": "application/json"})
    finally:
        database.get_pool().putconn(hog)
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["title"] == "Busy right now"


def test_schema_missing_makes_healthz_503_with_the_fix(fresh_app, make_database):
    health = fresh_app(DATABASE_URL=make_database(schema=False)).test_client().get("/healthz")
    assert health.status_code == 503
    assert "flask --app app init-db" in health.get_json()["error"]


def test_unexpected_error_is_a_page_not_a_traceback(app):
    @app.get("/boom")
    def boom():
        raise KeyError("internal detail")

    app.config["PROPAGATE_EXCEPTIONS"] = False
    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert b"Something went wrong" in response.data and b"internal detail" not in response.data


def test_unknown_page_is_a_404_page(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404 and b"Not Found" in response.data


def run_cli(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "app", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_init_db_with_a_broken_url_exits_non_zero_with_one_clear_line():
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": "postgresql://u:topsecret@127.0.0.1:1/x",
        "FLASK_SECRET_KEY": "x",
        "HOME": "/tmp",
    }
    result = run_cli("init-db", env=env)
    assert result.returncode == 1
    assert "Error: cannot connect to the database in DATABASE_URL (postgresql://u:***@127.0.0.1:1/x)" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout and "topsecret" not in result.stderr


def test_bad_pool_setting_names_the_variable():
    result = run_cli("init-db", env={"PATH": "/usr/bin:/bin", "DB_POOL_MAX": "lots", "HOME": "/tmp"})
    assert result.returncode != 0
    assert "DB_POOL_MAX must be a non-negative whole number (got 'lots')" in result.stderr
    assert "Traceback" not in result.stderr


EMBEDDED_CLIENT = textwrap.dedent("""
    import sys, psycopg2, db_config
    url = db_config.database_url_from_env({}, sys.argv[1])
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS visits (pid int)")
        cur.execute("INSERT INTO visits VALUES (pg_backend_pid())")
        cur.execute("SELECT count(*), pg_postmaster_start_time() FROM visits")
        print(*cur.fetchone(), sep="|", flush=True)
    conn.close()
    sys.stdin.read()  # stay alive, like a running app, until told to exit
""")


def test_embedded_default_is_shared_by_processes_and_keeps_data_across_restarts(tmp_path):
    def start_client():
        process = subprocess.Popen(
            [sys.executable, "-c", EMBEDDED_CLIENT, str(tmp_path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        count, started = process.stdout.readline().strip().split("|")
        return process, int(count), started

    def stop(process):
        process.communicate("", timeout=60)
        assert process.returncode == 0

    app_process, first_count, server_start = start_client()  # "the running app"
    cli_process, second_count, cli_server_start = start_client()  # "a CLI command next to it"
    assert (first_count, second_count) == (1, 2)
    assert cli_server_start == server_start  # the same server, not a second one
    stop(cli_process)
    assert (tmp_path / "pgdata" / "postmaster.pid").exists()  # still serving the app
    stop(app_process)
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()  # last one out stopped it
    restarted, count, restart_time = start_client()
    stop(restarted)
    assert count == 3 and restart_time != server_start  # a new server, the old data


def test_a_database_without_the_schema_gets_a_clear_503_not_a_500(fresh_app, make_database):
    application = fresh_app(DATABASE_URL=make_database(schema=False))

    @application.get("/reads-users")
    def reads_users():
        with database.transaction() as cur:
            cur.execute("SELECT count(*) FROM users")
        return "ok"

    response = application.test_client().get("/reads-users")
    assert response.status_code == 503 and b"needs an update" in response.data


def test_first_requests_arriving_together_in_demo_mode_share_one_emulator(monkeypatch):
    """The first page views and the embedded worker ask for the emulator at once: one starts,
    or a login is sent to one emulator while the page's CSP allows another's origin."""
    monkeypatch.setattr(spotify, "_demo_emulator", None)
    together = threading.Barrier(8)
    urls: list[str] = []

    def first_request() -> None:
        together.wait()
        urls.append(spotify.demo_emulator_url())

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    started = spotify._demo_emulator
    try:
        assert len(urls) == 8 and set(urls) == {started.base_url}
    finally:
        started.stop()
