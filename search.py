"""Search the person's own tracks: full text first, a typo-tolerant fallback second."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

import search_db
from auth import login_required, require_user_id
from database import transaction

bp = Blueprint("search", __name__)

MAX_PAGE = 500  # deep enough for any real library; bounds OFFSET work


def page_number(raw: str | None) -> int:
    try:
        return min(max(int(raw or 1), 1), MAX_PAGE)
    except ValueError:
        return 1


@bp.get("/search")
@login_required
def index():
    q, was_cut = search_db.clean_query(request.args.get("q"))
    page = page_number(request.args.get("page"))
    result = None
    if q:
        with transaction() as cur:
            result = search_db.search_tracks(cur, require_user_id(), q, page)
    pages = -(-result["total"] // search_db.PAGE_SIZE) if result else 0
    if pages and page > pages:  # an old or edited link: the last page, not an empty one
        return redirect(url_for("search.index", q=q, page=pages))
    return render_template(
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
