"""Compute once per change, not once per view: the stored form of a person's charts.

A chart is a pure function of the person's rows, the catalogue those rows point at, the
request's parameters and the code. Each of these has a number that moves when it
changes:

- ``users.data_version``: moved by statement triggers on snapshots, saved_tracks and
  plays (and ``users_db.bump_data_version()`` for anything else), in the writer's own
  transaction (schema version 11);
- ``catalogue_version``: moved at the commit of any transaction that changed what a page
  shows of a track or an artist;
- ``CODE_VERSION``: a digest of the app's source, templates and static files, so a
  deploy never serves an answer computed by the previous code.

A *stamp* joins them with the inputs a chart reads besides its rows (the day that "last
12 months" counts back from, a time zone). ``chart_cache`` keeps one answer per (user,
chart, parameters) with the stamp it was computed under; an answer is served only while
its stamp is the current one. So the first view after a change computes and stores, and
every later view until the next change is one indexed read. The same stamp makes the
HTTP ETag (see conditional.py), so an unchanged page costs a 304.

Reading the numbers BEFORE computing, in the same transaction, is what keeps it exact: a
writer that commits in between makes the answer newer than its stamp, and the next reader,
seeing the newer number, recomputes. An answer older than its stamp cannot happen.

``warm(user_id)`` precomputes what a person will most likely open next (the dashboard with
its default filters); writers call it after their commit (the sync does), so the first
view after a sync is a read, too.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from database import long_running, transaction
from page_cache import store_db

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]


def code_version(root: Path = ROOT) -> str:
    """A digest of every file that shapes an answer or a page: the app's modules (the top
    level and its packages), the templates and the static files."""
    digest = hashlib.sha256()
    packages = [init.parent for init in root.glob("*/__init__.py") if init.parent.name not in ("tests", "bench")]
    files = sorted(
        [
            *root.glob("*.py"),
            *(module for package in packages for module in package.rglob("*.py")),
            *root.glob("templates/**/*"),
            *root.glob("static/**/*"),
        ]
    )
    for path in files:
        if path.is_file():
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


CODE_VERSION = code_version()

# cursor, the names still to compute -> name -> JSON-ready answer
Compute = Callable[[object, list[str]], dict[str, dict]]


@dataclass
class Lookup:
    """What the store holds for one request: the current stamp, the answers stored under
    it (name -> JSON text) and the names still to compute; and what the same statement
    read besides (``state``: the session version, the person's local today, with
    ``frame`` the users row and the latest sync)."""

    user_id: int
    params: str
    stamp: str
    names: list[str]
    found: dict[str, str]
    state: dict

    @property
    def missing(self) -> list[str]:
        return [name for name in self.names if name not in self.found]


def lookup(
    cur, user_id: int, names: list[str], params: str, inputs: str = "", local_day: bool = False, frame: bool = False
) -> Lookup | None:
    """The person's current stamp and their stored answers that are still true; None when
    the person does not exist. ``params`` names the answer (the request's parameters);
    ``inputs`` is whatever else it depends on that no version counts (the first day of a
    relative period); ``local_day``: the answer depends on the person's today too (it
    moves at their midnight). One statement: run it in ``database.single_statement()``
    to serve a stored answer in one round trip, and again inside the ``transaction()``
    that computes what is missing (``complete``)."""
    row = store_db.versions_and_stored(cur, user_id, names, params, frame=frame)
    if row is None:
        return None
    today = row["local_today"].isoformat() if local_day else ""
    stamp = f"{CODE_VERSION}.{row['data_version']}.{row['catalogue_version']}.{inputs}.{today}"
    found = {name: body for name, (kept_under, body) in row.pop("stored").items() if kept_under == stamp}
    return Lookup(user_id, params, stamp, list(names), found, row)


def complete(cur, found: Lookup, compute: Compute) -> dict[str, str]:
    """Every asked answer as JSON text: the stored ones, and the missing ones computed
    now (in the caller's transaction, after the lookup) and stored under the stamp."""
    answers = dict(found.found)
    if found.missing:
        fresh = compute(cur, found.missing)
        answers.update(store_db.store(cur, found.user_id, found.params, found.stamp, fresh))
    return {name: answers[name] for name in found.names}


def computed(
    cur, user_id: int, names: list[str], params: str, compute: Compute, **kwargs
) -> tuple[Lookup | None, dict[str, str]]:
    """In the caller's ``transaction()``: the stored answers, with what is missing computed
    and stored; returns the lookup (its stamp and state) and the answers (name -> JSON
    text). None for the lookup: no such user.

    One computation per change, however many ask at once: the first request to miss takes
    a lock of (person, parameters) and computes; the others wait for it and then read what
    it stored (a burst of views right after a change, 256 at a time, must not run the same
    aggregates 256 times over: that is what made the dashboard fall to 42 requests/s).
    """
    found = lookup(cur, user_id, names, params, **kwargs)
    if found is None or not found.missing:
        return found, complete(cur, found, compute) if found else {}
    store_db.lock_answer(cur, user_id, params, names)
    found = lookup(cur, user_id, names, params, **kwargs)  # what the lock's last holder stored
    if found is None:
        return None, {}
    return found, complete(cur, found, compute)


def json_ready(value):
    """``value`` as the store keeps it: dates and times as ISO text, the rest as JSON has it."""
    return json.loads(json.dumps(value, default=_iso))


def _iso(value) -> str:
    if isinstance(value, date):  # datetime too
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON: convert it before storing")


def json_object(members: dict[str, str]) -> str:
    """A JSON object from members that are JSON text already (nothing parsed again)."""
    return "{" + ", ".join(f"{json.dumps(name)}: {text}" for name, text in members.items()) + "}"


# -- precomputing after a change --------------------------------------------------
# Each warmer computes, in a transaction of its own, what a person will likely open next.
WARMERS: list[Callable[[object, int], None]] = []


def warmer(function: Callable[[object, int], None]) -> Callable[[object, int], None]:
    """Decorator: run ``function(cur, user_id)`` on every ``warm(user_id)``."""
    WARMERS.append(function)
    return function


def warm(user_id: int) -> None:
    """Precompute a person's likely next views after their data changed (call it after
    the commit). A failure is logged, never raised: the view computes what is missing."""
    for function in WARMERS:
        try:
            with transaction() as cur:
                long_running(cur)  # a writer's background work, not a page: the job bounds
                function(cur, user_id)
        except Exception:
            log.exception("precomputing %s for user %s failed; the next view computes it", function.__name__, user_id)
