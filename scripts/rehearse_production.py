"""Production rehearsal: deploy the way Railway does, on this machine, then smoke-test it.

    .venv/bin/python scripts/rehearse_production.py

1. a separate PostgreSQL (its own embedded server in a temporary directory);
2. a standalone Spotify emulator process standing in for Spotify (real credentials mode:
   SPOTIPY_CLIENT_ID set, so the app runs with production settings);
3. railway.toml's preDeployCommand, twice (it must be idempotent), then its startCommand
   (gunicorn through gunicorn.conf.py) with a random FLASK_SECRET_KEY;
4. the health check path until it answers 200; then a person logs in through the
   emulator's consent page, the first sync runs, and every GET page of the app answers 200
   with the security headers and without a traceback;
5. the app's log must not contain any token, secret or password.

Exits non-zero with the reason on the first failure. CI runs it.
"""

from __future__ import annotations

import html
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import db_config  # noqa: E402
import token_keys  # noqa: E402
from emulator import server as spotify_emulator  # noqa: E402

LISTENER = "chen"


class RehearsalFailed(Exception):
    pass


def check(condition, message):
    if not condition:
        raise RehearsalFailed(message)


def first_group(pattern: str, text: str, missing: str) -> str:
    """The pattern's first group in the text; no match fails the rehearsal with `missing`."""
    match = re.search(pattern, text)
    check(match, missing)
    return match.group(1) if match else ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 60) -> requests.Response:
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            last = requests.get(url, timeout=5)
            if last.status_code == 200:
                return last
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise RehearsalFailed(
        f"{url} did not answer 200 within {seconds:.0f} s (last: "
        f"{last.status_code if last is not None else 'no answer'})"
    )


class BehindHttpsProxy(requests.Session):
    """A browser behind Railway's TLS proxy: the app sees HTTPS (X-Forwarded-Proto) and sets
    Secure cookies; this client talks plain HTTP to gunicorn, as the proxy does, so it keeps
    and returns the cookies itself (requests would drop Secure cookies over HTTP)."""

    def __init__(self):
        super().__init__()
        self.kept_cookies: dict[str, str] = {}

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        headers = kwargs["headers"] = dict(kwargs.get("headers") or {})
        if self.kept_cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.kept_cookies.items())
        response = super().request(method, url, *args, **kwargs)
        self.kept_cookies.update(response.cookies.items())
        return response


