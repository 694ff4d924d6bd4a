"""Search the person's own tracks: full text first, a typo-tolerant fallback second."""

from __future__ import annotations

from flask import Blueprint, Response, redirect, render_template, request, url_for

import search_db
from auth import checks_own_session
from database import transaction
from page_cache import conditional
from page_cache import views as page_views

bp = Blueprint("search", __name__)

MAX_PAGE = 500  # deep enough for any real library; bounds OFFSET work


def page_number(raw: str | None) -> int:
    try:
        return min(max(int(raw or 1), 1), MAX_PAGE)
    except ValueError:
        return 1


# What the version-keyed store can serve (issue 15): a result found as typed, as a prefix,
# or not at all depends on the person's tracks and the catalogue's text only, which the
# stamp counts; a "similar words" result picks its words from the whole catalogue's
# dictionary, which grows with anybody's sync and no version counts, so it is searched
# every time. Kept as rendered pages per tag (conditional.rendered), not in chart_cache:
# queries are as many as people can type, and a table row per query would only grow.
VERSIONED_METHODS = {"full_text", "prefix", None}


@bp.get("/search")
@checks_own_session
def index():
    q, was_cut = search_db.clean_query(request.args.get("q"))
    page = page_number(request.args.get("page"))
    found = page_views.signed_in([], "")  # one statement: the session and the versions
    tag = conditional.page_etag("search", found.user_id, q, page, was_cut, found.stamp) if q else None
    if (answered := conditional.answered_without_work(tag)) is not None:
        return answered
    result = None
    if q:
        with transaction() as cur:
            result = search_db.search_tracks(cur, found.user_id, q, page)
    pages = -(-result["total"] // search_db.PAGE_SIZE) if result else 0
    if pages and page > pages:  # an old or edited link: the last page, not an empty one
        return redirect(url_for("search.index", q=q, page=pages))
    html = render_template(
        "search/index.html",
        q=q,
        was_cut=was_cut,
        page=page,
        pages=pages,
        result=result,
        page_size=search_db.PAGE_SIZE,
        max_chars=search_db.MAX_QUERY_CHARS,
        highlight=search_db.highlight,
        half_typed=(search_db.typed_words(q) or [""])[-1],
    )
    if tag and result is not None and result["method"] in VERSIONED_METHODS:
        return conditional.revalidate(Response(conditional.keep_rendered(tag, html)), tag)
    return Response(html)
