"""Helpers for tests that log in through the Spotify emulator like a person would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]


def query(db_url: str, sql: str, params=()) -> list:
    """Run one statement on its own connection and commit (tests that read what the app wrote)."""
    with psycopg2.connect(db_url) as conn, conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall() if cur.description else []
    conn.close()
    return rows


def wait_until(condition, what: str, timeout: float = 5, interval: float = 0.01):
    """Poll ``condition()`` until it is truthy (and return it); after ``timeout`` seconds fail
    naming ``what``. Tests wait for the state they assert on, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
    return result


def log_in_as(client, user_id) -> None:
    """Sign the test client in as this user, as the login callback would (no Spotify round trip)."""
    with client.session_transaction() as session:
        session["user_id"] = user_id


def csrf_token(client, path="/login") -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def start_login(client) -> dict:
    """POST /login; returns the authorize request's parameters sent to (emulated) Spotify."""
    response = client.post("/login", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 302
    return dict(parse_qsl(urlsplit(response.headers["Location"]).query))


def approve(emulator, params: dict, listener: str) -> dict:
    """The person clicks "Agree" on Spotify's page; returns the callback's query."""
    answer = requests.post(
        emulator.authorize_url,
        data={**params, "action": "approve", "user_id": listener},
        allow_redirects=False,
        timeout=5,
    )
    assert answer.status_code == 303
    return dict(parse_qsl(urlsplit(answer.headers["Location"]).query))


def log_in(client, emulator, listener="ava") -> dict:
    callback = approve(emulator, start_login(client), listener)
    response = client.get("/callback", query_string=callback)
    assert response.status_code == 302 and response.headers["Location"].endswith("/dashboard")
    return callback


def sign_in_and_sync(client, emulator, listener="ava"):
    """Log the client in as a demo listener and let the first sync finish successfully."""
    log_in(client, emulator, listener)
    status = wait_for_sync(client)
    assert status["status"] == "succeeded", status
    return client


def user_id(db_url: str, spotify_id: str) -> int:
    return query(db_url, "SELECT id FROM users WHERE spotify_id = %s", (spotify_id,))[0][0]


def wait_for_sync(client, timeout=60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get("/api/sync/status").get_json()
        if status["status"] not in ("running", "never"):
            return status
        time.sleep(0.1)
    raise AssertionError("sync did not finish")


def charts_of(client, query: str = "") -> dict:
    """Every chart of /api/charts (with ``query``), asserting a 200."""
    response = client.get("/api/charts" + query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["charts"]


def expire_access_token(db_url: str, uid: int) -> None:
    """As if the stored access token had run out an hour ago (the next call refreshes it)."""
    query(
        db_url,
        "UPDATE spotify_tokens SET expires_at = now() - interval '1 hour' WHERE user_id = %s RETURNING 1",
        (uid,),
    )


def age_relogin_mark(db_url: str, uid: int) -> None:
    """As if the hour before the one retry after an invalid_grant had passed."""
    query(db_url, "UPDATE users SET needs_relogin_since = now() - interval '2 hours' WHERE id = %s RETURNING 1", (uid,))


# -- the job engine: an app with short intervals, worker processes ------------------------
def jobs_config(db_url: str, emulator, **overrides) -> dict:
    """An app config whose job engine works in seconds: captures every 2 s, a worker
    counted dead 2 s after its last heartbeat, retries 0.5 s x 2^attempt apart."""
    return {
        "TESTING": True,
        "DATABASE_URL": db_url,
        "SECRET_KEY": "test-secret",
        "DB_POOL_MIN": 0,
        "SPOTIFY_EMULATOR_URL": emulator.base_url,
        "SPOTIPY_REDIRECT_URI": "http://127.0.0.1:5000/callback",
        "SPOTIFY_REQUEST_TIMEOUT": 2,
        "DEMO_BACKFILL_WEEKS": 1,
        "CAPTURE_INTERVAL": 2,
        "JOBS_POLL_INTERVAL": 0.2,
        "JOBS_STALLED_AFTER": 2,
        "JOBS_RETRY_BASE": 0.5,
        **overrides,
    }


def start_worker_process(db_url: str, emulator, log_dir: Path, name: str, **environ: str) -> subprocess.Popen:
    """``flask --app app worker`` in a process of its own, to SIGKILL (the settings of
    ``jobs_config`` but hourly captures, unless ``environ`` says otherwise); its output goes
    to ``log_dir/name.log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "SPOTIFY", "JOBS_", "CAPTURE_"))}
    env.update(
        DATABASE_URL=db_url,
        FLASK_SECRET_KEY="test-secret",
        SPOTIFY_EMULATOR_URL=emulator.base_url,
        SPOTIFY_REQUEST_TIMEOUT="5",
        DEMO_BACKFILL_WEEKS="1",
        CAPTURE_INTERVAL="3600",
        JOBS_STALLED_AFTER="2",
        JOBS_POLL_INTERVAL="0.2",
    )
    env.update(environ)
    log = (log_dir / f"{name}.log").open("a")
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
    )


def stop_processes(*processes) -> None:
    for process in processes:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def data_number(page: str, name: str) -> str:
    """The figure a page shows in its ``data-number="name"`` element."""
    return re.search(rf'data-number="{name}">([^<]*)<', page).group(1).strip()