def log_in(base: str) -> requests.Session:
    session = BehindHttpsProxy()
    session.headers["X-Forwarded-Proto"] = "https"
    # Flask-WTF checks that an HTTPS form post comes from our own pages, as a browser's would
    session.headers["Referer"] = base.replace("http://", "https://", 1) + "/login"
    page = session.get(base + "/login", timeout=10)
    token = first_group(r'name="csrf_token" value="([^"]+)"', page.text, "the login page has no CSRF token")
    authorize = session.post(base + "/login", data={"csrf_token": token}, allow_redirects=False, timeout=10)
    check(
        authorize.status_code == 302,
        f"POST /login answered {authorize.status_code}: {re.sub(r'<[^>]+>', ' ', authorize.text)[-300:].split()}",
    )
    location = authorize.headers["Location"]
    consent = requests.post(
        location.split("?")[0],
        allow_redirects=False,
        timeout=10,
        data={**dict(parse_qsl(urlsplit(location).query)), "action": "approve", "user_id": LISTENER},
    )
    callback = session.get(consent.headers["Location"], allow_redirects=False, timeout=30)
    check(
        callback.status_code == 302 and callback.headers["Location"].endswith("/dashboard"),
        f"/callback answered {callback.status_code}: {callback.text[:200]}",
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = session.get(base + "/api/sync/status", timeout=10).json()
        if status["status"] not in ("running", "never"):
            check(status["status"] == "succeeded", f"the first sync failed: {status.get('error')}")
            return session
        time.sleep(0.5)
    raise RehearsalFailed("the first sync did not finish within 120 s")


def example_values(session: requests.Session, base: str, emulator: str) -> dict:
    """Real values for routes with a parameter: a chart, one of the user's tracks, and a
    time-machine playlist the rehearsal builds on (emulated) Spotify for the occasion."""
    values = {"name": next(iter(session.get(base + "/api/charts", timeout=30).json()["charts"]))}
    page = session.get(base + "/time-machine?decade=2010s", timeout=30).text
    values["track_id"] = first_group(r"/tracks/([A-Za-z0-9]+)", page, "the time machine preview lists no track")
    token = first_group(r'name="csrf_token" value="([^"]+)"', page, "the time machine page has no CSRF token")
    created = session.post(
        base + "/time-machine", data={"csrf_token": token, "decade": "2010s"}, allow_redirects=False, timeout=60
    )
    check(
        created.status_code == 302 and "/playlists/" in created.headers.get("Location", ""),
        f"creating a time-machine playlist answered {created.status_code}",
    )
    track_page = session.get(f"{base}/tracks/{values['track_id']}", timeout=30).text
    values["artist_id"] = first_group(r"/artists/([A-Za-z0-9]+)", track_page, "the track page links no artist")
    values["artist_name"] = html.unescape(
        first_group(r'/artists/[A-Za-z0-9]+">([^<]+)<', track_page, "the track page names no artist")
    )
    values["album_id"] = first_group(r"/albums/([A-Za-z0-9]+)", track_page, "the track page links no album")
    values["playlist_id"] = int(created.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    values["import_id"] = import_history_export(session, base, emulator)
    # a year the person has plays in: the listening page links its years in review
    listening = session.get(base + "/listening", timeout=30).text
    values["year"] = int(first_group(r"/listening/(\d{4})", listening, "the listening page links no year in review"))
    print(f"  built playlist {values['playlist_id']} on Spotify from the 2010s")
    return values


def import_history_export(session: requests.Session, base: str, emulator: str) -> int:
    """Upload the listener's data export from the emulator through the page's plain form (as a
    browser without script would) and wait for the worker to import it; returns its id."""
    export = requests.get(f"{emulator}/_emulator/data-export/{LISTENER}.zip", timeout=60)
    check(export.status_code == 200, f"the emulator's data export answered {export.status_code}")
    page = session.get(base + "/import", timeout=30).text
    token = first_group(r'name="csrf_token" value="([^"]+)"', page, "the import page has no CSRF token")
    uploaded = session.post(
        base + "/import",
        data={"csrf_token": token},
        files={"files": ("my_spotify_data.zip", export.content, "application/zip")},
        allow_redirects=False,
        timeout=60,
    )
    check(uploaded.status_code == 303, f"uploading the export answered {uploaded.status_code}: {uploaded.text[:200]}")
    import_id = int(uploaded.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = session.get(f"{base}/api/import/{import_id}", timeout=10).json()
        if status.get("status") in ("succeeded", "failed"):
            check(status["status"] == "succeeded", f"the history import ended {status['status']}: {status}")
            print(f"  imported the data export: {status.get('summary', {}).get('new_plays', '?')} new plays")
            return import_id
        time.sleep(0.5)
    raise RehearsalFailed("the history import did not finish within 180 s")


def pages_to_visit(session: requests.Session, base: str, emulator: str) -> list[str]:
    """Every GET route of the app, routes with a parameter filled with real values."""
    from app import create_app

    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": "postgresql://unused@127.0.0.1:1/none",
            "SPOTIFY_EMULATOR_URL": "http://127.0.0.1:1",
        }
    )
    values = example_values(session, base, emulator)
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static" or rule.rule.startswith("/callback"):
            continue
        missing = [name for name in rule.arguments if name not in values]
        check(not missing, f"the rehearsal has no example value for {rule.rule}: add one to example_values()")
        built = rule.build({name: values[name] for name in rule.arguments})
        check(built, f"{rule.rule} does not build from the example values")
        paths.append(built[1] if built else "")
    return sorted(set(paths))


def smoke(session: requests.Session, base: str, emulator: str) -> None:
    for path in pages_to_visit(session, base, emulator):
        if path == "/logout":
            continue
        response = session.get(base + path, timeout=30, allow_redirects=False)
        ok = response.status_code in (200, 302) if path.startswith("/login") else response.status_code == 200
        check(ok, f"GET {path} answered {response.status_code}")
        check("Traceback" not in response.text, f"GET {path} shows a traceback")
        headers = response.headers
        check("script-src 'self'" in headers.get("Content-Security-Policy", ""), f"GET {path}: no CSP")
        check(headers.get("Strict-Transport-Security"), f"GET {path}: no HSTS in production")
        check(headers.get("X-Content-Type-Options") == "nosniff", f"GET {path}: no nosniff")
        print(f"  GET {path}: {response.status_code}")


def stop(process: subprocess.Popen) -> None:
    """gunicorn runs in a session of its own: end the whole group (master and workers)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def main() -> int:
    railway = tomllib.loads((ROOT / "railway.toml").read_text())["deploy"]
    processes = []
    log_file = tempfile.NamedTemporaryFile("w+", prefix="rehearsal-app-", suffix=".log", delete=False)
    with tempfile.TemporaryDirectory(prefix="rehearsal-") as tmp:
        server = db_config.EmbeddedPostgres(Path(tmp), cleanup_mode="delete")
        try:
            database_url = server.url("production")
            emulator_port = free_port()
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "emulator", "--port", str(emulator_port)],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
            emulator = f"http://127.0.0.1:{emulator_port}"
            app_port = free_port()
            secret = secrets.token_hex(32)
            env = {
                **os.environ,
                "DATABASE_URL": database_url,
                "FLASK_SECRET_KEY": secret,
                "SPOTIPY_CLIENT_ID": spotify_emulator.DEMO_CLIENT_ID,
                "SPOTIPY_CLIENT_SECRET": spotify_emulator.DEMO_CLIENT_SECRET,
                "SPOTIPY_REDIRECT_URI": f"http://127.0.0.1:{app_port}/callback",
                "SPOTIFY_ACCOUNTS_URL": emulator,
                "SPOTIFY_API_URL": emulator,
                "PORT": str(app_port),
                "HOST": "127.0.0.1",
                "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}",
            }
            env.pop("SPOTIFY_EMULATOR_URL", None)
            wait_for(emulator + "/_emulator/users", 30)

            for attempt in ("first", "second"):
                for command in railway["preDeployCommand"]:
                    done = subprocess.run(
                        shlex.split(command), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
                    )
                    check(done.returncode == 0, f"pre-deploy ({attempt} run) `{command}` failed: {done.stderr.strip()}")
                    print(f"pre-deploy ({attempt} run): {done.stdout.strip()}")

            processes.append(
                subprocess.Popen(
                    shlex.split(railway["startCommand"]),
                    cwd=ROOT,
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
            health = wait_for(f"http://127.0.0.1:{app_port}{railway['healthcheckPath']}", railway["healthcheckTimeout"])
            print(f"health check {railway['healthcheckPath']}: {health.json()}")

            base = f"http://127.0.0.1:{app_port}"
            session = log_in(base)
            print(f"logged in as {LISTENER} through the emulator; first sync succeeded")
            smoke(session, base, emulator)

            log_file.flush()
            log_text = Path(log_file.name).read_text()
            import psycopg2

            with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
                cur.execute("SELECT access_token, access_token_encrypted FROM spotify_tokens")
                rows = cur.fetchall()
            conn.close()
            check(rows and all(plain is None for plain, _ in rows), "no token was stored, or one in plain text")
            cipher = token_keys.cipher(secret)
            access_tokens = [token_keys.decrypt(cipher, blob) or "" for _, blob in rows]
            check(all(access_tokens), "a stored access token does not decrypt with FLASK_SECRET_KEY")
            secrets_to_hide = [
                ("FLASK_SECRET_KEY", secret),
                ("the client secret", spotify_emulator.DEMO_CLIENT_SECRET),
                *(("an access token", token) for token in access_tokens),
                ("a Bearer header", "Bearer "),
            ]
            leaked = [name for name, value in secrets_to_hide if value in log_text]
            check(not leaked, f"the app's log contains {', '.join(leaked)}")
            print(f"app log: {len(log_text.splitlines())} lines, no secret or token in it")
        finally:
            for process in reversed(processes):
                stop(process)
            server.server().cleanup()
    print("production rehearsal passed")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except RehearsalFailed as failure:
        print(f"production rehearsal FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
