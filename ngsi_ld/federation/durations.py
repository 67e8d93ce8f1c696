"""ISO 8601 durations, as ``cacheDuration`` (Table 5.2.34-1) and ``entityMapLifetime`` use them.

``PnYnMnWnDTnHnMnS`` with at least one component; only the last component
may have a fraction (``PT0.5S``, ``P1.5D``).  Calendar units have no fixed
length, so :func:`duration_seconds` reads a year as 365 days and a month as
30 days: these durations bound caches and lifetimes, where a day more or less
does not matter.
"""

from __future__ import annotations

import re

from ngsi_ld.errors import BadRequestData

_DURATION = re.compile(
    r"P(?:(?P<Y>\d+(?:[.,]\d+)?)Y)?(?:(?P<M>\d+(?:[.,]\d+)?)M)?(?:(?P<W>\d+(?:[.,]\d+)?)W)?"
    r"(?:(?P<D>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:[.,]\d+)?)H)?(?:(?P<m>\d+(?:[.,]\d+)?)M)?(?:(?P<s>\d+(?:[.,]\d+)?)S)?)?"
)
_SECONDS = {"Y": 365 * 86400, "M": 30 * 86400, "W": 7 * 86400, "D": 86400,
            "h": 3600, "m": 60, "s": 1}
_ORDER = "YMWDhms"


def duration_seconds(text: object, *, what: str = "duration") -> float:
    """The length of the ISO 8601 duration ``text`` in seconds; BadRequestData if invalid."""
    if not isinstance(text, str):
        raise BadRequestData(f"{what} must be an ISO 8601 duration string, not {text!r}")
    match = _DURATION.fullmatch(text)
    parts = {} if match is None else {k: v for k, v in match.groupdict().items() if v is not None}
    if match is None or not parts or text.endswith("T"):
        raise BadRequestData(f"{what} is not an ISO 8601 duration (PnDTnHnMnS): {text!r}")
    last = max(_ORDER.index(unit) for unit in parts)
    total = 0.0
    for unit, number in parts.items():
        if ("." in number or "," in number) and _ORDER.index(unit) != last:
            raise BadRequestData(f"{what} {text!r}: only the smallest unit may have a fraction")
        total += float(number.replace(",", ".")) * _SECONDS[unit]
    return total


def is_duration(text: object) -> bool:
    """True if ``text`` is an ISO 8601 duration :func:`duration_seconds` accepts."""
    try:
        duration_seconds(text)
    except BadRequestData:
        return False
    return True


__all__ = ["duration_seconds", "is_duration"]
