"""Tests of ngsi_ld.timeutil: the clock and strict ISO 8601 parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ngsi_ld.errors import BadRequestData
from ngsi_ld.timeutil import (
    format_datetime,
    is_date,
    is_datetime,
    is_time,
    iso_millis,
    now_iso,
    parse_datetime,
)


def test_now_iso_is_utc_with_milliseconds_and_z() -> None:
    text = now_iso()
    assert len(text) == len("2026-01-01T00:00:00.000Z")
    assert text.endswith("Z") and text[19] == "."
    assert abs(parse_datetime(text) - datetime.now(UTC)) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-03-15T11:00:00Z", datetime(2016, 3, 15, 11, tzinfo=UTC)),
        ("2016-03-15T11:00:00", datetime(2016, 3, 15, 11, tzinfo=UTC)),
        ("2021-01-11T15:51:02+05:30", datetime(2021, 1, 11, 10, 21, 2, tzinfo=UTC)),
        ("2016-11-30T07:00:00.00Z", datetime(2016, 11, 30, 7, tzinfo=UTC)),
        ("2016-07-08T08:02:21.753Z", datetime(2016, 7, 8, 8, 2, 21, 753000, tzinfo=UTC)),
        ("2020-01-01T00:00Z", datetime(2020, 1, 1, tzinfo=UTC)),
        ("2020-01-01T00:00:00-01:00", datetime(2020, 1, 1, 1, tzinfo=UTC)),
    ],
)
def test_parse_datetime_accepts_iso8601(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected
    assert is_datetime(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2016-03-15",
        "yesterday",
        "2016-13-01T00:00:00Z",
        "2016-02-30T00:00:00Z",
        "2016-03-15 11:00:00Z",
        "2016-03-15T25:00:00Z",
        "2016-03-15T11:00:00+2",
        20160315,
        None,
    ],
)
def test_parse_datetime_rejects_non_iso8601(text: object) -> None:
    with pytest.raises(BadRequestData) as err:
        parse_datetime(text, what="observedAt")
    assert "observedAt" in err.value.detail
    assert not is_datetime(text)


def test_date_and_time_checks() -> None:
    assert is_date("2024-02-29") and not is_date("2023-02-29") and not is_date("2024-2-1")
    assert is_time("12:30:00") and is_time("12:30:00.5Z") and not is_time("25:00:00")
    assert not is_time(1230)


@given(st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 1, 1)))
def test_format_then_parse_keeps_the_millisecond(moment: datetime) -> None:
    text = format_datetime(moment)
    assert text.endswith("Z")
    back = parse_datetime(text)
    assert back == moment.replace(tzinfo=UTC, microsecond=moment.microsecond // 1000 * 1000)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_now_iso_is_the_utc_millisecond_form_of_the_clock() -> None:
    for _ in range(50):
        before = datetime.now(UTC) - timedelta(milliseconds=1)
        stamp = now_iso()
        after = datetime.now(UTC)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
        assert format_datetime(before) <= stamp <= format_datetime(after)


@given(st.lists(st.integers(0, 4_102_444_800_000), min_size=1, max_size=5))
def test_iso_millis_formats_any_instant_as_format_datetime_does(instants: list[int]) -> None:
    for millis in instants:  # in any order: the cached second must follow
        expected = format_datetime(EPOCH + timedelta(milliseconds=millis))
        assert iso_millis(millis) == expected
