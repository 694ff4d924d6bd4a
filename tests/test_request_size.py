"""Request bodies are bounded: past MAX_CONTENT_LENGTH the answer is 413 before the body
is read, and under gunicorn the connection closes so no thread reads the rest."""

from __future__ import annotations

import socket
import time

import pytest
import requests

import security
from gunicorn_server import start_app


def test_oversized_form_is_refused_with_413_before_csrf_reads_it(app):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    response = app.test_client().post("/login", data={"junk": "x" * 5000})
    assert response.status_code == 413
    assert "larger than the 1,000 bytes" in response.get_data(as_text=True)


def test_a_view_can_take_more_through_its_own_config_key(app):
    app.config.update(MAX_CONTENT_LENGTH=1000, TEST_UPLOAD_MAX_BYTES=10_000, WTF_CSRF_ENABLED=False)

    @app.post("/test-upload")
    @security.body_limit("TEST_UPLOAD_MAX_BYTES")
    def upload():
        return f"{len(security.request.get_data())} bytes"

    client = app.test_client()
    assert client.post("/test-upload", data=b"x" * 5000).get_data(as_text=True) == "5000 bytes"
    assert client.post("/test-upload", data=b"x" * 20_000).status_code == 413
    assert client.post("/login", data=b"x" * 5000).status_code == 413  # the others keep the default


@pytest.fixture
def one_thread_app(db, emulator, tmp_path):
    server = start_app(tmp_path, db, emulator, threads=1)
    yield server
    server.stop()


def test_gunicorn_answers_a_2_gb_post_with_413_at_once_and_closes(one_thread_app):
    host, port = one_thread_app.url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 2000000000\r\n\r\n" + b"x" * 65536
        )
        answer = b""
        while chunk := sock.recv(65536):  # the server closes: no thread is left reading 2 GB
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert time.monotonic() - started < 3
    # the one thread is free at once
    started = time.monotonic()
    assert requests.get(one_thread_app.url + "/healthz", timeout=5).status_code == 200
    assert time.monotonic() - started < 1


def test_gunicorn_cuts_off_a_chunked_body_at_the_limit(one_thread_app):
    host, port = one_thread_app.url.removeprefix("http://").split(":")
    chunk = b"x" * 65536
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /login HTTP/1.1\r\nHost: test\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        try:  # 2 MB of chunks, past the 1 MiB default; the server may close before the end
            for _ in range(32):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
