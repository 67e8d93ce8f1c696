"""Temporal pagination (clause 6.3.10): the instance limit, lastN and Content-Range.

6.3.10: for the temporal evolution of Entities, an implementation "shall use the
Partial Content Response (206) ... if the implementation is not able to respond
with the full representation at once".  Then, with ``lastN`` pagination happens
"backwards" (from the most recent to the least recent timestamp of the requested
range), without it "forwards", and the response says which time range it holds::

    Content-Range: date-time <range-start>-<range-end>/<size>

How this module reads it, as the ETSI suite checks it (020_05, 020_13, 020_14,
021_15, 021_16):

- A response holds at most ``limit`` instances of each series (Attribute,
  datasetId) of each Entity.  Asking ``lastN`` up to the limit is not pagination:
  the client asked for exactly that many (200, 020_05).  Without lastN, or with a
  lastN above the limit, a series with more instances than the limit is cut: 206.
- The cut must not leave a hole a next page would miss: forwards, the range ends
  at the earliest last kept instance of a cut series, and every series of every
  Entity of the page is cut there too (020_14_01: an Attribute whose instances all
  come later is left empty, ``[]``); backwards, the range ends at the latest first
  kept instance of a cut series, and everything older is cut.
- range-start: forwards, ``timeAt`` when the window has a lower bound (after,
  between), else the least recent timestamp of the response; backwards,
  ``timeAt`` for before, ``endTimeAt`` for between, else the most recent timestamp
  of the response.  range-end: the most (forwards) or least (backwards) recent
  timestamp of the response.  size: lastN, or ``*``.

The suite pins the limit: 20 instances without lastN must be cut (020_13_01), a
lastN of 20 too (020_13_02), a lastN of 7 must not (020_05_02), so the limit lies
between 7 and 19 for a conformant default (:data:`DEFAULT_INSTANCE_LIMIT`).

A store need read no more than ``limit + 1`` instances of a series, in the
direction of the pagination, for :func:`paginate` to decide.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ngsi_ld.temporal.instants import format_micros
from ngsi_ld.temporal.model import Instance, TimeProperty
from ngsi_ld.temporal.params import TemporalQuery
from ngsi_ld.temporal.window import Series, keep_last

__all__ = ["DEFAULT_INSTANCE_LIMIT", "ContentRange", "Page", "instance_limit", "paginate"]

#: instances of one series in one response; the ETSI suite needs 7 to 19 (see above)
DEFAULT_INSTANCE_LIMIT = 10


@dataclass(frozen=True, slots=True)
class ContentRange:
    """The time range a partial temporal response holds (6.3.10)."""

    start: int
    end: int
    #: lastN when asked, None (``*``) otherwise
    size: int | None = None

    def header(self) -> str:
        """The ``Content-Range`` header value: ``date-time <start>-<end>/<size>``."""
        size = "*" if self.size is None else str(self.size)
        return f"date-time {format_micros(self.start)}-{format_micros(self.end)}/{size}"


@dataclass(frozen=True, slots=True)
class Page:
    """The instances a response holds, per Entity; partial when it has a range."""

    entities: list[Series]
    content_range: ContentRange | None = None

    @property
    def partial(self) -> bool:
        """True for a 206 Partial Content answer."""
        return self.content_range is not None


def instance_limit(query: TemporalQuery, limit: int = DEFAULT_INSTANCE_LIMIT) -> tuple[int, bool]:
    """(instances kept per series, whether that count is lastN itself).

    lastN up to ``limit`` is the count asked for (no pagination); above it, or
    without lastN, the broker's limit applies.
    """
    if limit < 1:
        raise ValueError("the instance limit is at least 1")
    if query.last_n is not None and query.last_n <= limit:
        return query.last_n, True
    return limit, False


def _series(instances: Sequence[Instance]) -> dict[str | None, list[Instance]]:
    out: dict[str | None, list[Instance]] = {}
    for inst in instances:
        out.setdefault(inst.dataset_id, []).append(inst)
    return out


def paginate(
    entities: Sequence[Mapping[str, Sequence[Instance]]],
    query: TemporalQuery,
    limit: int = DEFAULT_INSTANCE_LIMIT,
) -> Page:
    """Cut the selected instances of a page of Entities (each Attribute -> instances
    in ascending time order, :func:`ngsi_ld.temporal.window.select`) to what one
    response holds, and the Content-Range when that is not everything."""
    count, exact = instance_limit(query, limit)
    if exact:
        return Page([keep_last(entity, count) for entity in entities])
    backwards = query.last_n is not None
    prop = query.timeproperty
    bound: int | None = None
    for entity in entities:
        for instances in entity.values():
            for series in _series(instances).values():
                if len(series) <= count:
                    continue
                kept = series[-count:] if backwards else series[:count]
                edge = _instant(kept[0 if backwards else -1], prop)
                if bound is None or (edge > bound if backwards else edge < bound):
                    bound = edge
    if bound is None:
        return Page([keep_last(entity, count) for entity in entities])
    limit_at = bound
    page: list[Series] = []
    for entity in entities:
        cut: Series = {}
        for name, instances in entity.items():
            kept = [inst for inst in instances
                    if (_instant(inst, prop) >= limit_at if backwards
                        else _instant(inst, prop) <= limit_at)]
            cut[name] = keep_last(
                {name: kept}, count)[name] if backwards else _keep_first(kept, count)
        page.append(cut)
    return Page(page, _range(page, query, backwards))


def _keep_first(instances: list[Instance], n: int) -> list[Instance]:
    seen: dict[str | None, int] = {}
    kept = []
    for inst in instances:
        count = seen.get(inst.dataset_id, 0)
        if count < n:
            seen[inst.dataset_id] = count + 1
            kept.append(inst)
    return kept


def _instant(inst: Instance, prop: TimeProperty) -> int:
    instant = inst.instant(prop)
    assert instant is not None, "selected instances carry the queried temporal Property"
    return instant


def _range(page: list[Series], query: TemporalQuery, backwards: bool) -> ContentRange:
    times = [_instant(inst, query.timeproperty)
             for entity in page for instances in entity.values() for inst in instances]
    oldest, newest = min(times), max(times)
    if backwards:
        if query.timerel == "before" and query.time_at is not None:
            start = query.time_at
        elif query.timerel == "between" and query.end_time_at is not None:
            start = query.end_time_at
        else:
            start = newest
        return ContentRange(start, oldest, query.last_n)
    start = query.lower if query.lower is not None else oldest
    return ContentRange(start, newest)
