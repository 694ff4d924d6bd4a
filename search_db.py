"""SQL for searching a person's own tracks. Connection-first (a cursor), never commits.

Full text first: ``websearch_to_tsquery('english', ...)`` against the weighted generated
``tracks.search_vector`` (name A, artist B, album C; GIN index), ranked by ``ts_rank``.
When that finds nothing (a typo, a half-typed word, only stop words) a trigram fallback
ranks names and artists by ``word_similarity`` (GIN trigram indexes).

Highlights come from ``ts_headline`` with private-use sentinels instead of HTML tags: the
template escapes the whole text and only then turns the sentinels into ``<mark>``, so a
track called ``<script>`` stays text.
"""
from __future__ import annotations

import re

from markupsafe import Markup, escape

from database import fetch_all
from tracks_db import USER_TRACK_IDS  # the person's tracks: snapshots, library, plays

START_MARK, STOP_MARK = "\ue000", "\ue001"
HEADLINE_OPTIONS = f"StartSel={START_MARK}, StopSel={STOP_MARK}, HighlightAll=true"
MAX_QUERY_CHARS = 200   # longer queries are cut: nobody types more, and it bounds the work
PAGE_SIZE = 20

# The tsquery is written inline (not in a CTE) so the planner sees a constant it can use
# as the GIN index condition.
FULL_TEXT_SEARCH = f"""
WITH hits AS (
    SELECT t.spotify_id, t.name, t.artist_name, t.album_name, t.release_date,
           ts_rank(t.search_vector, websearch_to_tsquery('english', %(q)s)) AS score
    FROM tracks t
    WHERE t.search_vector @@ websearch_to_tsquery('english', %(q)s)
      AND t.spotify_id IN ({USER_TRACK_IDS})
),
page AS (
    SELECT *, count(*) OVER () AS total FROM hits
    ORDER BY score DESC, name, spotify_id
    LIMIT %(limit)s OFFSET %(offset)s
)
SELECT spotify_id, name, artist_name, album_name, release_date, score, total,
       ts_headline('english', name, websearch_to_tsquery('english', %(q)s), %(options)s) AS name_hl,
       ts_headline('english', coalesce(artist_name, ''), websearch_to_tsquery('english', %(q)s),
                   %(options)s) AS artist_hl,
       ts_headline('english', coalesce(album_name, ''), websearch_to_tsquery('english', %(q)s),
                   %(options)s) AS album_hl
FROM page
ORDER BY score DESC, name, spotify_id
"""

# word_similarity: how well the typed text matches some run of words in the name, so
# "dancng" finds "Dancing Queen" and "abb" finds "ABBA". `<%` uses the trigram indexes.
TRIGRAM_SEARCH = f"""
WITH hits AS (
    SELECT t.spotify_id, t.name, t.artist_name, t.album_name, t.release_date,
           greatest(word_similarity(%(q)s, t.name),
                    word_similarity(%(q)s, coalesce(t.artist_name, ''))) AS score
    FROM tracks t
    WHERE (%(q)s <%% t.name OR %(q)s <%% t.artist_name)
      AND t.spotify_id IN ({USER_TRACK_IDS})
)
SELECT spotify_id, name, artist_name, album_name, release_date, score,
       count(*) OVER () AS total
FROM hits
ORDER BY score DESC, name, spotify_id
LIMIT %(limit)s OFFSET %(offset)s
"""


def clean_query(raw: str | None) -> tuple[str, bool]:
    """The query as searched (NULs dropped, whitespace collapsed, cut to MAX_QUERY_CHARS)
    and whether it was cut."""
    text = " ".join((raw or "").replace("\x00", " ").replace(START_MARK, " ").replace(STOP_MARK, " ").split())
    return text[:MAX_QUERY_CHARS], len(text) > MAX_QUERY_CHARS


def search_tracks(cur, user_id: int, q: str, page: int = 1, page_size: int = PAGE_SIZE) -> dict:
    """One page of the person's tracks matching ``q`` (already cleaned, non-empty).

    Returns {"method": "full_text" | "similar" | None, "total", "rows"}; rows carry
    ``name_hl``/``artist_hl``/``album_hl`` with sentinel marks (full text only).
    """
    params = {"q": q, "user_id": user_id, "limit": page_size, "offset": (page - 1) * page_size,
              "options": HEADLINE_OPTIONS}
    cur.execute(FULL_TEXT_SEARCH, params)
    rows = fetch_all(cur)
    if rows:
        return {"method": "full_text", "total": rows[0]["total"], "rows": rows}
    if page > 1:  # past the last page: say so, rather than switch methods mid-way
        total = count_full_text(cur, user_id, q)
        if total:
            return {"method": "full_text", "total": total, "rows": []}
    cur.execute(TRIGRAM_SEARCH, params)
    rows = fetch_all(cur)
    for row in rows:
        row["name_hl"], row["artist_hl"], row["album_hl"] = row["name"], row["artist_name"], row["album_name"]
    if rows:
        return {"method": "similar", "total": rows[0]["total"], "rows": rows}
    return {"method": None, "total": 0, "rows": []}


def count_full_text(cur, user_id: int, q: str) -> int:
    cur.execute(f"""
        SELECT count(*) FROM tracks t
        WHERE t.search_vector @@ websearch_to_tsquery('english', %(q)s)
          AND t.spotify_id IN ({USER_TRACK_IDS})
    """, {"q": q, "user_id": user_id})
    return cur.fetchone()[0]


_MARKED = re.compile(re.escape(START_MARK) + "(.*?)" + re.escape(STOP_MARK), re.S)


def highlight(text: str | None) -> Markup:
    """Escape everything, then turn sentinel pairs into <mark>; stray sentinels vanish."""
    escaped = str(escape(text or ""))
    marked = _MARKED.sub(r"<mark>\1</mark>", escaped)
    # Safe: every character of the text was escaped above; only our <mark> tags remain.
    return Markup(marked.replace(START_MARK, "").replace(STOP_MARK, ""))  # nosec B704
