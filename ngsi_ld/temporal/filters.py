"""Which Entities a temporal query selects, and which of their instances (5.7.4.4).

5.7.4.4 selects on the history, not on the current state:

- S1: only the Attribute instances within the time interval of the temporal query
  count (:func:`ngsi_ld.temporal.window.select`);
- S2: "the values filter query shall be checked against all the Attribute instances
  resulting from the initial filtering": an Entity matches ``q`` when its windowed
  instances, taken together as one multi-instance Entity, do (a term holds when
  some instance satisfies it; ``!attr`` when no windowed instance exists);
- S3: the geoquery is "checked against the GeoProperty instances that are within
  the interval defined by the temporal query";
- S4: ``scopeQ`` is checked against the Entity Scope instances, with the validity of
  4.18: "a given Scope is considered valid from the time it has been set until the
  time it has been explicitly removed by an update or delete operation".  An Entity
  matches when a matching scope was valid during the window; then only the
  instances observed while a matching scope was valid are kept (annex C.5.16), and
  the matching scopes are shown, those set before the window included.

Deletion records carry no value: they never satisfy a term.  The evaluation itself
is :mod:`ngsi_ld.query`'s, on the internal form the instances convert to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ngsi_ld.query import GeoQuery, QExpr, ScopeExpr, match_geo, match_q, matches_scope
from ngsi_ld.temporal.model import SCOPE, Instance, TimeProperty
from ngsi_ld.temporal.params import TemporalQuery
from ngsi_ld.temporal.window import Series, select

__all__ = ["as_entity", "scope_validity", "select_entity"]

Interval = tuple[int, int | None]


def as_entity(entity_id: str, types: Sequence[str], series: Series) -> dict[str, Any]:
    """The windowed instances as one internal-form Entity with many instances per
    Attribute (deletion records and the Scope left out): what q and geo-queries read."""
    attrs: dict[str, list[dict[str, Any]]] = {}
    for name, instances in series.items():
        if name == SCOPE:
            continue
        kept = [inst.to_internal() for inst in instances if not inst.is_deletion]
        if kept:
            attrs[name] = kept
    return {"id": entity_id, "type": list(types), "attrs": attrs}


def _since(inst: Instance, prop: TimeProperty) -> int | None:
    # a removal may have no observedAt: it takes effect when it was deleted
    for instant in (inst.instant(prop), inst.instant("deletedAt"), inst.instant("modifiedAt")):
        if instant is not None:
            return instant
    return None


def scope_validity(scopes: Iterable[Instance],
                   prop: TimeProperty = "observedAt") -> list[tuple[Instance, Interval]]:
    """4.18: each Scope instance with the interval it was valid, from its time to the
    next Scope instance's (None: still valid).  A removal is valid as the empty scope."""
    timed = sorted(((t, inst) for inst in scopes for t in [_since(inst, prop)] if t is not None),
                   key=lambda pair: pair[0])
    out: list[tuple[Instance, Interval]] = []
    for i, (start, inst) in enumerate(timed):
        end = timed[i + 1][0] if i + 1 < len(timed) else None
        out.append((inst, (start, end)))
    return out


def _clip(interval: Interval, query: TemporalQuery) -> Interval | None:
    start, end = interval
    if query.lower is not None:
        start = max(start, query.lower)
    if query.upper is not None:
        end = query.upper if end is None else min(end, query.upper)
    return None if end is not None and end <= start else (start, end)


def _inside(instant: int, intervals: list[Interval]) -> bool:
    return any(start <= instant and (end is None or instant < end) for start, end in intervals)


def select_entity(
    entity_id: str,
    types: Sequence[str],
    instances: Iterable[Instance],
    query: TemporalQuery,
    *,
    q: QExpr | None = None,
    geo_q: GeoQuery | None = None,
    scope_q: ScopeExpr | None = None,
    dataset_ids: Sequence[str] | None = None,
    now: int | None = None,
) -> Series | None:
    """The instances of one Entity a temporal query returns (Attribute -> instances,
    oldest first, lastN not applied), or None when the Entity is not selected.
    ``now``: the time of the read, past which transient instances are gone (4.22)."""
    recorded = list(instances)
    series = select([i for i in recorded if i.attribute != SCOPE], query, now)
    scopes = [i for i in recorded if i.attribute == SCOPE]
    if scope_q is None:
        series.update(select(scopes, query, now))
    else:
        valid = []
        shown = []
        for inst, interval in scope_validity(scopes, query.timeproperty):
            clipped = _clip(interval, query)
            if clipped is not None and matches_scope(scope_q, inst.value):
                valid.append(clipped)
                shown.append(inst)
        if not valid:
            return None
        prop = query.timeproperty
        series = {name: kept for name, insts in series.items()
                  for kept in [[i for i in insts if _inside(i.instant(prop) or 0, valid)]]
                  if kept}
        series[SCOPE] = shown
    entity = as_entity(entity_id, types, series)
    if q is not None and not match_q(q, entity, dataset_ids):
        return None
    if geo_q is not None and not match_geo(geo_q, entity, dataset_ids):
        return None
    return series
