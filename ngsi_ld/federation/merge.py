"""One answer from several: merging the entities of the broker and its sources (4.5.5, 4.3.6.2).

Entities are in the internal expanded form (docs/architecture.md), so the
answers of sources are parsed and expanded before they come here.  The same
entity (same id) answered by several parties becomes one:

* its types and scopes are the union; ``createdAt`` the earliest, ``modifiedAt``
  the latest;
* attribute instances are keyed by their datasetId (4.5.5 multi-attributes):
  instances with different datasetIds are all kept;
* of the instances with the same attribute and datasetId one is kept: the one
  with the most recent ``observedAt``; an instance with ``observedAt`` wins
  over one without; without either, the most recent ``modifiedAt``; then the
  broker's own over a source's, then by source id (so the answer does not
  depend on the order the sources answered in);
* an auxiliary source only fills gaps (4.3.6.2): its instances are used only
  where no other party has that attribute and datasetId, however recent they are;
* instances whose ``expiresAt`` has passed are dropped when ``now`` is given.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import orjson

from ngsi_ld.errors import BadRequestData
from ngsi_ld.timeutil import parse_datetime

#: the source key of the broker's own data (as in an EntityMap, 5.2.39)
LOCAL = "@none"

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


def fill_gaps(candidates: Iterable[tuple[K, T, bool]]) -> dict[K, list[T]]:
    """4.3.6.2: of ``(key, item, auxiliary)`` candidates, per key the items of the regular
    parties, or those of auxiliary parties where no regular party has the key.

    The rule of the latest state (one instance per attribute and datasetId) and of the
    temporal evolution (the series of each attribute and datasetId) alike.
    """
    regular: dict[K, list[T]] = {}
    gaps: dict[K, list[T]] = {}
    for key, item, auxiliary in candidates:
        (gaps if auxiliary else regular).setdefault(key, []).append(item)
    return {**{key: items for key, items in gaps.items() if key not in regular}, **regular}


@dataclass(frozen=True)
class Fragment:
    """An entity as one party answered it: ``source`` is a registration id or LOCAL."""

    entity: dict[str, Any]
    source: str = LOCAL
    auxiliary: bool = False

    @property
    def order(self) -> tuple[int, str, bytes]:
        """Local first, auxiliary last, then by source; the content breaks the last tie."""
        rank = 0 if self.source == LOCAL else 2 if self.auxiliary else 1
        return rank, self.source, orjson.dumps(self.entity, option=orjson.OPT_SORT_KEYS)


def _instant(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value).timestamp()
    except BadRequestData:
        return None  # a source's malformed timestamp does not win anything


def _preference(instance: dict[str, Any], fragment: Fragment) -> tuple[Any, ...]:
    observed, modified = _instant(instance.get("observedAt")), _instant(instance.get("modifiedAt"))
    return (
        observed is None, -(observed or 0.0),
        modified is None, -(modified or 0.0),
        fragment.order[:2],
        orjson.dumps(instance, option=orjson.OPT_SORT_KEYS),
    )


def _expired(instance: dict[str, Any], now: float | None) -> bool:
    if now is None:
        return False
    expires = _instant(instance.get("expiresAt"))
    return expires is not None and expires <= now


def merge_entity(fragments: Iterable[Fragment], *, now: datetime | None = None) -> dict[str, Any]:
    """One entity from the fragments different parties answered for it (same id)."""
    ordered = sorted(fragments, key=lambda f: f.order)
    if not ordered:
        raise ValueError("merge_entity needs at least one fragment")
    at = None if now is None else now.timestamp()
    first = ordered[0].entity
    merged: dict[str, Any] = {"id": first["id"]}
    types: dict[str, None] = {}
    scopes: dict[str, None] = {}
    created: list[str] = []
    modified: list[str] = []
    # (attribute, datasetId) -> (instance, fragment), auxiliary parties' only in the gaps
    candidates: list[tuple[tuple[str, str | None], tuple[dict[str, Any], Fragment], bool]] = []
    for fragment in ordered:
        entity = fragment.entity
        types.update(dict.fromkeys(_listed(entity.get("type"))))
        scopes.update(dict.fromkeys(_listed(entity.get("scope"))))
        for stamp, bucket in (("createdAt", created), ("modifiedAt", modified)):
            if _instant(entity.get(stamp)) is not None:
                bucket.append(entity[stamp])
        for name, instances in (entity.get("attrs") or {}).items():
            for instance in instances if isinstance(instances, list) else [instances]:
                if isinstance(instance, dict) and not _expired(instance, at):
                    key = (name, instance.get("datasetId"))
                    candidates.append((key, (instance, fragment), fragment.auxiliary))
    chosen = fill_gaps(candidates)
    merged["type"] = list(types)
    if scopes:
        merged["scope"] = list(scopes)
    if created:
        merged["createdAt"] = min(created, key=lambda s: _instant(s) or 0.0)
    if modified:
        merged["modifiedAt"] = max(modified, key=lambda s: _instant(s) or 0.0)
    attrs: dict[str, list[dict[str, Any]]] = {}
    for key in sorted(chosen, key=_attr_order):
        found = chosen[key]
        winner = min(found, key=lambda pair: _preference(*pair))[0]
        attrs.setdefault(key[0], []).append(winner)
    merged["attrs"] = attrs
    return merged


def _attr_order(key: tuple[str, str | None]) -> tuple[str, bool, str]:
    # the default instance first, then by datasetId
    return key[0], key[1] is not None, key[1] or ""


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [v for v in value if isinstance(v, str)]


@dataclass(frozen=True)
class Answer:
    """The entities one party answered to a query (in any order)."""

    entities: Sequence[dict[str, Any]]
    source: str = LOCAL
    auxiliary: bool = False


def merge_answers(
    answers: Iterable[Answer], *, now: datetime | None = None
) -> list[dict[str, Any]]:
    """The merged entities of every answer, one per id, ordered by id (code point)."""
    by_id: dict[str, list[Fragment]] = {}
    for answer in answers:
        for entity in answer.entities:
            by_id.setdefault(entity["id"], []).append(
                Fragment(entity, answer.source, answer.auxiliary))
    return [merge_entity(by_id[entity_id], now=now) for entity_id in sorted(by_id)]


@dataclass(frozen=True)
class Page:
    """One page of a merged answer and the count of the whole (6.3.10, 6.3.13)."""

    entities: list[dict[str, Any]]
    count: int
    more: bool


def paginate(merged: Sequence[dict[str, Any]], offset: int, limit: int) -> Page:
    """``limit`` entities from ``offset`` of a merged answer, and whether more follow.

    The order is the one :func:`merge_answers` gives (by id), the same from page
    to page as long as the parties hold the same entities; an Entity map
    (:mod:`ngsi_ld.federation.entitymap`) keeps it fixed across pages.
    """
    if offset < 0 or limit < 0:
        raise BadRequestData("offset and limit must not be negative")
    return Page(list(merged[offset:offset + limit]), len(merged), offset + limit < len(merged))


__all__ = ["LOCAL", "Answer", "Fragment", "Page", "fill_gaps", "merge_answers", "merge_entity",
           "paginate"]
