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

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from ngsi_ld.timeutil import parse_datetime

__all__ = ["MICROS_PER_SECOND", "format_micros", "from_datetime", "millis_micros", "to_datetime",
           "to_micros"]

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


#: the millisecond form of the broker's own stamps, ``YYYY-MM-DDThh:mm:ss.fffZ``
_MILLIS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
#: the instants of the minutes (``YYYY-MM-DDThh:mm``) of such stamps met; emptied when
#: this large
_MINUTES: dict[str, int] = {}
_MINUTES_MAX = 4096


def millis_micros(text: str) -> int | None:
    """The instant of ``text`` when it is a valid date-time in the millisecond form of
    the broker's own stamps (``YYYY-MM-DDThh:mm:ss.fffZ``), read without the general
    parse (its minute's instant kept: stamps of one minute differ in their seconds);
    None for any other text."""
    if _MILLIS.fullmatch(text) is None:
        return None
    second = int(text[17:19])
    if second > 59:  # not a time (a leap second): the general parse refuses it
        return None
    minute = _MINUTES.get(text[:16])
    if minute is None:
        try:
            moment = datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]),
                              int(text[11:13]), int(text[14:16]), tzinfo=UTC)
        except ValueError:  # not a date (a 13th month): the general parse refuses it
            return None
        minute = (moment - _EPOCH) // _ONE
        if len(_MINUTES) >= _MINUTES_MAX:
            _MINUTES.clear()
        _MINUTES[text[:16]] = minute
    return minute + second * MICROS_PER_SECOND + int(text[20:23]) * 1000


@lru_cache(maxsize=65_536)
def to_micros(text: str, what: str = "date-time") -> int:
    """The instant of an ISO 8601 date-time string; BadRequestData naming ``what`` if invalid.

    Cached: the same few thousand timestamps come back query after query.
    """
    if text.__class__ is str:
        micros = millis_micros(text)
        if micros is not None:
            return micros
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
