"""The Context Source Registration, as the broker keeps it (clauses 5.2.8 to 5.2.11, 5.2.34).

Immutable values: a registration is parsed once (:mod:`ngsi_ld.federation.registration`)
and replaced, never edited, when it is updated or a distributed operation
changes its status.  Every name in it (entity types, ``propertyNames``,
``relationshipNames``, the names of additional Context Source Properties) is a
full IRI; the values of geometry, interval and additional members are kept as
the client wrote them, so a retrieval shows them back unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from ngsi_ld.federation.operations import supported_operations
from ngsi_ld.query import regexes
from ngsi_ld.timeutil import parse_datetime

JSON = Any


class Mode(StrEnum):
    """How a registered source relates to the broker's own data (4.3.6)."""

    #: the source adds to what the broker holds (4.3.6.2); the default
    INCLUSIVE = "inclusive"
    #: the source alone holds the registered attributes of one entity (4.3.6.3)
    EXCLUSIVE = "exclusive"
    #: the sources hold the registered data; the broker holds none of it (4.3.6.3)
    REDIRECT = "redirect"
    #: the source fills gaps in what the broker answers, for reads only (4.3.6.2)
    AUXILIARY = "auxiliary"

    @property
    def proxied(self) -> bool:
        """Exclusive and redirect: the broker holds none of the registered data."""
        return self in (Mode.EXCLUSIVE, Mode.REDIRECT)


# 5.2.8 EntityInfo
@dataclass(frozen=True, slots=True)
class EntityInfo:
    """A selector of the entities a source may provide.

    ``types`` are IRIs; ``type_list`` remembers that the client wrote an array
    (even of one type), to show it back the same way.  When ``id`` is present
    ``id_pattern`` is ignored (Table 5.2.8-1).
    """

    types: tuple[str, ...]
    id: str | None = None
    id_pattern: str | None = None
    type_list: bool = False

    def has_type(self, types: Iterable[str]) -> bool:
        """True if an entity of these types may be one of this selector's (they share one)."""
        return not set(self.types).isdisjoint(types)

    def has_id(self, entity_id: str) -> bool:
        """True if an entity with this id may be one of this selector's (types aside)."""
        if self.id is not None:
            return self.id == entity_id
        if self.id_pattern is not None:
            return regexes.search(self.id_pattern, entity_id)
        return True

    @property
    def any_id(self) -> bool:
        """True if the selector names a type only (every entity of the type)."""
        return self.id is None and self.id_pattern is None


# 5.2.10 RegistrationInfo
@dataclass(frozen=True, slots=True)
class RegistrationInfo:
    """Which entities (``None``: any) and attributes (``None`` for both: all) a source has."""

    entities: tuple[EntityInfo, ...] | None = None
    property_names: tuple[str, ...] | None = None
    relationship_names: tuple[str, ...] | None = None

    @property
    def attributes(self) -> frozenset[str] | None:
        """The registered attribute names, or None when every attribute is registered."""
        if self.property_names is None and self.relationship_names is None:
            return None
        return frozenset((self.property_names or ()) + (self.relationship_names or ()))

    def covers(self, attribute: str) -> bool:
        """True if the attribute (an IRI) is one this information registers."""
        names = self.attributes
        return names is None or attribute in names

    def selects(self, entity_id: str, types: Iterable[str] | None = None) -> bool:
        """True if the entity (its types, when known) falls under this information."""
        if self.entities is None:
            return True
        known = None if types is None else tuple(types)
        return any(
            info.has_id(entity_id) and (known is None or info.has_type(known))
            for info in self.entities
        )


# 5.2.11 TimeInterval
@dataclass(frozen=True, slots=True)
class TimeInterval:
    """``startAt`` and an optional ``endAt`` (open interval), as the client wrote them."""

    start_at: str
    end_at: str | None = None

    @property
    def start(self) -> datetime:
        """``startAt`` as an instant."""
        return parse_datetime(self.start_at, what="startAt")

    @property
    def end(self) -> datetime | None:
        """``endAt`` as an instant (None: the interval is open)."""
        return None if self.end_at is None else parse_datetime(self.end_at, what="endAt")

    def overlaps(self, start: datetime | None, end: datetime | None) -> bool:
        """True if the interval shares an instant with [start, end) (None: unbounded)."""
        mine_end = self.end
        if end is not None and self.start >= end:
            return False
        return start is None or mine_end is None or mine_end > start


# 5.2.34 RegistrationManagementInfo
@dataclass(frozen=True, slots=True)
class Management:
    """How the broker talks to the source: ``timeout`` and ``cooldown`` in milliseconds."""

    local_only: bool | None = None
    cache_duration: str | None = None
    timeout: float | None = None
    cooldown: float | None = None


