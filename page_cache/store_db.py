"""SQL for the stored form of a person's charts and pages (schema version 11).
Connection-first (a cursor), never commits."""

from __future__ import annotations

from psycopg2.extras import Json

from database import fetch_all

# The person's and the catalogue's numbers with the stored answers for the asked charts,
# in one statement: a row per stored chart, or one row with chart NULL when none is stored;
# no row at all when there is no such user. It also carries what every view checks first
# (the session version a cookie must match, the person's local today), so a page served
# from the store costs this one round trip (database.single_statement); with ``frame``
# also the users row and the latest sync, everything the dashboard's frame shows.
VERSIONS_AND_STORED = """
SELECT u.session_version, u.data_version, cv.version AS catalogue_version,
       (now() AT TIME ZONE coalesce(u.time_zone, 'UTC'))::date AS local_today,
       c.chart, c.stamp, c.body::text AS body{frame_columns}
FROM users u
CROSS JOIN catalogue_version cv
LEFT JOIN chart_cache c ON c.user_id = u.id AND c.params = %(params)s AND c.chart = ANY (%(charts)s){frame_joins}
WHERE u.id = %(user_id)s
"""
# users_db.get_user's and sync_runs_db.latest_run's columns, prefixed "user." and "run."
FRAME_COLUMNS = """,
       u.id AS "user.id", u.spotify_id AS "user.spotify_id", u.display_name AS "user.display_name",
       u.last_synced_at AS "user.last_synced_at", u.created_at AS "user.created_at",
       u.needs_relogin_since AS "user.needs_relogin_since", t.expires_at AS "user.token_expires_at",
       t.refresh_token_expires_at AS "user.refresh_token_expires_at", t.user_id IS NOT NULL AS "user.has_token",
       r.id AS "run.id", r.status AS "run.status", r.stage AS "run.stage", r.summary AS "run.summary",
       r.error AS "run.error", r.started_at AS "run.started_at", r.finished_at AS "run.finished_at"
"""
FRAME_JOINS = """
LEFT JOIN spotify_tokens t ON t.user_id = u.id
LEFT JOIN LATERAL (
    SELECT * FROM sync_runs s WHERE s.user_id = u.id ORDER BY s.started_at DESC, s.id DESC LIMIT 1
) r ON true"""
PLAIN = VERSIONS_AND_STORED.format(frame_columns="", frame_joins="")
WITH_FRAME = VERSIONS_AND_STORED.format(frame_columns=FRAME_COLUMNS, frame_joins=FRAME_JOINS)


def versions_and_stored(cur, user_id: int, charts: list[str], params: str, frame: bool = False) -> dict | None:
    """``session_version``, ``data_version``, ``catalogue_version``, ``local_today`` and
    ``stored`` (chart name -> (stamp, body as JSON text)) for the charts kept under these
    parameters; with ``frame`` also ``user`` (as users_db.get_user) and ``run`` (as
    sync_runs_db.latest_run, None before the first sync). None: no such user."""
    cur.execute(WITH_FRAME if frame else PLAIN, {"user_id": user_id, "charts": charts, "params": params})
    names = [column.name for column in cur.description]
    rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    if not rows:
        return None
    first = rows[0]
    answer = {key: first[key] for key in ("session_version", "data_version", "catalogue_version", "local_today")}
    answer["stored"] = {r["chart"]: (r["stamp"], r["body"]) for r in rows if r["chart"] is not None}
    if frame:
        answer["user"] = {k.removeprefix("user."): v for k, v in first.items() if k.startswith("user.")}
        run = {k.removeprefix("run."): v for k, v in first.items() if k.startswith("run.")}
        answer["run"] = run if run["id"] is not None else None
    return answer


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


def lock_answer(cur, user_id: int, params: str, charts: list[str]) -> None:
    """Until commit, this transaction alone computes these answers of the person: the
    others wait (up to the statement bound, not the short lock bound: the holder is running
    the very aggregates they would run) and then read its result."""
    cur.execute("SELECT current_setting('lock_timeout') AS lock_timeout")
    (previous,) = cur.fetchone()
    cur.execute(
        "SELECT set_config('lock_timeout', current_setting('statement_timeout'), true), "
        "pg_advisory_xact_lock(%s, hashtext(%s))",
        (ANSWER_LOCK, f"{user_id}/{params}/{','.join(sorted(charts))}"),
    )
    cur.execute("SELECT set_config('lock_timeout', %s, true)", (previous,))


ANSWER_LOCK = 15_011_500  # the advisory lock class of lock_answer (any constant of our own)


def stored_answers(cur, user_id: int) -> list[dict]:
    """Every answer kept for a person, with its key and stamp."""
    cur.execute(
        "SELECT chart, params, stamp, body FROM chart_cache WHERE user_id = %s ORDER BY chart, params", (user_id,)
    )
    return fetch_all(cur)
