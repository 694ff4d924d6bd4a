"""SQL for the stored form of a person's charts and pages (schema version 11).
Connection-first (a cursor), never commits."""

from __future__ import annotations

from psycopg2.extras import Json

from database import fetch_all

# The person's and the catalogue's numbers with the stored answers for the asked charts,
# in one round trip: a row per stored chart, or one row with chart NULL when none is
# stored; no row at all when there is no such user.
VERSIONS_AND_STORED = """
SELECT u.data_version, cv.version AS catalogue_version, c.chart, c.stamp, c.body::text AS body
FROM users u
CROSS JOIN catalogue_version cv
LEFT JOIN chart_cache c ON c.user_id = u.id AND c.params = %(params)s AND c.chart = ANY (%(charts)s)
WHERE u.id = %(user_id)s
"""


def versions_and_stored(cur, user_id: int, charts: list[str], params: str) -> dict | None:
    """``data_version``, ``catalogue_version`` and ``stored`` (chart name -> (stamp, body
    as JSON text)) for the charts kept under these parameters; None: no such user."""
    cur.execute(VERSIONS_AND_STORED, {"user_id": user_id, "charts": charts, "params": params})
    rows = cur.fetchall()
    if not rows:
        return None
    return {
        "data_version": rows[0][0],
        "catalogue_version": rows[0][1],
        "stored": {chart: (stamp, body) for _, _, chart, stamp, body in rows if chart is not None},
    }


def store(cur, user_id: int, params: str, stamp: str, bodies: dict[str, dict]) -> dict[str, str]:
    """Keep freshly computed answers (chart name -> JSON-ready dict), replacing whatever
    was kept for the same (user, chart, parameters). Returns them as the JSON text a
    later read gets, so the first answer and the stored ones are the same bytes."""
    cur.execute(
        """
        INSERT INTO chart_cache (user_id, chart, params, stamp, body)
        SELECT %(user_id)s, b.key, %(params)s, %(stamp)s, b.value FROM jsonb_each(%(bodies)s) AS b
        ON CONFLICT (user_id, chart, params) DO UPDATE
            SET stamp = EXCLUDED.stamp, body = EXCLUDED.body, computed_at = now()
        RETURNING chart, body::text
    """,
        {"user_id": user_id, "params": params, "stamp": stamp, "bodies": Json(bodies)},
    )
    return dict(cur.fetchall())


def stored_answers(cur, user_id: int) -> list[dict]:
    """Every answer kept for a person, with its key and stamp."""
    cur.execute(
        "SELECT chart, params, stamp, body FROM chart_cache WHERE user_id = %s ORDER BY chart, params", (user_id,)
    )
    return fetch_all(cur)