# 5.2.9 Table 5.2.9-2: status members, read-only, kept by the broker
@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """What the distributed operations of a registration did so far."""

    times_sent: int = 0
    times_failed: int = 0
    last_success: str | None = None
    last_failure: str | None = None
    status: str | None = None

    def succeeded(self, now_iso: str) -> DeliveryStatus:
        """A distributed operation was answered (``status`` ``ok``)."""
        return replace(self, times_sent=self.times_sent + 1, last_success=now_iso, status="ok")

    def failed(self, now_iso: str) -> DeliveryStatus:
        """A distributed operation failed or timed out (``status`` ``failed``)."""
        return replace(self, times_sent=self.times_sent + 1, times_failed=self.times_failed + 1,
                       last_failure=now_iso, status="failed")


@dataclass(frozen=True, eq=True)
class Registration:
    """A Context Source Registration (5.2.9), names expanded.

    ``operations`` is the member as the client wrote it (None: absent, the
    default ``federationOps``); :attr:`supported` is the set it stands for.
    ``scope`` keeps a single string as a string.  ``properties`` are the
    additional Context Source Properties, by expanded name.  ``local_only`` is
    a top-level ``localOnly`` (kept for clients that write it there; 5.2.34
    puts it in ``management``).
    """

    id: str
    endpoint: str
    information: tuple[RegistrationInfo, ...]
    mode: Mode = Mode.INCLUSIVE
    operations: tuple[str, ...] | None = None
    registration_name: str | None = None
    description: str | None = None
    context_source_alias: str | None = None
    tenant: str | None = None
    scope: str | tuple[str, ...] | None = None
    location: Mapping[str, JSON] | None = field(default=None, hash=False)
    observation_space: Mapping[str, JSON] | None = field(default=None, hash=False)
    operation_space: Mapping[str, JSON] | None = field(default=None, hash=False)
    observation_interval: TimeInterval | None = None
    management_interval: TimeInterval | None = None
    expires_at: str | None = None
    refresh_rate: str | None = None
    management: Management | None = None
    local_only: bool | None = None
    context_source_info: tuple[tuple[str, str], ...] | None = None
    dataset_ids: tuple[str, ...] | None = None
    properties: Mapping[str, JSON] = field(default_factory=dict, hash=False)
    created_at: str | None = None
    modified_at: str | None = None
    delivery: DeliveryStatus = DeliveryStatus()
    supported: frozenset[str] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "supported", supported_operations(self.operations))

    def supports(self, operation: str) -> bool:
        """True if the source takes ``operation`` (a Table 4.20-1 name)."""
        return operation in self.supported

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes as a tuple (empty when the member is absent)."""
        if self.scope is None:
            return ()
        return (self.scope,) if isinstance(self.scope, str) else self.scope

    @property
    def acts_locally(self) -> bool:
        """4.3.6.4 ``localOnly``: forwarded requests ask the source for its own data only."""
        if self.management is not None and self.management.local_only is not None:
            return self.management.local_only
        return bool(self.local_only)

    @property
    def timeout_ms(self) -> float | None:
        """5.2.34: how long a forwarded request may take, in milliseconds (None: the broker's)."""
        return None if self.management is None else self.management.timeout

    @property
    def cooldown_ms(self) -> float | None:
        """5.2.34: how long after a failure the source is left alone, in milliseconds."""
        return None if self.management is None else self.management.cooldown

    @property
    def temporal(self) -> bool:
        """True if the source serves temporal evolution (it has an interval).

        5.2.9: a source providing latest information as well needs a separate
        registration for it, so a temporal registration is not consulted for
        latest-state operations.
        """
        return self.observation_interval is not None or self.management_interval is not None

    def expired(self, now: datetime) -> bool:
        """True once ``expiresAt`` is reached (the registration then no longer applies)."""
        return self.expires_at is not None and parse_datetime(self.expires_at) <= now

    def geometry(self, name: str) -> Mapping[str, JSON] | None:
        """The registration's GeoProperty ``name`` (location, observationSpace, operationSpace)."""
        return {
            "location": self.location,
            "observationSpace": self.observation_space,
            "operationSpace": self.operation_space,
        }.get(name)

    def with_delivery(self, delivery: DeliveryStatus) -> Registration:
        """The same registration with new status members."""
        return replace(self, delivery=delivery)


__all__ = [
    "DeliveryStatus",
    "EntityInfo",
    "Management",
    "Mode",
    "Registration",
    "RegistrationInfo",
    "TimeInterval",
]
