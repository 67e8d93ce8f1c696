"""The aggregated temporal representation's arithmetic, in Python (clause 4.5.19).

The reference the stores' aggregations (SQL GROUP BY over time buckets, a MongoDB
pipeline) are tested against: same periods, same methods, same values.

Periods (4.5.19.0: "as many array elements as there are periods in the time range
of the query").  They start at the lower bound of the query's window (``timeAt``
for after and between), or, when the window has none, at the earliest instance of
the Entity (all its Attributes share the periods).  Each is ``aggrPeriodDuration``
long, boundaries counted from the start (:meth:`Duration.boundary`); a zero
duration is one period over the whole range, ending at the window's upper bound or,
when the window has none, at the latest instance, then included.  A period where an
Attribute has no value is left out of that Attribute's arrays.

Methods (Tables 4.5.19.1-1 to -3).  Deletion records carry no value and count for
nothing.  Relationships, ListRelationships, LanguageProperties, JsonProperties and
GeoProperties (objects) only have totalCount and distinctCount.  For the values of
Properties, VocabProperties and ListProperties:

=============  ================================================================
totalCount     the number of values ("times the value has been updated")
distinctCount  the number of distinct values (JSON equality, 1 = 1.0 but not true)
sum, avg       of the numbers (true = 1, false = 0, the NOTE of Table 4.5.19.1-1);
               without numbers, of the sizes of the arrays; avg also averages
               Time values (Table 4.5.19.1-2)
min, max       of the numbers; else of array sizes; else of DateTime, Date or Time
               values (temporal order); else of strings (code point order, "the
               first/last value in lexicographical order")
stddev, sumsq  of the numbers: the population standard deviation, the sum of
               the squares
=============  ================================================================

A method that applies to no value of a period leaves that period out of its array
(an ``avg`` of strings is ``[]``).  Numeric results are floats (the ETSI suite
expects ``100.0``); counts are integers; min and max of strings and times are
the value itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ngsi_ld.temporal.duration import Duration
from ngsi_ld.temporal.instants import to_micros
from ngsi_ld.temporal.model import Instance, TimeProperty
from ngsi_ld.temporal.params import Aggregation, AggrMethod, TemporalQuery

__all__ = ["AggregatedSeries", "Bucket", "aggregate", "aggregation_range", "apply_method",
           "buckets"]

#: kinds whose values are only counted (Table 4.5.19.1-3 and objects of 4.5.19.1-1)
_COUNT_ONLY = frozenset({"Relationship", "ListRelationship", "LanguageProperty",
                         "JsonProperty", "GeoProperty"})
_COUNTS = frozenset({"totalCount", "distinctCount"})
_TEMPORAL = ("DateTime", "Date", "Time")


@dataclass(frozen=True, slots=True)
class Bucket:
    """One aggregation period: ``[start, end)`` (``end`` included when ``closed``)."""

    start: int
    end: int
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class AggregatedSeries:
    """The aggregation of one series (Attribute, datasetId, kind): per method the
    ``(value, period start, period end)`` of each period holding a value."""

    attribute: str
    kind: str
    dataset_id: str | None
    results: dict[AggrMethod, list[tuple[Any, int, int]]]


def aggregation_range(query: TemporalQuery, instants: Iterable[int]) -> tuple[int, int, bool]:
    """(start, end, end included) of the periods: the window's bounds, else the
    earliest and latest of ``instants`` (then the end is included)."""
    times = list(instants)
    start = query.lower if query.lower is not None else min(times)
    if query.upper is not None:
        return start, query.upper, False
    return start, max(times), True


def buckets(
    timed: Sequence[tuple[int, Any]], period: Duration, start: int, end: int, closed: bool
) -> list[Bucket]:
    """The values of ``timed`` (instant, value) per period, periods without values left
    out, in time order.  Instants outside ``[start, end)`` (``]`` when ``closed``) are
    in no period."""
    groups: dict[int, list[Any]] = {}
    for instant, value in timed:
        if instant < start or instant > end or (instant == end and not closed):
            continue
        k = 0 if period.is_zero else period.index(start, instant)
        groups.setdefault(k, []).append(value)
    out = []
    for k in sorted(groups):
        if period.is_zero:
            low, high = start, end
        else:
            low, high = period.boundary(start, k), period.boundary(start, k + 1)
        out.append(Bucket(low, high, tuple(groups[k])))
    return out


def aggregate(
    series: Mapping[str, Sequence[Instance]],
    aggregation: Aggregation,
    query: TemporalQuery,
) -> dict[str, list[AggregatedSeries]]:
    """Aggregate the selected instances of one Entity (Attribute -> instances, as
    :func:`ngsi_ld.temporal.window.select` gives them) per Attribute, datasetId and
    kind.  Attributes without any instance are left out."""
    prop: TimeProperty = query.timeproperty
    timed = [(inst.instant(prop), inst) for instances in series.values() for inst in instances]
    instants = [t for t, _ in timed if t is not None]
    if not instants:
        return {}
    start, end, closed = aggregation_range(query, instants)
    out: dict[str, list[AggregatedSeries]] = {}
    for name, instances in series.items():
        groups: dict[tuple[str | None, str], list[tuple[int, Any]]] = {}
        for inst in instances:
            instant = inst.instant(prop)
            if instant is None:
                continue
            group = groups.setdefault((inst.dataset_id, inst.kind), [])
            if not inst.is_deletion:
                group.append((instant, inst.value))
        for (dataset_id, kind), values in groups.items():
            results: dict[AggrMethod, list[tuple[Any, int, int]]] = {}
            periods = buckets(values, aggregation.period, start, end, closed)
            for method in aggregation.methods:
                rows = []
                for bucket in periods:
                    result = apply_method(method, bucket.values, kind)
                    if result is not None:
                        rows.append((result, bucket.start, bucket.end))
                results[method] = rows
            out.setdefault(name, []).append(AggregatedSeries(name, kind, dataset_id, results))
    return out


def apply_method(method: AggrMethod, values: Sequence[Any], kind: str = "Property") -> Any:
    """One method over the values of one period (Tables 4.5.19.1-1 to -3); None when
    it applies to none of them."""
    if not values:
        return None
    if method == "totalCount":
        return len(values)
    if method == "distinctCount":
        return len({_canonical(v) for v in values})
    if kind in _COUNT_ONLY:
        return None
    numbers = [n for n in map(_number, values) if n is not None]
    sizes = [float(len(v)) for v in values if isinstance(v, list)]
    if method in ("stddev", "sumsq"):
        if not numbers:
            return None
        if method == "sumsq":
            return math.fsum(n * n for n in numbers)
        mean = math.fsum(numbers) / len(numbers)
        return math.sqrt(math.fsum((n - mean) ** 2 for n in numbers) / len(numbers))
    if method in ("sum", "avg"):
        chosen = numbers or sizes
        if chosen:
            total = math.fsum(chosen)
            return total if method == "sum" else total / len(chosen)
        if method == "avg":
            return _average_time(values)
        return None
    return _extreme(method, values, numbers, sizes)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    return None


def _typed(value: Any) -> tuple[str, str] | None:
    """(DateTime | Date | Time, text) of a typed literal value, else None."""
    if isinstance(value, dict) and isinstance(value.get("@value"), str):
        literal = value.get("@type")
        if isinstance(literal, str):
            for name in _TEMPORAL:
                if literal == name or literal.endswith(("/" + name, "#" + name, ":" + name)):
                    return name, value["@value"]
    return None


def _extreme(method: AggrMethod, values: Sequence[Any], numbers: list[float],
             sizes: list[float]) -> Any:
    pick: Callable[..., Any] = min if method == "min" else max
    if numbers:
        return pick(numbers)
    if sizes:
        return pick(sizes)
    typed = [t for t in map(_typed, values) if t is not None]
    for name in _TEMPORAL:
        of_kind = [text for kind, text in typed if kind == name]
        if of_kind:
            key: Callable[[str], Any] = _instant_key if name == "DateTime" else str
            return pick(of_kind, key=key)
    strings = [v for v in values if isinstance(v, str)]
    return pick(strings) if strings else None


def _instant_key(text: str) -> Any:
    try:
        return to_micros(text)
    except Exception:  # a stored value that is not a date-time: order it last
        return math.inf


def _seconds_of_day(text: str) -> float | None:
    parts = text.rstrip("Zz").split(":")
    try:
        hours, minutes = int(parts[0]), int(parts[1])
        seconds = float(parts[2].replace(",", ".")) if len(parts) > 2 else 0.0
    except (ValueError, IndexError):
        return None
    return hours * 3600 + minutes * 60 + seconds


def _average_time(values: Sequence[Any]) -> str | None:
    """Table 4.5.19.1-2: the average of Time values, as a Time (hh:mm:ss[.ffffff])."""
    seconds = [s for kind, text in filter(None, map(_typed, values)) if kind == "Time"
               for s in [_seconds_of_day(text)] if s is not None]
    if not seconds:
        return None
    mean = round(math.fsum(seconds) / len(seconds), 6)
    whole, fraction = int(mean), round((mean - int(mean)) * 1_000_000)
    text = f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    return text + (f".{fraction:06d}" if fraction else "")


def _canonical(value: Any) -> bytes:
    """A key equal for equal JSON values: numbers by value (1 = 1.0), booleans apart."""
    if isinstance(value, bool):
        return b"b" + (b"1" if value else b"0")
    if isinstance(value, int):
        return b"n" + str(value).encode()
    if isinstance(value, float):
        if value.is_integer():
            return b"n" + str(int(value)).encode()
        return b"n" + repr(value).encode()
    return b"j" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
