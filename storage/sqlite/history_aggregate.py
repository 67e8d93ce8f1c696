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
from .history_rollups import HOUR
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


def _on_the_hour(query: TemporalQuery, period: int) -> bool:
    assert query.lower is not None
    return (query.lower % HOUR == 0 and period % HOUR == 0
            and (query.upper is None or query.upper % HOUR == 0))


def _result(method: AggrMethod, n: int, s: float, mn: float, mx: float, sq: float,
            deviation: float) -> Any:
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
    return math.sqrt(max(0.0, deviation / n))


def aggregate_sql(
    conn: sqlite3.Connection, tenant: str, entity_ids: Sequence[str],
    attributes: Sequence[str] | None, query: TemporalQuery, aggregation: Aggregation,
) -> AggregatedHistory | None:
    """The aggregation of the Entities' series, or None when a value in the window is
    not a number or an instance in it is transient (the caller then aggregates)."""
    assert query.lower is not None
    start = query.lower
    period = aggregation.period.boundary(start, 1) - start
    args: dict[str, Any] = {"tenant": tenant, "start": start, "period": period}
    ids = ", ".join(f":e{n}" for n in range(len(entity_ids)))
    args.update({f"e{n}": entity_id for n, entity_id in enumerate(entity_ids)})
    where = [f"s.tenant = :tenant AND s.entity_id IN ({ids})",
             f"i.flags & {OBSERVED} AND i.t >= :start AND i.del IS NULL"]
    if attributes is not None:
        names = ", ".join(f":a{n}" for n in range(len(attributes)))
        args.update({f"a{n}": name for n, name in enumerate(attributes)})
        where.append(f"s.attribute IN ({names}, :scope)")
        args["scope"] = SCOPE
    if query.upper is not None:
        where.append("i.t < :end")
        args["end"] = query.upper
    # the rows of the window with their period k; then one group per series, kind, k
    rows = (
        "WITH r AS (SELECT s.sid AS sid, s.entity_id AS eid, s.attribute AS attr,"
        " s.dataset_id AS ds, (i.flags >> 1) & 15 AS kind, (i.t - :start) / :period AS k,"
        " i.num AS num, i.ext IS NOT NULL AND instr(i.ext, 'expiresAt') > 0 AS transient"
        " FROM temporal_series s JOIN temporal_instances i ON i.sid = s.sid"
        f" WHERE {' AND '.join(where)}),"
        " g AS (SELECT sid, kind, k, eid, attr, ds, count(*) AS n, count(num) AS nn,"
        " sum(num) AS s, min(num) AS mn, max(num) AS mx, sum(num * num) AS sq,"
        " avg(num) AS mean, sum(transient) AS tr FROM r GROUP BY sid, kind, k)")
    if _on_the_hour(query, period) and "stddev" not in aggregation.methods:
        # whole hours from a whole hour: the hourly rollups hold the answer (the
        # squared deviations of stddev need the instances)
        series_where = " AND ".join(w for w in where if not w.startswith("i."))
        if query.upper is not None:
            args["hend"] = query.upper // HOUR
        sql = (
            "SELECT r.sid, r.kind, (r.h * :hour - :start) / :period AS k, s.entity_id,"
            " s.attribute, s.dataset_id, sum(r.n), sum(r.nn), sum(r.s), min(r.mn), max(r.mx),"
            " sum(r.sq), sum(r.tr), 0.0 FROM temporal_series s"
            " JOIN temporal_rollups r ON r.sid = s.sid"
            f" WHERE {series_where} AND r.h >= :hstart"
            f"{' AND r.h < :hend' if query.upper is not None else ''}"
            " GROUP BY r.sid, r.kind, k ORDER BY r.sid, k")
        args.update(hour=HOUR, hstart=start // HOUR)
    elif "stddev" in aggregation.methods:
        # the squared deviations from each period's mean, in a second pass: the
        # shortcut sq/n - mean^2 loses every digit when the spread is small
        sql = (f"{rows} SELECT g.sid, g.kind, g.k, g.eid, g.attr, g.ds, g.n, g.nn, g.s, g.mn,"
               " g.mx, g.sq, g.tr, sum((r.num - g.mean) * (r.num - g.mean)) FROM g"
               " JOIN r ON r.sid = g.sid AND r.kind = g.kind AND r.k = g.k"
               " GROUP BY g.sid, g.kind, g.k ORDER BY g.sid, g.k")
    else:
        sql = f"{rows} SELECT sid, kind, k, eid, attr, ds, n, nn, s, mn, mx, sq, tr, 0.0" \
              " FROM g ORDER BY sid, k"
    out: AggregatedHistory = {}
    series: dict[tuple[int, int], AggregatedSeries] = {}
    for row in conn.execute(sql, args).fetchall():
        sid, kind, k, entity_id, attribute, dataset_id, n, nn, s, mn, mx, sq, tr, dev = row
        if nn != n or tr:
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
            found.results[method].append((_result(method, n, s, mn, mx, sq, dev), low, high))
    return out
