"""Load shedding: a request's wait for a database connection is bounded by DB_POOL_TIMEOUT
counted from when gunicorn queued it, so under overload late requests get a quick 503 +
Retry-After instead of an answer their client stopped waiting for."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

import database
from app import create_app
from gunicorn_server import start_gunicorn


def one_slot_app(db: str, pool_timeout: float):
    """The app with a one-connection pool and a route that needs the database."""
    application = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": db,
            "SECRET_KEY": "test-secret",
            "DB_POOL_MIN": 0,
            "DB_POOL_MAX": 1,
            "DB_POOL_TIMEOUT": pool_timeout,
            "SPOTIFY_EMULATOR_URL": "http://127.0.0.1:9",
        }
    )

    @application.get("/test-uses-db")
    def uses_db():
        database.get_db().cursor().execute("SELECT 1")
        return "served"

    return application


@pytest.fixture
def busy_app(db):
    yield one_slot_app(db, pool_timeout=1.0)
    database.close_pool()


def test_request_that_queued_past_the_pool_timeout_is_turned_away_at_once(busy_app):
    started = time.monotonic()
    response = busy_app.test_client().get("/test-uses-db", environ_overrides={database.QUEUE_SECONDS: 1.2})
    assert time.monotonic() - started < 0.5  # a free slot, but the request already waited too long
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert "Too many requests at once" in response.get_data(as_text=True)


def test_time_spent_queued_counts_against_the_pool_wait(busy_app):
    held = database.get_pool().getconn()
    try:
        started = time.monotonic()
        response = busy_app.test_client().get("/test-uses-db", environ_overrides={database.QUEUE_SECONDS: 0.7})
        waited = time.monotonic() - started
    finally:
        database.get_pool().putconn(held)
    assert response.status_code == 503
    assert 0.2 <= waited < 0.8  # the 0.3 s left of the 1 s budget, not a second full second


def test_shed_requests_are_counted_in_the_pool_stats(busy_app):
    before = database.get_pool().stats()["timeouts"]
    busy_app.test_client().get("/test-uses-db", environ_overrides={database.QUEUE_SECONDS: 2.0})
    assert database.get_pool().stats()["timeouts"] == before + 1


def test_a_zero_pool_timeout_still_means_only_a_free_connection(db):
    application = one_slot_app(db, pool_timeout=0)
    try:
        response = application.test_client().get("/test-uses-db", environ_overrides={database.QUEUE_SECONDS: 0.5})
        assert response.status_code == 200  # a free slot: served, whatever the queue time
    finally:
        database.close_pool()


def test_request_queued_briefly_is_served(busy_app):
    response = busy_app.test_client().get("/test-uses-db", environ_overrides={database.QUEUE_SECONDS: 0.3})
    assert response.status_code == 200 and response.get_data(as_text=True) == "served"


# -- under gunicorn, with the worker gunicorn.conf.py names -----------------------------
SLOW_APP = """
import time
import database
from app import create_app
from flask import request

def make():
    app = create_app()

    @app.get("/test-slow")
    def slow():  # holds the only thread
        time.sleep(float(request.args["seconds"]))
        return "slow done"

    @app.get("/test-uses-db")
    def uses_db():
        database.get_db().cursor().execute("SELECT 1")
        return "served"
    return app
"""


@pytest.fixture
def one_thread_gunicorn(db, tmp_path):
    (tmp_path / "slow_app.py").write_text(SLOW_APP)
    server = start_gunicorn(
        "slow_app:make()",
        tmp_path,
        "/test-uses-db",
        DATABASE_URL=db,
        GUNICORN_THREADS="1",
        DB_POOL_TIMEOUT="1",
        SPOTIFY_EMULATOR_URL="http://127.0.0.1:9",
        JOBS_EMBEDDED_WORKER="0",  # a timing test of the one web thread: no job worker beside it
    )
    yield server.url
    server.stop()


def test_gunicorn_sheds_requests_that_queued_past_the_budget_and_serves_the_rest(one_thread_gunicorn):
    url = one_thread_gunicorn
    answers = {}

    def get(name, path, delay):
        time.sleep(delay)
        sent = time.monotonic()
        response = requests.get(url + path, timeout=10, headers={"Accept": "application/json"})
        answers[name] = (response, time.monotonic() - sent)

    # The only thread sleeps 2.5 s; "late" queues behind it for ~2.3 s (> 1 s budget),
    # "early" arrives 0.4 s before the thread frees up (within the budget).
    calls = [
        threading.Thread(target=get, args=("slow", "/test-slow?seconds=2.5", 0)),
        threading.Thread(target=get, args=("late", "/test-uses-db", 0.2)),
        threading.Thread(target=get, args=("early", "/test-uses-db", 2.1)),
    ]
    for call in calls:
        call.start()
    for call in calls:
        call.join(15)

    assert answers["slow"][0].status_code == 200
    late, late_seconds = answers["late"]
    assert late.status_code == 503 and late.headers["Retry-After"] == "1"
    assert late.json()["error"]["title"] == "Busy right now"
    assert late_seconds < 3.5  # answered as soon as a thread picked it up, not served late
    early, _ = answers["early"]
    assert early.status_code == 200 and early.text == "served"


def test_a_slow_client_is_not_mistaken_for_a_long_queue(one_thread_gunicorn):
    """Headers trickling in for longer than the 1 s budget: the thread was free at once,
    so the request is served, not shed."""
    host, port = one_thread_gunicorn.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"GET /test-uses-db HTTP/1.1\r\nHost: test\r\n")
        time.sleep(1.5)
        sock.sendall(b"Connection: close\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"served"), answer[:200]
