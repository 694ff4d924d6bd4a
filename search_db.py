"""SQL for searching a person's own tracks. Connection-first (a cursor), never commits.

Full text first: ``websearch_to_tsquery('english', ...)`` against the weighted generated
``tracks.search_vector`` (name A, artist B, album C; GIN index), ranked by ``ts_rank``.
When that finds nothing (a typo, a half-typed word) the same statement keeps the tracks
that match the query with each word widened to the real words one edit away (looked up in
``search_word_variants``) and the last word to a prefix, so typos still find tracks,
ranked and highlighted.

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
# websearch syntax: "a phrase", -excluded, either OR other
_SEARCH_OPERATORS = re.compile(r'"|(?:^|\s)-\S|\sor\s', re.IGNORECASE)
HEADLINE_OPTIONS = f"StartSel={START_MARK}, StopSel={STOP_MARK}, HighlightAll=true"
MAX_QUERY_CHARS = 200  # longer queries are cut: nobody types more, and it bounds the work
PAGE_SIZE = 20

# The fallback. Each typed word (the first MAX_WIDENED_WORDS, three letters or more, not a
# number) also stands for the catalogue's words one edit away from it (a letter missing,
# extra, wrong, or two swapped), found through their shared deletion variants in
# search_word_variants (see schema_postgres.sql) and confirmed here: up to
# ALTERNATIVES_PER_WORD of them, the commonest slips first (a letter left out, two
# swapped, one wrong, one too many), since each alternative costs ranking time. The last
# word, as people type it, also matches as a prefix ("bohem" finds "Bohemian"). All words
# are required, each word's alternatives OR-ed, in a tsquery that to_tsquery('english', ...)
# stems like the index. Words are \w+ runs, so quoting them needs no escaping.
MAX_WIDENED_WORDS = 8
ALTERNATIVES_PER_WORD = 12
MIN_WIDENED_LENGTH = 3

# One round trip: which typed words full text ignores (stop words: never widened, or "the"
# would turn into a required "thee"), and the catalogue words sharing a variant with them.
STOP_WORDS_AND_NEIGHBOURS = """
SELECT 'stop', w FROM unnest(%(typed)s::text[]) AS w WHERE to_tsvector('english', w) = ''::tsvector
UNION ALL
SELECT DISTINCT 'near', word FROM search_word_variants WHERE variant = ANY (%(variants)s::text[])
"""
_WORD = re.compile(r"\w+")


def deletion_variants(word: str) -> set[str]:
    """The word and every string left by deleting one of its letters (as word_variants() in SQL)."""
    return {word, *(word[:i] + word[i + 1 :] for i in range(len(word)))} if len(word) > 1 else {word}


LEFT_OUT, SWAPPED, WRONG, EXTRA = range(4)  # how a typed word slipped from a real one


def slip(typed: str, real: str) -> int | None:
    """How ``typed`` is one edit away from ``real`` (LEFT_OUT, SWAPPED, WRONG, EXTRA), or
    None when it is not."""
    if len(real) == len(typed) + 1:
        return LEFT_OUT if typed in deletion_variants(real) else None
    if len(real) == len(typed) - 1:
        return EXTRA if real in deletion_variants(typed) else None
    if len(real) != len(typed):
        return None
    diffs = [i for i, (x, y) in enumerate(zip(typed, real, strict=True)) if x != y]
    if len(diffs) == 1:
        return WRONG
    if (
        len(diffs) == 2
        and diffs[1] == diffs[0] + 1
        and typed[diffs[0]] == real[diffs[1]]
        and typed[diffs[1]] == real[diffs[0]]
    ):
        return SWAPPED
    return None


def typed_words(q: str) -> list[str] | None:
    words = list(dict.fromkeys(_WORD.findall(q.lower())))
    return None if not words or _SEARCH_OPERATORS.search(q) else words


def prefix_tsquery(q: str) -> str | None:
    """``q``'s words as typed, the last one as a prefix: how the fallback tells a half-typed
    word ("bohem") from a misspelt one, so the page does not call a prefix a typo."""
    words = typed_words(q)
    return None if words is None else " & ".join([*(f"'{w}'" for w in words[:-1]), f"'{words[-1]}':*"])


def similar_words_tsquery(cur, q: str) -> str | None:
    """``q`` with every word widened to the real words one edit away (and the last to a
    prefix), as to_tsquery text; None when it has no words, or uses search operators: a
    person who writes a phrase or excludes a word means exactly that."""
    words = typed_words(q)
    if words is None:
        return None
    widened = [n < MAX_WIDENED_WORDS and len(w) >= MIN_WIDENED_LENGTH and not w.isdigit() for n, w in enumerate(words)]
    variants = set().union(*(deletion_variants(w) for w, widen in zip(words, widened, strict=True) if widen))
    cur.execute(STOP_WORDS_AND_NEIGHBOURS, {"typed": words, "variants": sorted(variants)})
    found = cur.fetchall()
    stop_words = {word for kind, word in found if kind == "stop"}
    candidates = sorted(word for kind, word in found if kind == "near" and _WORD.fullmatch(word))
    widened = [widen and word not in stop_words for word, widen in zip(words, widened, strict=True)]
    groups = []
    for n, (word, widen) in enumerate(zip(words, widened, strict=True)):
        options = [f"'{word}'"]
        if widen:
            slips = {c: slip(word, c) for c in candidates if c != word}
            near = sorted((kind, c) for c, kind in slips.items() if kind is not None)
            options += [f"'{c}'" for _, c in near[:ALTERNATIVES_PER_WORD]]
            if n == len(words) - 1:
                options.append(f"'{word}':*")
        groups.append("(" + " | ".join(options) + ")")
    return " & ".join(groups)


# One statement over the person's tracks that match either the query as typed or its
# similar-words version: when any match as typed, only those are kept ("full_text"),
# else the others are ("prefix" when each is only the last word half typed, else
# "similar"). Both tsqueries reach the planner as constants, so for
# a big library it reaches the few matches through the GIN index (tests/test_search.py
# checks the plan). The last SELECT always returns one row, so a page past the end still
# learns the total and the method.
SEARCH = f"""
WITH mine AS MATERIALIZED (
    SELECT DISTINCT track_id FROM ({USER_TRACK_IDS}) AS ids
),
hits AS (
    SELECT t.spotify_id, t.name, t.artist_name, t.album_name, t.release_date, t.search_vector,
           t.search_vector @@ websearch_to_tsquery('english', %(q)s) AS as_typed,
           coalesce(t.search_vector @@ to_tsquery('english', %(prefix)s), false) AS as_prefix
    FROM tracks t
    WHERE (t.search_vector @@ websearch_to_tsquery('english', %(q)s)
           OR t.search_vector @@ to_tsquery('english', %(similar)s))
      AND t.spotify_id IN (SELECT track_id FROM mine)
),
kept AS (
    SELECT spotify_id, name, artist_name, album_name, release_date, as_typed, as_prefix,
           CASE WHEN as_typed THEN ts_rank(search_vector, websearch_to_tsquery('english', %(q)s))
                ELSE ts_rank(search_vector, to_tsquery('english', %(similar)s)) END AS score,
           -- a misspelt artist ("queem"): when the corrected words name the artist on their
           -- own, that artist's tracks come before names that merely contain the word
           NOT as_typed AND coalesce(to_tsvector('english', coalesce(artist_name, ''))
                                     @@ to_tsquery('english', %(similar)s), false) AS names_artist
    FROM hits
    WHERE as_typed OR NOT EXISTS (SELECT FROM hits WHERE as_typed)
),
page AS (
    SELECT * FROM kept
    ORDER BY names_artist DESC, score DESC, name, spotify_id
    LIMIT %(limit)s OFFSET %(offset)s
),
marked AS (
    SELECT page.*,
           CASE WHEN as_typed THEN websearch_to_tsquery('english', %(q)s)
                ELSE to_tsquery('english', %(similar)s) END AS marks
    FROM page
)
SELECT totals.method, totals.total,
       m.spotify_id, m.name, m.artist_name, m.album_name, m.release_date, m.score,
       ts_headline('english', m.name, m.marks, %(options)s) AS name_hl,
       ts_headline('english', coalesce(m.artist_name, ''), m.marks, %(options)s) AS artist_hl,
       ts_headline('english', coalesce(m.album_name, ''), m.marks, %(options)s) AS album_hl
