"""Instants: DateTime strings as integers of microseconds since the Unix epoch.

Temporal queries compare times (clause 4.11), sort instances by them and cut
them into aggregation periods (4.5.19).  Strings cannot do that: the same
instant has several spellings (``12:05:00Z``, ``12:05:00.000Z``, an offset),
so every comparison goes through :func:`to_micros`.  Integers are also what
the stores keep (an 8-byte column, or a BSON date plus its microseconds).

Output goes through :func:`format_micros`, the shortest of three forms: no
fraction when the instant is a whole second, milliseconds when it is a whole
millisecond, else microseconds.  An ``observedAt`` written ``12:03:00Z`` is
therefore read back exactly as written (the ETSI suite compares the pairs of
the simplified representation as strings).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from ngsi_ld.timeutil import parse_datetime

__all__ = ["MICROS_PER_SECOND", "format_micros", "from_datetime", "to_datetime", "to_micros"]

MICROS_PER_SECOND = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE = timedelta(microseconds=1)


def from_datetime(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _ONE


def to_datetime(micros: int) -> datetime:
    """The aware UTC datetime of an instant."""
    return _EPOCH + timedelta(microseconds=micros)


@lru_cache(maxsize=65_536)
def to_micros(text: str, what: str = "date-time") -> int:
    """The instant of an ISO 8601 date-time string; BadRequestData naming ``what`` if invalid.

    Cached: the same few thousand timestamps come back query after query.
    """
    return from_datetime(parse_datetime(text, what=what))


def format_micros(micros: int) -> str:
    """``YYYY-MM-DDThh:mm:ss[.fff|.ffffff]Z``: the shortest exact form of an instant."""
    moment = to_datetime(micros)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    fraction = moment.microsecond
    if fraction == 0:
        return text + "Z"
    if fraction % 1000 == 0:
        return f"{text}.{fraction // 1000:03d}Z"
    return f"{text}.{fraction:06d}Z"
