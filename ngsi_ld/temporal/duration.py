"""ISO 8601 durations of ``aggrPeriodDuration`` and ``--temporal-retention`` (clause 4.5.19.1).

4.5.19.1: "The duration shall be a string in the format P[n]Y[n]M[n]DT[n]H[n]M[n]S
or P[n]W"; elements whose value is zero may be omitted, lower-order elements may be
omitted for reduced precision; "PT0S" or "P0D" is valid and spans the whole time
range of the query; combined date and time representations are not allowed.

A :class:`Duration` keeps its calendar part (months, years as twelve months) apart
from its exact part (weeks, days, hours, minutes, seconds in microseconds): a month
has no fixed length, a UTC day has (NGSI-LD times are UTC, there is no daylight
saving to cross).  Period boundaries are always computed from the first boundary,
``start + k x duration``, never by adding one period to the previous one, so a
period of one month starting on January 31 ends on February 29 (or 28), and the
next one on March 31.

Bounds, so that a request cannot ask for arithmetic no store can do: at most nine
digits an element, at most 1,000 years in all, at least one millisecond unless
zero, a fraction on the seconds only (up to six digits).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import datetime

from ngsi_ld.errors import BadRequestData
from ngsi_ld.temporal.instants import from_datetime, to_datetime

__all__ = ["MAX_MICROS", "MIN_MICROS", "Duration", "parse_duration"]

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d{1,9})W"
    r"|(?:(?P<years>\d{1,9})Y)?(?:(?P<months>\d{1,9})M)?(?:(?P<days>\d{1,9})D)?"
    r"(?:T(?:(?P<hours>\d{1,9})H)?(?:(?P<minutes>\d{1,9})M)?"
    r"(?:(?P<seconds>\d{1,9})(?:[.,](?P<fraction>\d{1,6}))?S)?)?)"
)
_SECOND = 1_000_000
_DAY = 86_400 * _SECOND
#: no duration may exceed 1,000 years (of 366 days, for the exact part)
MAX_MICROS = 1000 * 366 * _DAY
_MAX_MONTHS = 12_000
#: the shortest non-zero period (MongoDB dates have millisecond precision)
MIN_MICROS = 1000


@dataclass(frozen=True, slots=True)
class Duration:
    """A parsed duration: ``months`` of calendar time plus ``micros`` of exact time."""

    months: int = 0
    micros: int = 0

    @property
    def is_zero(self) -> bool:
        """True for PT0S, P0D...: one period spanning the whole time range (4.5.19.1)."""
        return self.months == 0 and self.micros == 0

    @property
    def is_calendar(self) -> bool:
        """True when the duration has years or months, whose length varies."""
        return self.months != 0

    def boundary(self, start: int, k: int) -> int:
        """The instant ``start + k x self`` (microseconds), calendar months first."""
        if self.months == 0:
            return start + k * self.micros
        return from_datetime(_add_months(to_datetime(start), k * self.months)) + k * self.micros

    def index(self, start: int, instant: int) -> int:
        """The ``k`` of the period ``[boundary(k), boundary(k + 1))`` holding ``instant``.

        Negative before ``start``.  Only meaningful for a non-zero duration.
        """
        if self.is_zero:
            raise ValueError("a zero duration has no periods")
        if self.months == 0:
            return (instant - start) // self.micros
        # months are 28 to 31 days: estimate with the mean length, then step to the period
        mean = self.months * 30_436_875 * _DAY // 1_000_000 + self.micros
        k = (instant - start) // mean
        while self.boundary(start, k) > instant:
            k -= 1
        while self.boundary(start, k + 1) <= instant:
            k += 1
        return k

    def before(self, instant: int) -> int:
        """The instant one duration before ``instant`` (a retention cut-off)."""
        return self.boundary(instant, -1)


def _add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by ``months`` calendar months, the day clamped to the month's end."""
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    if not 1 <= year <= 9999:
        raise BadRequestData("the aggregation periods fall outside the years 1 to 9999")
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def parse_duration(text: object, what: str = "aggrPeriodDuration") -> Duration:
    """Parse an ISO 8601 duration (4.5.19.1); BadRequestData naming ``what`` if invalid."""
    if not isinstance(text, str):
        raise BadRequestData(f"{what} must be an ISO 8601 duration string, got {text!r}")
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise BadRequestData(
            f"{what} {text!r} is not an ISO 8601 duration (P[n]Y[n]M[n]DT[n]H[n]M[n]S or P[n]W)"
        )
    part = {name: int(value) for name, value in match.groupdict().items()
            if value is not None and name != "fraction"}
    fraction = match.group("fraction")
    micros = int(fraction.ljust(6, "0")) if fraction else 0
    micros += part.get("seconds", 0) * _SECOND
    micros += (part.get("minutes", 0) * 60 + part.get("hours", 0) * 3600) * _SECOND
    micros += (part.get("days", 0) + 7 * part.get("weeks", 0)) * _DAY
    months = part.get("years", 0) * 12 + part.get("months", 0)
    if months > _MAX_MONTHS or micros > MAX_MICROS or months * 31 * _DAY + micros > MAX_MICROS:
        raise BadRequestData(f"{what} {text!r} is longer than 1000 years")
    duration = Duration(months, micros)
    if not duration.is_zero and months == 0 and micros < MIN_MICROS:
        raise BadRequestData(f"{what} {text!r} is shorter than one millisecond")
    return duration

