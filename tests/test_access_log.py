"""gunicorn's access log (gunicorn.conf.py, gunicorn_worker.AccessLogger) under the real
server: the raw path, escaped, so "%0a" cannot forge a line; never the query string, where
the OAuth code and state travel."""

from __future__ import annotations

import time

import pytest
import requests

from gunicorn_server import start_app

FORGED = '127.0.0.1 "GET /settings/delete" 200 0 1ms'


@pytest.fixture
def gunicorn_app(db, emulator, tmp_path):
    server = start_app(tmp_path, db, emulator, threads=2)
    yield server
    server.stop()


def access_lines(server, marker: str, timeout: float = 10) -> list[str]:
    """The access log's lines once one containing ``marker`` was written."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = server.log_text().splitlines()
        if any(marker in line for line in lines):
            return lines
        time.sleep(0.05)
    raise AssertionError(f"no access line with {marker!r}:\n" + server.log_text()[-2000:])


def test_a_percent_encoded_newline_cannot_forge_an_access_line(gunicorn_app):
    injected = "/nope%0a" + FORGED.replace(" ", "%20").replace('"', "%22")
    assert requests.get(gunicorn_app.url + injected, timeout=10).status_code == 404
    lines = access_lines(gunicorn_app, "/nope")
    [line] = [line for line in lines if "/nope" in line]
    assert f'"GET {injected}" 404'.lower() in line.lower()  # as it came on the wire, on one line
    assert not any(line.startswith(FORGED[:30]) for line in lines)


def test_the_oauth_code_and_state_never_reach_the_access_log(gunicorn_app):
    answer = requests.get(
        gunicorn_app.url + "/callback", params={"code": "AQ-secret-code-123", "state": "secret-state-456"}, timeout=10
    )
    assert answer.status_code == 400  # no login was started in this browser
    lines = access_lines(gunicorn_app, '"GET /callback"')
    text = "\n".join(lines)
    assert "AQ-secret-code-123" not in text and "secret-state-456" not in text
