"""HTTP caching of personal responses: nothing stored by default, revalidation by choice.

THE mechanism for every view (hardening and everyone else, use this rather than a rule of
your own):

- **Default**: a response to a signed-in person gets ``Cache-Control: no-store`` (no
  browser or proxy keeps a copy of anything personal) — unless the view set
  ``Cache-Control`` itself, which always wins. Static files keep Flask's own
  ``no-cache`` + ``ETag``.
- **Opt in to revalidation** when a view has a cheap validator (a version that moves when
  the answer changes, see store.py): build the tag with ``etag(...)`` (``page_etag(...)``
  for HTML, which also counts the CSRF token and flash messages) from everything the
  answer depends on, return ``not_modified(tag)`` when it is not None
  (before doing the expensive part), else ``revalidate(response, tag)``, which sets the
  ``ETag`` and ``Cache-Control: private, no-cache``: only the person's browser may keep
  it, and it must ask every time (a 304 costs a version lookup, not a page). An HTML
  page whose tag is known can also be kept rendered: ``rendered(tag)`` /
  ``keep_rendered(tag, html)``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

from flask import Response, current_app, request, session
from flask_wtf.csrf import generate_csrf

REVALIDATE = "private, no-cache"
NO_STORE = "no-store"


def etag(*parts: object) -> str:
    """An opaque tag of everything an answer depends on (user, page, parameters, stamp)."""
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:32]


def page_etag(*parts: object) -> str | None:
    """The tag of an HTML page built from ``parts``, or None (no ETag, no 304) while a flash
    message waits: it is shown once.

    Every page embeds a CSRF token (the log-out form) signed with the time it was made and
    valid WTF_CSRF_TIME_LIMIT seconds, for this session's CSRF secret: the tag changes with
    the secret and every half of that limit, so a page kept by the browser never posts an
    expired token.
    """
    if session.get("_flashes"):
        return None
    limit = current_app.config.get("WTF_CSRF_TIME_LIMIT", 3600)
    token_period = int(time.time() // (limit / 2)) if limit else 0
    generate_csrf()  # the session's CSRF secret exists from now on (a first visit makes it)
    csrf_secret = hashlib.sha256(str(session.get("csrf_token")).encode()).hexdigest()[:12]
    return etag("page", *parts, token_period, csrf_secret)


def not_modified(tag: str) -> Response | None:
    """A 304 for a request whose If-None-Match names ``tag`` (weak comparison, as RFC 9110
    asks for If-None-Match), else None: then build the answer."""
    if not request.if_none_match.contains_weak(tag):
        return None
    response = Response(status=304)
    return revalidate(response, tag)


def revalidate(response: Response, tag: str) -> Response:
    """Let the person's browser keep ``response`` and revalidate it with ``tag`` each time."""
    response.set_etag(tag)
    response.headers["Cache-Control"] = REVALIDATE
    return response


# -- pages rendered once per tag ------------------------------------------------------
# A tag names everything a page shows (that is what makes a 304 safe), so the page rendered
# for a tag can be sent again as it is to the next request that computes the same tag: a
# browser without the page in its cache (another device, wrk) costs the tag's queries, not
# a template rendering. Per process, the most recent RENDERED_PAGES pages.
RENDERED_PAGES = 256
_rendered: OrderedDict[str, str] = OrderedDict()
_rendered_lock = threading.Lock()


def rendered(tag: str) -> str | None:
    """The page kept for ``tag``, if this process rendered it lately."""
    with _rendered_lock:
        html = _rendered.get(tag)
        if html is not None:
            _rendered.move_to_end(tag)
        return html


def answered_without_work(tag: str | None) -> Response | None:
    """For a page under ``tag``: a 304 when the browser holds it, else the page this process
    rendered for the tag lately; None when there is no tag or the page must be built."""
    if not tag:
        return None
    if unchanged := not_modified(tag):
        return unchanged
    html = rendered(tag)
    return None if html is None else revalidate(Response(html), tag)


def keep_rendered(tag: str, html: str) -> str:
    with _rendered_lock:
        _rendered[tag] = html
        _rendered.move_to_end(tag)
        while len(_rendered) > RENDERED_PAGES:
            _rendered.popitem(last=False)
    return html


def default_no_store(response: Response) -> Response:
    """after_request: a signed-in person's response is never stored, unless its view said
    otherwise by setting Cache-Control."""
    if "Cache-Control" not in response.headers and request.endpoint != "static" and session.get("user_id"):
        response.headers["Cache-Control"] = NO_STORE
    return response


def init_app(app) -> None:
    app.after_request(default_no_store)
