"""The parameters of the temporal operations, parsed from plain mappings.

Clause 4.11 (the NGSI-LD Temporal Query Language: ``timerel``, ``timeAt``,
``endTimeAt``, ``timeproperty``), 5.2.21 (TemporalQuery, the ``temporalQ`` member
of a POST query, with ``lastN``, ``aggrMethods`` and ``aggrPeriodDuration``), 5.2.44
(AggregationParams, ``aggrParams``), 4.5.19.1 (aggregation methods and period),
6.3.12 (``format`` and ``options``: ``temporalValues``, ``aggregatedValues``) and
6.3.11 (``sysAttrs``).

Errors, as the ETSI suite reads them: a parameter whose value is invalid is
BadRequestData (020_09, 021_26, 021_27, 5244_01); an unknown ``format`` or
``options`` value is InvalidRequest (6.3.20, 021_20), as for the core API.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from ngsi_ld.errors import BadRequestData, InvalidRequest
from ngsi_ld.projection import Projection
from ngsi_ld.query.ordering import parse_order_by
from ngsi_ld.temporal.duration import Duration, parse_duration
from ngsi_ld.temporal.instants import to_micros
from ngsi_ld.temporal.model import TIME_PROPERTIES, TimeProperty

__all__ = [
    "AGGR_METHODS",
    "MAX_LAST_N",
    "TEMPORAL_OPERATIONS",
    "AggrMethod",
    "Aggregation",
    "TemporalFormat",
    "TemporalOptions",
    "TemporalQuery",
    "TimeRel",
    "check_projection",
    "parse_aggr_methods",
    "parse_last_n",
    "parse_temporal_options",
    "parse_temporal_order",
    "parse_temporal_post",
    "parse_temporal_q",
    "parse_temporal_query",
]

TimeRel = Literal["before", "after", "between"]
TemporalFormat = Literal["normalized", "temporalValues", "aggregatedValues"]
AggrMethod = Literal[
    "totalCount", "distinctCount", "sum", "avg", "min", "max", "stddev", "sumsq"
]
#: 4.5.19.1: the aggregation methods, in the order the clause lists them
AGGR_METHODS: tuple[AggrMethod, ...] = get_args(AggrMethod)
_TIMERELS: tuple[TimeRel, ...] = get_args(TimeRel)
#: lastN is a positive integer (5.2.21); beyond this it is a typo, not a request
MAX_LAST_N = 1_000_000_000
_POSITIVE = re.compile(r"[1-9][0-9]{0,9}")
# 6.3.12 and 6.3.11: the options values a temporal operation takes
_OPTIONS = frozenset({"temporalValues", "aggregatedValues", "sysAttrs"})
_FORMATS: tuple[TemporalFormat, ...] = get_args(TemporalFormat)
_ZERO = Duration()

# The URI parameters of each temporal operation (6.18 to 6.24; check with
# ngsi_ld.parameters.check_parameters once merged into its table).
_WINDOW = frozenset({"timerel", "timeAt", "endTimeAt", "timeproperty", "lastN"})
_REPRESENT = frozenset({"attrs", "pick", "omit", "lang", "datasetId", "options", "format",
                        "aggrMethods", "aggrPeriodDuration", "local"})
TEMPORAL_OPERATIONS: dict[str, frozenset[str]] = {
    "upsertTemporal": frozenset({"local"}),
    "queryTemporal": _WINDOW | _REPRESENT | {
        "id", "idPattern", "type", "q", "csf", "georel", "geometry", "coordinates",
        "geoproperty", "scopeQ", "limit", "offset", "count", "orderBy", "expandValues",
        "entityMap",
    },
    "retrieveTemporal": _WINDOW | _REPRESENT | {"type", "entityMap"},
    "deleteTemporal": frozenset({"type", "local"}),
    "appendAttrsTemporal": frozenset({"local"}),
    "deleteAttrsTemporal": frozenset({"deleteAll", "datasetId", "local"}),
    "updateAttrsTemporal": frozenset({"local"}),
    "deleteAttrInstanceTemporal": frozenset({"local"}),
    "queryTemporalPost": frozenset({"limit", "offset", "count", "options", "format", "local"}),
}


@dataclass(frozen=True, slots=True)
class TemporalQuery:
    """A temporal query (4.11, 5.2.21): a window on one temporal Property, and lastN.

    Times are instants in microseconds (:mod:`ngsi_ld.temporal.instants`).
    """

    timerel: TimeRel | None = None
    time_at: int | None = None
    end_time_at: int | None = None
    timeproperty: TimeProperty = "observedAt"
    last_n: int | None = None

    # 4.11: "before" is an exclusive bound, "after" an inclusive one; for "between"
    # the lower bound is inclusive and the upper bound exclusive.
    def contains(self, instant: int) -> bool:
        """True if ``instant`` is in the window (always, without a timerel)."""
        if self.timerel is None or self.time_at is None:
            return True
        if self.timerel == "before":
            return instant < self.time_at
        if self.timerel == "after":
            return instant >= self.time_at
        assert self.end_time_at is not None
        return self.time_at <= instant < self.end_time_at

    @property
    def lower(self) -> int | None:
        """The inclusive lower bound of the window, None when open."""
        return self.time_at if self.timerel in ("after", "between") else None

    @property
    def upper(self) -> int | None:
        """The exclusive upper bound of the window, None when open."""
        if self.timerel == "before":
            return self.time_at
        return self.end_time_at if self.timerel == "between" else None


@dataclass(frozen=True, slots=True)
class Aggregation:
    """4.5.19.1: the methods to apply and the duration of each period (zero: the
    whole time range)."""

    methods: tuple[AggrMethod, ...]
    period: Duration = field(default=_ZERO)


@dataclass(frozen=True, slots=True)
class TemporalOptions:
    """How the temporal evolution is represented (6.3.11, 6.3.12)."""

    format: TemporalFormat = "normalized"
    sys_attrs: bool = False
    aggregation: Aggregation | None = None


def parse_last_n(value: object) -> int:
    """``lastN``: a positive integer (5.2.21), as a query parameter or JSON number."""
    if isinstance(value, bool):
        raise BadRequestData(f"lastN must be a positive integer, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _POSITIVE.fullmatch(value.strip()):
        number = int(value)
    else:
        raise BadRequestData(f"lastN must be a positive integer, got {value!r}")
    if not 1 <= number <= MAX_LAST_N:
        raise BadRequestData(f"lastN must be a positive integer up to {MAX_LAST_N}, got {value!r}")
    return number


def parse_temporal_query(params: Mapping[str, Any], *, required: bool = False) -> TemporalQuery:
    """The temporal query of a GET (``timerel``, ``timeAt``, ``endTimeAt``,
    ``timeproperty``, ``lastN``), or of a ``temporalQ`` object (5.2.21).

    ``required``: a query must name a time window (Query Temporal Evolution, 5.7.4);
    retrieving one Entity's evolution may leave it out (5.7.3).
    """
    timerel, time_at = params.get("timerel"), params.get("timeAt")
    if timerel is None and time_at is None:
        if required:
            raise BadRequestData("a temporal query needs timerel and timeAt (4.11)")
        window: tuple[TimeRel | None, int | None, int | None] = (None, None, None)
    else:
        window = _window(timerel, time_at, params.get("endTimeAt"))
    prop = params.get("timeproperty", "observedAt")
    if prop not in TIME_PROPERTIES:
        raise BadRequestData(
            f"timeproperty {prop!r} is not one of {', '.join(TIME_PROPERTIES)} (4.8)"
        )
    last_n = params.get("lastN")
    return TemporalQuery(
        *window, timeproperty=prop, last_n=None if last_n is None else parse_last_n(last_n)
    )


def _window(
    timerel: object, time_at: object, end_time_at: object
) -> tuple[TimeRel | None, int | None, int | None]:
    if timerel is None:
        raise BadRequestData("timeAt needs timerel (4.11)")
    if timerel not in _TIMERELS:
        raise BadRequestData(f"timerel {timerel!r} is not one of before, after, between (4.11)")
    if time_at is None:
        raise BadRequestData(f"timerel={timerel} needs timeAt (4.11)")
    start = _instant(time_at, "timeAt")
    if timerel != "between":
        return timerel, start, None
    if end_time_at is None:
        raise BadRequestData("timerel=between needs endTimeAt (4.11)")
    end = _instant(end_time_at, "endTimeAt")
    if end <= start:
        raise BadRequestData("endTimeAt must be later than timeAt (4.11)")
    return "between", start, end


def _instant(value: object, what: str) -> int:
    # 4.11: timeAt and endTimeAt "shall be represented as DateTime" (4.6.3): a date
    # alone is not one (ETSI 021_26_09)
    if not isinstance(value, str):
        raise BadRequestData(f"{what} must be a DateTime string, got {value!r}")
    return to_micros(value, what)


def parse_aggr_methods(value: str | Sequence[object]) -> tuple[AggrMethod, ...]:
    """``aggrMethods``: a comma-separated list (or a JSON array) of 4.5.19.1 methods."""
    items = value.split(",") if isinstance(value, str) else list(value)
    methods: list[AggrMethod] = []
    for item in items:
        name = item.strip() if isinstance(item, str) else item
        if name not in AGGR_METHODS:
            raise BadRequestData(
                f"aggrMethods: {name!r} is not one of {', '.join(AGGR_METHODS)} (4.5.19.1)"
            )
        if name not in methods:
            methods.append(name)
    if not methods:
        raise BadRequestData("aggrMethods names no aggregation method")
    return tuple(methods)


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else [value]
    return [part.strip() for item in items for part in str(item).split(",") if part.strip()]


def parse_temporal_options(params: Mapping[str, Any], *,
                           implied_aggregation: bool = False) -> TemporalOptions:
    """``format``, ``options``, ``aggrMethods`` and ``aggrPeriodDuration`` (6.3.12).

    ``format`` takes precedence over ``options`` (021_19_02); the two representation
    keywords cannot both be asked in ``options``; ``aggregatedValues`` needs
    ``aggrMethods``.  ``implied_aggregation``: aggregation methods given in a POST
    body ask for the aggregated representation by themselves (ETSI 021_27_07).
    """
    options = _split(params.get("options"))
    unknown = sorted(set(options) - _OPTIONS)
    if unknown:
        raise InvalidRequest(f"unknown options value(s) {', '.join(unknown)} for a temporal "
                             f"operation; allowed: {', '.join(sorted(_OPTIONS))}")
    fmt_param = params.get("format")
    if fmt_param is not None:
        if fmt_param not in _FORMATS:
            raise InvalidRequest(f"unknown format {fmt_param!r}; use {', '.join(_FORMATS)}")
        fmt: TemporalFormat = fmt_param
    else:
        asked = [o for o in options if o in _FORMATS]
        if len(set(asked)) > 1:
            raise BadRequestData(
                "temporalValues and aggregatedValues cannot both be asked (6.3.12)"
            )
        fmt = asked[0] if asked else "normalized"
    methods = params.get("aggrMethods")
    period = params.get("aggrPeriodDuration")
    parsed = None if methods is None else parse_aggr_methods(methods)
    duration = _ZERO if period is None else parse_duration(period)
    if fmt_param is None and not options and implied_aggregation and parsed is not None:
        fmt = "aggregatedValues"
    aggregation = None
    if fmt == "aggregatedValues":
        if parsed is None:
            raise BadRequestData("the aggregated representation needs aggrMethods (4.5.19.1)")
        aggregation = Aggregation(parsed, duration)
    return TemporalOptions(fmt, "sysAttrs" in options, aggregation)


def parse_temporal_q(temporal_q: Any) -> TemporalQuery:
    """5.2.21: the ``temporalQ`` member of a POST query, a JSON object."""
    if not isinstance(temporal_q, Mapping):
        raise BadRequestData("temporalQ must be a JSON object (5.2.21)")
    return parse_temporal_query(temporal_q, required=True)


def parse_temporal_post(
    body: Mapping[str, Any], params: Mapping[str, Any] | None = None
) -> tuple[TemporalQuery, TemporalOptions]:
    """The temporal part of a POST /temporal/entityOperations/query body (5.2.23):
    ``temporalQ`` (required), the aggregation in it or in ``aggrParams`` (5.2.44,
    which wins), and the representation the URI ``params`` ask for.

    The rest of the Query (entities, attrs, q, geoQ, scopeQ...) is the Query
    Entities parser's.
    """
    if "temporalQ" not in body:
        raise BadRequestData("a temporal query needs its temporalQ member (5.2.23)")
    temporal_q = body["temporalQ"]
    query = parse_temporal_q(temporal_q)
    merged: dict[str, Any] = dict(params or {})
    for source in (temporal_q, body.get("aggrParams")):
        if source is None:
            continue
        if not isinstance(source, Mapping):
            raise BadRequestData("aggrParams must be a JSON object (5.2.44)")
        for name in ("aggrMethods", "aggrPeriodDuration"):
            if name in source:
                merged[name] = source[name]
    return query, parse_temporal_options(merged, implied_aggregation=True)


def check_projection(attrs: object, pick: Projection | None, omit: Projection | None) -> None:
    """4.21 and 5.7.3.4: pick and omit exclude each other and attrs; a temporal
    representation has no Linked Entity retrieval, so no ``{...}`` projection."""
    if pick is not None and omit is not None:
        raise BadRequestData("pick and omit cannot be used together (4.21)")
    if attrs is not None and (pick is not None or omit is not None):
        raise BadRequestData("attrs cannot be used together with pick or omit (4.21)")
    for projection in (pick, omit):
        if projection is not None and projection.linked:
            raise BadRequestData(
                "a temporal representation has no Linked Entity retrieval: "
                "pick and omit cannot select into a Linked Entity (5.7.3.4)"
            )


def parse_temporal_order(order_by: str | Sequence[str]) -> bool:
    """5.7.4.4: the ordering of a temporal query may only refer to the Entity ``id``.

    Returns True for a descending order.
    """
    terms = parse_order_by(order_by)
    for term in terms:
        if term.member != "id" or term.by_distance:
            raise BadRequestData("the temporal query can only be ordered by id (5.7.4.4)")
    return terms[0].direction == "desc"
