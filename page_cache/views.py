"""A signed-in view served from the store in one round trip (issue 15).

The pattern every stored page follows (dashboard, Year in review, listening, track page,
search):

1. ``@auth.checks_own_session`` instead of ``@login_required``;
2. ``found = signed_in(names, params, ...)``: ONE statement (``database.single_statement``)
   reads the session version the cookie must match, the person's versions and the stored
   answers; a dead session is answered here like ``login_required`` would;
3. the page's tag from ``found.stamp`` (``conditional.page_etag``): a 304, or the page
   this process rendered for that tag (``conditional.rendered``), costs nothing more;
4. ``answers = answers_of(found, compute)``: the stored answers as they are, or, when one
   is missing, a transaction that looks again, takes the answer's lock and computes
   (``store.computed``); the view then rebuilds its tag from the returned lookup.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import abort

import auth
from database import single_statement, transaction
from page_cache import store


def signed_in(names: list[str], params: str, **kwargs) -> store.Lookup:
    """The signed-in person's stored answers and state, in one statement that also checks
    their session (a dead one: the redirect or 401 of ``login_required``)."""
    user_id = auth.claimed_user_id()
    found = None
    if user_id is not None:
        with single_statement() as cur:
            found = store.lookup(cur, user_id, names, params, **kwargs)
    if user_id is None or not auth.confirm_session(user_id, found.state["session_version"] if found else None):
        abort(auth.refuse_dead_session())
    if found is None:  # unreachable: confirm_session refuses a missing account
        abort(auth.refuse_dead_session())
    return found


def answers_of(
    found: store.Lookup, compute: store.Compute, prepare: Callable[[object], object] | None = None, **kwargs
) -> tuple[store.Lookup, dict[str, str]]:
    """Every answer ``found`` asked for (name -> JSON text) and the lookup they are true
    under: as stored, or computed now in a transaction of their own. ``prepare(cur)`` runs
    in that transaction after the versions are read and before computing (the listening
    pages bring the person's rollups up to date there). ``kwargs``: as for the lookup."""
    if not found.missing:
        return found, {name: found.found[name] for name in found.names}

    def prepared(cur, missing: list[str]) -> dict[str, dict]:
        if prepare is not None:
            prepare(cur)
        return compute(cur, missing)

    with transaction() as cur:
        fresh, answers = store.computed(cur, found.user_id, found.names, found.params, prepared, **kwargs)
    if fresh is None:  # the account was deleted since the first statement
        abort(auth.refuse_dead_session())
    return fresh, answers
