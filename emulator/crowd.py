"""Simulated listeners in bulk, for benchmarks: ``crowd-1`` ... ``crowd-N``.

A crowd listener has the taste of one of the demo listeners (``crowd-N`` listens like
the (N mod 5)-th), so its top tracks and daily sessions are that listener's and cost
nothing to compute; its live plays (emulator/live.py) are its own, at an offset of its
own within the play interval. Its library is the demo listener's most recent
``LIBRARY_SIZE`` saves, so a sync reads two pages of it, not a hundred.

Crowd listeners never log in through /authorize: ``POST /_emulator/crowd {"count": N}``
(or ``EmulatorState.add_crowd``) makes them and hands back a token pair for each, which a
benchmark stores straight into the app's database.
"""

from __future__ import annotations

from datetime import datetime

from .listeners import DEMO_USERS, saved_tracks

PREFIX = "crowd-"
LIBRARY_SIZE = 100
MAX_COUNT = 1_000_000
_TASTES = tuple(DEMO_USERS)


def listener_id(number: int) -> str:
    return f"{PREFIX}{number}"


def number_of(user_id: str) -> int | None:
    """N for ``crowd-N`` (N from 1), None for anyone else."""
    digits = user_id[len(PREFIX) :] if user_id.startswith(PREFIX) else ""
    if not digits.isdigit() or digits.startswith("0"):
        return None
    return int(digits) if int(digits) <= MAX_COUNT else None


def taste_of(user_id: str) -> str:
    """The demo listener whose taste this listener has (a demo listener: itself)."""
    number = number_of(user_id)
    return user_id if number is None else _TASTES[number % len(_TASTES)]


def display_name(user_id: str) -> str:
    if number_of(user_id) is not None:
        return f"Crowd listener {number_of(user_id)}"
    return DEMO_USERS[user_id].display_name


def library(user_id: str, as_of: datetime) -> list:
    """(track_id, added_at) of the listener's library at ``as_of``, newest first."""
    saves = saved_tracks(taste_of(user_id), as_of)
    return saves[:LIBRARY_SIZE] if number_of(user_id) is not None else saves