FROM (SELECT CASE WHEN bool_or(as_typed) THEN 'full_text' WHEN bool_and(as_prefix) THEN 'prefix'
                  WHEN count(*) > 0 THEN 'similar' END AS method,
             count(*) AS total
      FROM kept) AS totals
LEFT JOIN marked AS m ON true
ORDER BY m.names_artist DESC, m.score DESC, m.name, m.spotify_id
"""


def clean_query(raw: str | None) -> tuple[str, bool]:
    """The query as searched (NULs dropped, whitespace collapsed, cut to MAX_QUERY_CHARS)
    and whether it was cut."""
    text = " ".join((raw or "").replace("\x00", " ").replace(START_MARK, " ").replace(STOP_MARK, " ").split())
    return text[:MAX_QUERY_CHARS], len(text) > MAX_QUERY_CHARS


def search_tracks(cur, user_id: int, q: str, page: int = 1, page_size: int = PAGE_SIZE) -> dict:
    """One page of the person's tracks matching ``q`` (already cleaned, non-empty).

    Returns {"method": "full_text" | "prefix" | "similar" | None, "total", "rows"}; rows carry
    ``name_hl``/``artist_hl``/``album_hl`` with sentinel marks around the matched words.
    A page past the end has no rows but the real total.
    """
    cur.execute(
        SEARCH,
        {
            "q": q,
            "similar": similar_words_tsquery(cur, q),
            "prefix": prefix_tsquery(q),
            "user_id": user_id,
            "limit": page_size,
            "offset": (page - 1) * page_size,
            "options": HEADLINE_OPTIONS,
        },
    )
    rows = fetch_all(cur)
    totals = rows[0]
    return {
        "method": totals["method"],
        "total": totals["total"],
        "rows": [
            {k: v for k, v in row.items() if k not in ("method", "total")}
            for row in rows
            if row["spotify_id"] is not None
        ],
    }


_MARKED = re.compile(re.escape(START_MARK) + "(.*?)" + re.escape(STOP_MARK), re.S)


def highlight(text: str | None) -> Markup:
    """Escape everything, then turn sentinel pairs into <mark>; stray sentinels vanish."""
    escaped = str(escape(text or ""))
    marked = _MARKED.sub(r"<mark>\1</mark>", escaped)
    # Safe: every character of the text was escaped above; only our <mark> tags remain.
    return Markup(marked.replace(START_MARK, "").replace(STOP_MARK, ""))  # nosec B704
