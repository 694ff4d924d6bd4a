"""The repair rules for legacy values, one by one (no database needed)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from migration.cleaning_rules import (
    Invalid,
    RowIssues,
    canonical,
    clean_day,
    clean_int,
    clean_json_object,
    clean_release_date,
    clean_spotify_id,
    clean_text,
    clean_timestamp,
    clean_timestamp_text,
)

UTC = UTC


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2021-03-04 05:06:07", datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),  # naive = UTC
        ("2021-03-04T05:06:07Z", datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2099-12-31T23:59:59Z", datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ("2021-03-04T07:06:07+02:00", datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),
        ("2021-03-04T05:06:07.250000", datetime(2021, 3, 4, 5, 6, 7, 250000, tzinfo=UTC)),
        ("2021-03-04 07:06+02:00", datetime(2021, 3, 4, 5, 6, tzinfo=UTC)),
        ("2021-03-04 07:06+02", datetime(2021, 3, 4, 5, 6, tzinfo=UTC)),  # 19 characters
        (1614834367, datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),  # epoch seconds
        ("1614834367", datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),
        (1614834367000, datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),  # epoch ms
        ("", None),
        (None, None),
    ],
)
def test_timestamps(value, expected):
    assert clean_timestamp(value, "t", RowIssues()) == expected
    # the text form the cleaners stage is exactly what the checksum makes of the datetime
    text = clean_timestamp_text(value, "t", RowIssues())
    assert text == (None if expected is None else canonical(expected))


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2021-13-01 00:00:00",
        "1969-12-31 23:59:59",
        "2100-01-01 00:00:00",
        "2021-02-30T00:00:00Z",
        "2021-02-01T24:00:00Z",
        "1800-01-01",
        float("nan"),
        10**20,
        "2021",
        2021,
    ],
)
def test_impossible_timestamps(value):
    with pytest.raises(Invalid):
        clean_timestamp(value, "t", RowIssues())
    with pytest.raises(Invalid):
        clean_timestamp_text(value, "t", RowIssues())


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2020", (date(2020, 1, 1), "year")),
        ("2020-03", (date(2020, 3, 1), "month")),
        ("2020-03-15", (date(2020, 3, 15), "day")),
        (None, (None, None)),
        ("", (None, None)),
    ],
)
def test_release_dates(value, expected):
    assert clean_release_date(value, "d", RowIssues()) == expected


@pytest.mark.parametrize("value", ["0000", "2020-02-30", "2020-13", "March 2020", "2020-03-15T00:00"])
def test_impossible_release_dates(value):
    with pytest.raises(Invalid):
        clean_release_date(value, "d", RowIssues())


def test_days():
    issues = RowIssues()
    assert clean_day("2024-01-05", "d", issues) == date(2024, 1, 5) and not issues
    assert clean_day("2024-01-05T00:00:00", "d", issues) == date(2024, 1, 5) and issues.repairs
    for bad in ("2024-02-30", "2024-01-05T10:00:00", "soon"):
        with pytest.raises(Invalid):
            clean_day(bad, "d", RowIssues())


def test_integers():
    issues = RowIssues()
    assert clean_int(5, "n", issues, 0, 10) == 5 and not issues
    assert clean_int("7", "n", issues, 0, 10) == 7
    assert clean_int(" 8 ", "n", issues, 0, 10) == 8
    assert clean_int(9.0, "n", issues, 0, 10) == 9
    assert clean_int("3.0", "n", issues, 0, 10) == 3
    assert len(issues.repairs) == 4
    assert clean_int(None, "n", RowIssues(), 0, 10) is None
    for bad in (9.5, "nine", 11, -1, b"\xff", "1,000"):
        with pytest.raises(Invalid):
            clean_int(bad, "n", RowIssues(), 0, 10)


def test_text():
    issues = RowIssues()
    assert clean_text("plain", "t", issues) == "plain" and not issues
    assert clean_text("a\x00b", "t", issues) == "ab" and issues.dropped
    assert clean_text(b"caf\xc3\xa9", "t", RowIssues()) == "café"
    assert clean_text(1999, "t", RowIssues()) == "1999"
    assert clean_text("x" * 100_000, "t", RowIssues()) == "x" * 100_000  # no length limit
    bad = b"a\xffb".decode("utf-8", "surrogateescape")
    issues = RowIssues()
    assert clean_text(bad, "t", issues) == "a\ufffdb" and issues.dropped
    with pytest.raises(Invalid):
        clean_text("  ", "t", RowIssues(), required=True)


def test_spotify_ids():
    assert clean_spotify_id("4uLU6hMCjMI75M1A2tKUQC", "id", RowIssues()) == "4uLU6hMCjMI75M1A2tKUQC"
    assert clean_spotify_id(" spotify:track:4uLU6hMCjMI75M1A2tKUQC ", "id", RowIssues()) == "4uLU6hMCjMI75M1A2tKUQC"
    assert (
        clean_spotify_id("https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=x", "id", RowIssues())
        == "4uLU6hMCjMI75M1A2tKUQC"
    )
    for bad in ("", None, "two words"):
        with pytest.raises(Invalid):
            clean_spotify_id(bad, "id", RowIssues())


def test_json_objects():
    issues = RowIssues()
    text, obj = clean_json_object('{"a": 1}', "j", issues)
    assert json.loads(text) == {"a": 1} and obj == {"a": 1} and not issues
    issues = RowIssues()
    text, _ = clean_json_object(json.dumps(json.dumps({"a": {"b": 2}})), "j", issues)
    assert json.loads(text) == {"a": {"b": 2}} and issues.repairs and not issues.dropped
    issues = RowIssues()
    text, _ = clean_json_object('{"a": NaN, "b": [Infinity], "c": "x\\u0000y", "d": 1e999}', "j", issues)
    assert json.loads(text) == {"a": None, "b": [None], "c": "xy", "d": None} and issues.dropped
    assert clean_json_object("", "j", RowIssues()) == (None, None)
    assert clean_json_object(None, "j", RowIssues()) == (None, None)
    for bad in ('{"a": ', "[1, 2]", '"just a string"', "42", "null"):
        with pytest.raises(Invalid):
            clean_json_object(bad, "j", RowIssues())
