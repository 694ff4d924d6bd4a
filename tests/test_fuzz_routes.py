"""Bad input, generated: Hypothesis throws arbitrary text at every route's parameters.

Whatever comes in — Unicode, NUL, quotes, SQL, 10 kB strings, numbers too big for any
column — the answer is a page or JSON with a 2xx/3xx/4xx status, never a 500 and never a
traceback; and nothing is written (these are all GET requests, checked by counting rows).
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import log_in_as

# Text a person (or an attacker) could put in a URL: any Unicode but surrogates, plus the
# classics that break naive code.
NASTY = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300),
    st.sampled_from(
        [
            "",
            " ",
            "0",
            "-1",
            "1e309",
            "99999999999999999999",
            "NaN",
            "null",
            "'",
            '"',
            "\\",
            "' OR 1=1 --",
            "%00",
            "\x00",
            "../../etc/passwd",
            "<script>alert(1)</script>",
            "x" * 10_000,
            "🎵" * 500,
            "2020-13-45",
            "1899",
            "2999",
            "1990s",
            "10s",
            "tracks",
        ]
    ),
)
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Each route with the parameters it reads: (path template, query parameter names).
ROUTES = [
    ("/search", ("q", "page")),
    ("/api/charts", ("time_range", "period")),
    ("/dashboard", ("time_range", "period")),
    ("/time-machine", ("year", "decade")),
    ("/playlists/forgotten-gems", ()),
    ("/playlists/obsessed", ()),
    ("/playlists/mood", ()),
    ("/api/charts/{value}", ("time_range", "period")),
    ("/tracks/{value}", ()),
    ("/artists/{value}", ()),
    ("/artists/by-name/{value}", ()),
    ("/albums/{value}", ()),
    ("/playlists/{value}", ()),
]

ROW_COUNTS = """SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tracks), (SELECT count(*) FROM snapshots),
                       (SELECT count(*) FROM playlists), (SELECT count(*) FROM playlist_tracks),
                       (SELECT count(*) FROM saved_tracks)"""


@pytest.fixture
def signed_in(client, conn, people):
    log_in_as(client, people["ava"])
    with conn.cursor() as cur:
        cur.execute(ROW_COUNTS)
        before = cur.fetchone()
    yield client
    with conn.cursor() as cur:
        cur.execute(ROW_COUNTS)
        assert cur.fetchone() == before  # nothing stored by any of it


def assert_answered_cleanly(response, path):
    body = response.get_data(as_text=True)
    assert response.status_code < 500, f"{path} answered {response.status_code}"
    assert "Traceback" not in body and "psycopg2" not in body, f"{path} leaked internals"


@pytest.mark.parametrize("template, params", ROUTES, ids=[r[0] for r in ROUTES])
@FUZZ
@given(value=NASTY, first=NASTY, second=NASTY)
def test_no_parameter_value_makes_a_route_fail(signed_in, template, params, value, first, second):
    path = template.format(value=value.replace("/", "%2F").replace("?", "%3F").replace("#", "%23"))
    query = dict(zip(params, (first, second), strict=False))  # a route takes at most two
    response = signed_in.get(path, query_string=query)
    assert_answered_cleanly(response, path)


@FUZZ
@given(year=NASTY, decade=NASTY)
def test_a_bad_era_is_a_400_with_the_message_on_the_form(signed_in, year, decade):
    response = signed_in.get("/time-machine", query_string={"year": year, "decade": decade})
    assert_answered_cleanly(response, "/time-machine")
    assert response.status_code in (200, 400)
    if response.status_code == 400:  # the reason is shown on the form itself, next to the fields
        assert '<p class="form-error" role="alert" id="era-error">' in response.get_data(as_text=True)
