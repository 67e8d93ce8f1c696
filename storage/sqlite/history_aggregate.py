"""Aggregations of the temporal history in SQL (clause 4.5.19, docs/temporal.md 3.3).

One ``GROUP BY`` over time buckets: the period index ``k = (t - start) / period`` of
each instance in the window, per series and kind, with count, sum, min, max and
the sum of squares of the numbers; the methods are computed from those
(stddev = sqrt(sq/n - (s/n)^2), the population standard deviation).

It answers what the pure :func:`ngsi_ld.temporal.aggregate` would (the oracle of
tests/storage_contract.py) where SQL can say it: a window on observedAt with a
lower bound, a fixed period (no months or years), the numeric methods, and
series whose values in the window are all numbers, without transient instances.
Everything else returns None and the service aggregates the instances.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Sequence
from typing import Any

from ngsi_ld.temporal import SCOPE, AggregatedSeries, Aggregation, AggrMethod, TemporalQuery

from ..temporal import AggregatedHistory
from .history_sql import KINDS, OBSERVED

__all__ = ["NUMERIC_METHODS", "aggregate_sql", "can_aggregate"]

#: the methods computed from count, sum, min, max and the sum of squares
NUMERIC_METHODS = frozenset({"totalCount", "sum", "avg", "min", "max", "stddev", "sumsq"})


def can_aggregate(query: TemporalQuery, aggregation: Aggregation) -> bool:
    """True when :func:`aggregate_sql` may answer (see the module docstring)."""
    period = aggregation.period
    return (query.timeproperty == "observedAt" and query.lower is not None
            and not period.is_zero and not period.is_calendar
            and NUMERIC_METHODS.issuperset(aggregation.methods))


def _result(method: AggrMethod, n: int, s: float, mn: float, mx: float, sq: float) -> Any:
    if method == "totalCount":
        return n
    if method == "sum":
        return float(s)
    if method == "avg":
        return s / n
    if method == "min":
        return float(mn)
    if method == "max":
        return float(mx)
    if method == "sumsq":
        return float(sq)
    mean = s / n
    return math.sqrt(max(0.0, sq / n - mean * mean))


def aggregate_sql(
    conn: sqlite3.Connection, tenant: str, entity_ids: Sequence[str],
    attributes: Sequence[str] | None, query: TemporalQuery, aggregation: Aggregation,
) -> AggregatedHistory | None:
    """The aggregation of the Entities' series, or None when a value in the window is
    not a number or an instance in it is transient (the caller then aggregates)."""
    assert query.lower is not None
    start = query.lower
    period = aggregation.period.boundary(start, 1) - start
    where = [f"s.tenant = ? AND s.entity_id IN ({','.join('?' * len(entity_ids))})"]
    args: list[Any] = [start, period, tenant, *entity_ids]
    if attributes is not None:
        where.append(f"s.attribute IN ({','.join('?' * (len(attributes) + 1))})")
        args.extend([*attributes, SCOPE])
    where.append(f"i.flags & {OBSERVED} AND i.t >= ? AND i.del IS NULL")
    args.append(start)
    if query.upper is not None:
        where.append("i.t < ?")
        args.append(query.upper)
    rows = conn.execute(
        "SELECT s.sid, s.entity_id, s.attribute, s.dataset_id, (i.flags >> 1) & 15,"
        " (i.t - ?) / ? AS k, count(*), count(i.num), sum(i.num), min(i.num), max(i.num),"
        " sum(i.num * i.num), sum(i.ext IS NOT NULL AND instr(i.ext, 'expiresAt') > 0)"
        " FROM temporal_series s JOIN temporal_instances i ON i.sid = s.sid"
        f" WHERE {' AND '.join(where)} GROUP BY s.sid, (i.flags >> 1) & 15, k"
        " ORDER BY s.sid, k", args).fetchall()
    out: AggregatedHistory = {}
    series: dict[tuple[int, int], AggregatedSeries] = {}
    for sid, entity_id, attribute, dataset_id, kind, k, n, nn, s, mn, mx, sq, transient in rows:
        if nn != n or transient:
            return None
        key = (sid, kind)
        found = series.get(key)
        if found is None:
            found = series[key] = AggregatedSeries(
                attribute, KINDS[kind], dataset_id or None,
                {method: [] for method in aggregation.methods})
            out.setdefault(entity_id, {}).setdefault(attribute, []).append(found)
        low, high = start + k * period, start + (k + 1) * period
        for method in aggregation.methods:
            found.results[method].append((_result(method, n, s, mn, mx, sq), low, high))
    return out
