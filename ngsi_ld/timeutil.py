"""Timestamps: the broker's clock and strict ISO 8601 parsing (clause 4.8).

System timestamps (``createdAt``, ``modifiedAt``) are UTC strings with
milliseconds and ``Z``; user timestamps (``observedAt``, DateTime values) must
be ISO 8601 date-times and are kept as sent.
"""

from __future__ import annotations

import re
import time as _clock
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any

from ngsi_ld.errors import BadRequestData

__all__ = ["format_datetime", "is_date", "is_datetime", "is_time", "is_utc_datetime",
           "iso_millis", "now_iso", "parse_datetime"]

# 4.8 Temporal properties: ISO 8601 extended format, a time part is required;
# a missing offset means UTC.
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)
# 4.6.3 DateTime as the spec writes it: every component, seconds included, and the
# trailing "Z" (no offset).  Up to nine fractional digits are read (the spec says six;
# clients that write nanoseconds lose nothing that matters by being accepted).
_UTC_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[.,]\d{1,9})?Z")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_TIME = re.compile(r"(\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:[Zz]|[+-]\d{2}:?\d{2})?")


def now_iso() -> str:
    """The current UTC time as ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    return iso_millis(_clock.time_ns() // 1_000_000)


# The formatted second of the last call: strftime costs more than the rest of a write's
# bookkeeping, and consecutive writes mostly fall in the same second.
_second: list[Any] = [None, ""]


def iso_millis(millis: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` for a time in milliseconds since the Unix epoch."""
    second, rest = divmod(millis, 1000)
    if second != _second[0]:
        _second[1] = _clock.strftime("%Y-%m-%dT%H:%M:%S.", _clock.gmtime(second))
        _second[0] = second
    return f"{_second[1]}{rest:03d}Z"


def format_datetime(value: datetime) -> str:
    """Format a datetime as UTC with milliseconds and ``Z`` (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_datetime(text: object, *, what: str = "date-time") -> datetime:
    """Parse a strict ISO 8601 date-time into an aware UTC datetime.

    Raises BadRequestData naming ``what`` when ``text`` is not one.
    """
    if not isinstance(text, str):
        raise BadRequestData(f"{what} must be an ISO 8601 date-time string, got {text!r}")
    m = _DATETIME.fullmatch(text)
    if m is None:
        raise BadRequestData(f"{what} is not an ISO 8601 date-time: {text!r}")
    year, month, day, hour, minute = (int(g) for g in m.group(1, 2, 3, 4, 5))
    second = int(m.group(6) or 0)
    fraction = (m.group(7) or "0")[:6].ljust(6, "0")
    tz = UTC
    if m.group(9):
        offset = timedelta(hours=int(m.group(10)), minutes=int(m.group(11)))
        if offset >= timedelta(hours=24):
            raise BadRequestData(f"{what} has an invalid UTC offset: {text!r}")
        tz = timezone(-offset if m.group(9) == "-" else offset)
    try:
        parsed = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
    except ValueError as exc:
        raise BadRequestData(f"{what} is not a valid date-time: {text!r} ({exc})") from None
    return parsed.astimezone(UTC)


def is_datetime(text: object) -> bool:
    """True if ``text`` is a string :func:`parse_datetime` accepts."""
    return isinstance(text, str) and _valid_datetime(text)


@lru_cache(maxsize=4096)
def _valid_datetime(text: str) -> bool:
    # the same stamps recur in every entity of a batch (observedAt, dateLastSwitchingOn)
    try:
        parse_datetime(text)
    except BadRequestData:
        return False
    return True


def is_utc_datetime(text: object) -> bool:
    """True for a DateTime of clause 4.6.3: ``YYYY-MM-DDThh:mm:ss[.ffffff]Z``, a real instant.

    The form temporal properties (observedAt, expiresAt) must take; other date-time
    inputs (query parameters, typed values) go through :func:`parse_datetime`.
    """
    return (
        isinstance(text, str) and _UTC_DATETIME.fullmatch(text) is not None and is_datetime(text)
    )


def is_date(text: object) -> bool:
    """True if ``text`` is an ISO 8601 calendar date ``YYYY-MM-DD``."""
    if not isinstance(text, str) or _DATE.fullmatch(text) is None:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def is_time(text: object) -> bool:
    """True if ``text`` is an ISO 8601 time of day ``HH:MM[:SS[.fff]][offset]``."""
    if not isinstance(text, str):
        return False
    m = _TIME.fullmatch(text)
    if m is None:
        return False
    try:
        time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))
    except ValueError:
        return False
    return True
