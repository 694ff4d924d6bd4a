"""Shared fixtures: a real PostgreSQL for every database test.

By default the suite starts its own embedded PostgreSQL in a temporary directory (deleted
at the end); ``TEST_DATABASE_URL`` points it at another server instead (a superuser URL:
the suite creates and drops its own databases there).

Fixtures, after Flask's tutorial: ``app``, ``client``, ``runner``. Database fixtures:
``postgres_admin_url``, ``db_url`` (a session database with the schema), ``make_database``
(a fresh database per call), ``conn`` (one transaction per test, rolled back at the end).
"""
from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest
from psycopg2 import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import database  # noqa: E402
import spotify_emulator  # noqa: E402
import db_config  # noqa: E402
from app import create_app  # noqa: E402

# The emulator's "now": frozen, so top tracks and libraries are the same in every run.
FROZEN_NOW = datetime(2026, 11, 2, 18, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    """The suite's own embedded PostgreSQL, started once, deleted at the end."""
    server = db_config.EmbeddedPostgres(tmp_path_factory.mktemp("embedded"), cleanup_mode="delete")
    server.server()
    yield server
    server.server().cleanup()


@pytest.fixture(scope="session")
def postgres_admin_url(request):
    external = os.environ.get("TEST_DATABASE_URL", "").strip()
    if external:
        return db_config.normalize_database_url(external, setting="TEST_DATABASE_URL")
    return request.getfixturevalue("embedded_server").admin_url()


def database_url(admin_url: str, name: str) -> str:
    """The admin URL with its database name swapped for ``name``."""
    return urlunsplit(urlsplit(admin_url)._replace(path="/" + name))


def create_database(admin_url: str, schema: bool) -> str:
    name = f"mtm_test_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    conn.close()
    url = database_url(admin_url, name)
    if schema:
        with psycopg2.connect(url) as new_conn:
            database.apply_schema(new_conn)
        new_conn.close()
    return url


def drop_database(admin_url: str, url: str) -> None:
    name = psycopg2.extensions.parse_dsn(url)["dbname"]
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    conn.close()


@pytest.fixture(scope="session")
def db_url(postgres_admin_url):
    url = create_database(postgres_admin_url, schema=True)
    yield url
    drop_database(postgres_admin_url, url)


@pytest.fixture
def make_database(postgres_admin_url):
    """Factory: ``make_database(schema=True)`` -> URL of a brand-new database, dropped after the test."""
    made = []

    def make(schema: bool = True) -> str:
        made.append(create_database(postgres_admin_url, schema))
        return made[-1]

    yield make
    for url in made:
        drop_database(postgres_admin_url, url)


@pytest.fixture
def conn(db_url):
    """A connection inside one transaction that is rolled back when the test ends.

    ``transaction_depth = 1`` turns every ``database.transaction()`` on it into a
    savepoint, so code under test behaves as in production yet nothing is kept.
    """
    connection = psycopg2.connect(db_url, connection_factory=database.Connection)
    connection.transaction_depth = 1
    yield connection
    connection.rollback()
    connection.close()


@pytest.fixture
def app(db_url, conn, emulator):
    """The app on the session database; each request uses the test's rolled-back ``conn``."""
    application = create_app({"TESTING": True, "DATABASE_URL": db_url, "SECRET_KEY": "test",
                              "DB_POOL_MIN": 0, "SPOTIFY_EMULATOR_URL": emulator.base_url})

    @application.before_request
    def use_test_connection():
        from flask import g
        g.db_conn = conn

    yield application
    database.close_pool()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def emulator():
    """One Spotify emulator for the session (real HTTP on a free port), clock frozen."""
    server = spotify_emulator.serve_in_thread()
    server.state.set_now(FROZEN_NOW)
    yield server
    server.stop()
