"""Entity maps (clauses 5.2.39, 5.5.9.3, 5.14): paging a distributed query over fixed entities.

A query that asks for an Entity map (``entityMap=true``, or ``GET
/entityMaps``) records which entities it found and where: entity id → the
registrations that hold it (``@none``: the broker itself).  Later pages of the
same query (``NGSILD-EntityMap`` header) walk that map instead of asking every
source again (5.5.9.3):

  "The set of Entities considered for the result is fixed with the initial
  query creating the Entity map ... filters shall be rechecked before
  returning results ... Entities not or no longer fitting the query shall be
  removed from the Entity map during pagination.  Pages shall always be filled
  to the maximum, as long as Entities are available."

The map is ordered by entity id, the order :func:`~ngsi_ld.federation.merge.merge_answers`
gives, so page boundaries are stable.  :class:`Pager` is the paging as a
little state machine: it names the ids to recheck, is told which still fit,
and asks for more until the page is full or the map is exhausted; the service
does the rechecking (one request per source, :func:`by_source`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ngsi_ld.errors import BadRequestData
from ngsi_ld.federation.durations import duration_seconds
from ngsi_ld.federation.merge import LOCAL
from ngsi_ld.timeutil import format_datetime, is_utc_datetime, parse_datetime

ENTITY_MAP_TYPE = "EntityMap"
#: what a new map lives without entityMapLifetime, and at most (Table 6.4.3.2-1: "the
#: actual expiresAt time of the EntityMap shall be set by the Context Broker")
DEFAULT_LIFETIME = timedelta(hours=1)
MAX_LIFETIME = timedelta(days=1)


@dataclass(frozen=True)
class EntityMap:
    """5.2.39: ``entities`` maps each entity id to the registrations (or LOCAL) holding it.

    ``query`` is the query the map was made for, as the service stores it (its
    parameters), so a later page can be checked to be the same query.
    """

    id: str
    expires_at: str
    entities: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    linked_maps: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        """The entity ids of the map, in its order (by id)."""
        return list(self.entities)

    def expired(self, now: datetime) -> bool:
        """5.5.14: "an expired Entity map cannot be accessed"."""
        return parse_datetime(self.expires_at) <= now

    def without(self, ids: Iterable[str]) -> EntityMap:
        """The map with these entities removed (they no longer fit the query)."""
        gone = set(ids)
        return replace(self, entities={k: v for k, v in self.entities.items() if k not in gone})


def lifetime(text: str | None, *, default: timedelta = DEFAULT_LIFETIME,
             maximum: timedelta = MAX_LIFETIME) -> timedelta:
    """The lifetime of a new map from ``entityMapLifetime`` (an ISO 8601 duration).

    Invalid is BadRequestData (5144_01_04); longer than ``maximum`` is cut to
    it (5141_02_03: "possibly overriding the requested duration").
    """
    if text is None:
        return min(default, maximum)
    seconds = duration_seconds(text, what="entityMapLifetime")
    if seconds <= 0:
        raise BadRequestData("entityMapLifetime must be longer than zero")
    return min(timedelta(seconds=seconds), maximum)


def build_entity_map(
    map_id: str,
    expires: datetime,
    holders: Mapping[str, Iterable[str]],
    *,
    query: Mapping[str, Any] | None = None,
    linked_maps: Mapping[str, str] | None = None,
) -> EntityMap:
    """A new map from who answered what: ``holders`` maps a source (a registration id,
    or LOCAL) to the ids of the entities it answered."""
    found: dict[str, list[str]] = {}
    for source in sorted(holders, key=lambda s: (s != LOCAL, s)):
        for entity_id in holders[source]:
            sources = found.setdefault(entity_id, [])
            if source not in sources:
                sources.append(source)
    entities = {entity_id: tuple(found[entity_id]) for entity_id in sorted(found)}
    return EntityMap(map_id, format_datetime(expires), entities, dict(linked_maps or {}),
                     dict(query or {}))


def render_entity_map(entity_map: EntityMap) -> dict[str, Any]:
    """The map as Retrieve EntityMap answers it (5.14.1, 5.2.39)."""
    return {
        "id": entity_map.id,
        "type": ENTITY_MAP_TYPE,
        "expiresAt": entity_map.expires_at,
        "entityMap": {k: list(v) for k, v in entity_map.entities.items()},
        "linkedMaps": dict(entity_map.linked_maps),
    }


# 5.14.2 Update EntityMap
def apply_map_update(entity_map: EntityMap, raw: Any, now: datetime,
                     maximum: timedelta = MAX_LIFETIME) -> EntityMap:
    """The map after a PATCH: only ``expiresAt`` changes (kept within ``maximum`` of now).

    ``entityMap`` and ``linkedMaps`` are output-only and ignored (5142_01_01); a
    past ``expiresAt`` is accepted: the map then has expired (5141_02_04).
    """
    if not isinstance(raw, dict):
        raise BadRequestData("an EntityMap update must be a JSON object")
    unknown = set(raw) - {"id", "type", "expiresAt", "entityMap", "linkedMaps", "@context"}
    if unknown:
        raise BadRequestData(f"unknown EntityMap members: {', '.join(sorted(unknown))}")
    if "id" in raw and raw["id"] != entity_map.id:
        raise BadRequestData("an EntityMap's id cannot be changed")
    if "type" in raw and raw["type"] != ENTITY_MAP_TYPE:
        raise BadRequestData(f"type must be {ENTITY_MAP_TYPE!r}, not {raw['type']!r}")
    if "expiresAt" not in raw:
        return entity_map
    stamp = raw["expiresAt"]
    if not is_utc_datetime(stamp):
        raise BadRequestData(f"expiresAt must be a DateTime, not {stamp!r}")
    wanted = min(parse_datetime(stamp), now + maximum)
    return replace(entity_map, expires_at=format_datetime(wanted))


def by_source(entity_map: EntityMap, ids: Iterable[str]) -> dict[str, list[str]]:
    """The ids grouped by the source to ask for them (one request each)."""
    out: dict[str, list[str]] = {}
    for entity_id in ids:
        for source in entity_map.entities.get(entity_id, ()):
            out.setdefault(source, []).append(entity_id)
    return out


@dataclass
class Pager:
    """Fill one page from an Entity map, dropping entities that no longer fit (5.5.9.3).

    ::

        pager = Pager(entity_map, offset, limit)
        while (ids := pager.wanted()):
            pager.found(ids_that_still_fit(ids))      # the service asks the sources
        pager.page, pager.pruned, pager.more

    ``page`` are the ids of the page, in map order; ``pruned`` the ones to
    remove from the map; ``more`` whether the map holds entities past the page
    (a next link).  Offsets count the map as it stands once pruned.
    """

    entity_map: EntityMap
    offset: int
    limit: int
    page: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    _position: int = field(default=-1, init=False)
    _pending: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.offset < 0 or self.limit < 0:
            raise BadRequestData("offset and limit must not be negative")
        self._position = self.offset

    def wanted(self) -> list[str]:
        """The next ids to recheck; empty when the page is done."""
        if self._pending:
            raise RuntimeError("found() must be told about the previous ids first")
        ids = self.entity_map.ids
        need = self.limit - len(self.page)
        self._pending = ids[self._position:self._position + need] if need > 0 else []
        self._position += len(self._pending)
        return list(self._pending)

    def found(self, fitting: Iterable[str]) -> None:
        """Which of the ids :meth:`wanted` gave still fit the query."""
        keep = set(fitting)
        for entity_id in self._pending:
            (self.page if entity_id in keep else self.pruned).append(entity_id)
        self._pending = []

    @property
    def more(self) -> bool:
        """True if the map holds entities past the page (a next link)."""
        return self._position < len(self.entity_map.entities)

    @property
    def remaining(self) -> EntityMap:
        """The map without the pruned entities (what the service stores back)."""
        return self.entity_map.without(self.pruned)


__all__ = [
    "DEFAULT_LIFETIME",
    "ENTITY_MAP_TYPE",
    "MAX_LIFETIME",
    "EntityMap",
    "Pager",
    "apply_map_update",
    "build_entity_map",
    "by_source",
    "lifetime",
    "render_entity_map",
]
