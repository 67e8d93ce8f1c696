"""Selecting instances: the time window, their order, lastN (4.11, 5.2.21, 5.7.3.4).

The reference a store's query must agree with: given every recorded instance of
an Entity, :func:`select` keeps those whose temporal Property (``timeproperty``,
observedAt by default) is in the window, grouped by Attribute in ascending time
order; :func:`keep_last` then keeps the last n of each series.

- An instance without the temporal Property asked for is not in any window: with
  ``timeproperty=deletedAt`` only deletion records remain (ETSI 020_17), with the
  default observedAt an instance that was never observed is left out.
- lastN counts per series, (Attribute, datasetId) (4.5.5): each dataset of a
  multi-attribute is its own time series.
- Ties keep the order the instances came in (the store's insertion order).
- 4.22: an instance of a transient attribute is stored until its ``expiresAt``;
  given the time of the read (``now``), an expired instance is not returned even
  if the store has not dropped it yet (ETSI 422_07_02).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ngsi_ld.temporal.instants import to_micros
from ngsi_ld.temporal.model import Instance
from ngsi_ld.temporal.params import TemporalQuery

__all__ = ["Series", "keep_last", "select"]

#: Attribute name -> its instances in ascending order of the queried temporal Property
Series = dict[str, list[Instance]]


def select(instances: Iterable[Instance], query: TemporalQuery, now: int | None = None) -> Series:
    """The instances in ``query``'s window, by Attribute, oldest first (lastN not applied);
    with ``now`` (an instant), those expired by then left out."""
    prop = query.timeproperty
    keyed: dict[str, list[tuple[int, Instance]]] = {}
    for inst in instances:
        if now is not None and inst.expires_at is not None and to_micros(inst.expires_at) <= now:
            continue
        instant = inst.instant(prop)
        if instant is not None and query.contains(instant):
            keyed.setdefault(inst.attribute, []).append((instant, inst))
    out: Series = {}
    for name, pairs in keyed.items():
        pairs.sort(key=lambda pair: pair[0])
        out[name] = [inst for _, inst in pairs]
    return out


def keep_last(series: Mapping[str, Sequence[Instance]], n: int) -> Series:
    """The last ``n`` instances of each (Attribute, datasetId) series, order kept."""
    out: Series = {}
    for name, instances in series.items():
        seen: dict[str | None, int] = {}
        kept: list[Instance] = []
        for inst in reversed(instances):
            count = seen.get(inst.dataset_id, 0)
            if count < n:
                seen[inst.dataset_id] = count + 1
                kept.append(inst)
        kept.reverse()
        out[name] = kept
    return out
