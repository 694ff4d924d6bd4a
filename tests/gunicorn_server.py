"""A real gunicorn, started as the Procfile starts it (gunicorn -c gunicorn.conf.py), for
tests that must see what only the real server does: its thread queue, its access log,
how it treats a body the app did not read."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Gunicorn:
    url: str
    process: subprocess.Popen
    log: Path  # gunicorn's stdout and stderr: access and error log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def start_gunicorn(app_spec: str, tmp_path: Path, ready_path: str, **env_vars: str) -> Gunicorn:
    """gunicorn on a free port with ``app_spec`` (modules in ``tmp_path`` importable), one
    worker and the given environment; returns once ``ready_path`` answers 200."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DB_", "GUNICORN_", "SPOTIFY", "WEB_CONC"))}
    env.update(
        HOST="127.0.0.1",
        PORT=str(port),
        WEB_CONCURRENCY="1",
        PYTHONPATH=f"{tmp_path}{os.pathsep}{ROOT}",
        **env_vars,
    )
    log = tmp_path / f"gunicorn-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), app_spec],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Gunicorn(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + 30
    while True:
        try:
            if requests.get(server.url + ready_path, timeout=5).status_code == 200:
                return server
        except requests.RequestException:  # not listening yet, or slow on a busy machine
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"gunicorn did not start:\n{server.log_text()[-3000:]}")
        time.sleep(0.2)


def start_app(tmp_path: Path, db: str, emulator, threads: int = 1, **env_vars: str) -> Gunicorn:
    """The app itself (``app:create_app()``) under gunicorn, on database ``db``, in demo mode
    on the test session's emulator."""
    return start_gunicorn(
        "app:create_app()",
        tmp_path,
        "/healthz",
        DATABASE_URL=db,
        GUNICORN_THREADS=str(threads),
        SPOTIFY_EMULATOR_URL=emulator.base_url,
        **env_vars,
    )
