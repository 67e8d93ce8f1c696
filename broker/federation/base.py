"""What the reads and writes of distributed operations share: the jobs a plan carries,
the answers sources gave, and the state of the forwarding (deadlines, cooldowns,
status members, this broker's alias)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.federation.client import ForwardingClient, Incoming, header
from broker.federation.expansions import Expansions
from broker.federation.parsed import ParsedAnswers
from broker.federation.registry import RegistrationSource
from broker.federation.wire import (
    RawEntity,
)
from broker.service.call import Call
from broker.service.ports import ContextResolving
from broker.service.source_renders import PageRendering
from ngsi_ld.federation import (
    QUERY,
    RETRIEVE,
    Hop,
    ReadPlan,
    Registration,
    SourceRequest,
    WritePlan,
    parse_via,
    source_warning,
)
from ngsi_ld.query import EntityQuery
from ngsi_ld.source_identity import source_alias

__all__ = [
    "ATTRIBUTE_OPS",
    "MAX_READ",
    "READS",
    "SOURCE_PAGE",
    "SPLIT_STRIPPED",
    "WHOLE_ENTITY_OPS",
    "Fetched",
    "ReadJob",
    "SourceAnswer",
    "SourcesBase",
    "WriteJob",
    "expiring",
    "hops_of",
    "names_all",
    "page_of",
    "relayed_warnings",
    "utc_now",
]

#: the most entities one source is asked for in one page
SOURCE_PAGE = 1000
#: the most entities a distributed query reads from one party (as ordered queries)
MAX_READ = 100_000
#: the reads a plan may be asked for; ``queryEntitiesAll`` is a query whose every match
#: is needed whole (a Snapshot's, a temporal Entity map's), not a page
READS = {"retrieveEntity": RETRIEVE, "queryEntities": QUERY, "queryEntitiesPost": QUERY,
         "queryEntitiesAll": QUERY,
         "purgeEntities": ("purgeEntity",)}
#: what ``splitEntities=true`` does not forward (5.7.2.4)
SPLIT_STRIPPED = frozenset({"q", "scopeQ", "georel", "geometry", "coordinates",
                            "geoproperty"})
#: writes whose body is one attribute (or instance), sent whole, not cut by attribute name
ATTRIBUTE_OPS = frozenset({"updateAttrs", "replaceAttrs", "deleteAttrs",
                           "updateAttrInstanceTemporal"})
#: the writes of a whole entity, whatever attributes the request names
WHOLE_ENTITY_OPS = frozenset({"deleteEntity", "deleteTemporal"})


@dataclass(frozen=True)
class ReadJob:
    """The remote part of a read: the pure plan and the hops the request came through."""

    plan: ReadPlan
    hops: tuple[Hop, ...]
    alias: str
    #: the request's selectors, applied to the merged answer when ``split``
    query: EntityQuery | None = None
    #: 5.7.2.4 ``splitEntities=true``: filters are not forwarded but applied here
    split: bool = False
    #: the query has filters the forwarded request cannot carry: applied here too
    refilter: bool = False
    #: filters of the query not in the request's parameters (a Query body's, a
    #: Snapshot's), written as parameters and forwarded so the sources filter
    filters: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SourceAnswer:
    """What one source answered a read: its entities, unexpanded until used."""

    source: str
    auxiliary: bool
    entities: list[RawEntity]
    #: what the source was asked, and whether it gave the ids only (ids-first paging)
    request: SourceRequest | None = None
    ids_only: bool = False
    #: ids-first paging: the ids of the matches the source gave that are counted and
    #: ordered but not read (every id while ``ids_only``, then those outside the page)
    unread: Sequence[str] = ()


@dataclass
class Fetched:
    """The sources' answers to one read, and what the merge needs to know of the request:
    the page it shows (None: every entity is used) and where warnings go."""

    answers: list[SourceAnswer]
    page: tuple[int, int] | None
    warnings: list[str]
    agent: str
    registrations: dict[str, Registration]
    #: the renderings of the page the merge may stand in or offer (the request's
    #: ``Call.rendering``; None: the merged entities are rendered as ever)
    rendering: PageRendering | None = None


@dataclass(frozen=True)
class WriteJob:
    """The remote part of a write of one entity."""

    plan: WritePlan
    hops: tuple[Hop, ...]
    alias: str
    entity_id: str


def hops_of(call: Call) -> tuple[Hop, ...]:
    headers: Any = call.headers
    values = headers.getall("Via", ()) if hasattr(headers, "getall") else \
        [v for k, v in headers.items() if k.lower() == "via"]
    return parse_via(values)


def page_of(call: Call, default_limit: int) -> tuple[int, int]:
    """(offset, limit) of the request (defaults as the broker's, 6.3.10)."""
    params = call.params
    try:
        return int(params.get("offset") or 0), int(params.get("limit") or default_limit)
    except ValueError:
        return 0, MAX_READ


def names_all(registration: Registration, attrs: Sequence[str] | None) -> bool:
    """True if the registration names each of ``attrs`` (propertyNames, relationshipNames)."""
    if not attrs:
        return False
    named: set[str] = set()
    for info in registration.information:
        named |= info.attributes or frozenset()
    return all(a in named for a in attrs)


def expiring(entity: Mapping[str, Any]) -> bool:
    """True if an instance of the entity may have expired (4.22): the merge drops those."""
    return any("expiresAt" in instance for instances in (entity.get("attrs") or {}).values()
               for instance in instances)


def utc_now() -> datetime:
    return datetime.now(UTC)


class SourcesBase:
    """The state and the dependencies of :class:`~broker.federation.FederatedSources`."""

    def __init__(self, registrations: RegistrationSource, client: ForwardingClient,
                 resolver: ContextResolving, *, digest: str, timeout: float = 5.0,
                 default_limit: int = 20, clock: Callable[[], datetime] = utc_now) -> None:
        self.registrations = registrations
        self.client = client
        self.resolver = resolver
        self.digest = digest
        #: the broker's deadline of a forwarded request, seconds (a registration's may be less)
        self.timeout = timeout
        #: the page size of a query without ``limit`` (the broker's --default-page-size)
        self.default_limit = default_limit
        self.clock = clock
        #: registration id -> monotonic time before which it is not contacted (5.2.34 cooldown)
        self._cooling: dict[str, float] = {}
        #: the sources' entities expanded before, by their content (not their answers)
        self.expansions = Expansions()
        #: the sources' answers read before, by their bytes (not their answers)
        self.parsed = ParsedAnswers()

    def serves(self, tenant: str) -> bool:
        """True once ``tenant`` has a registration: until then its fast paths stay (a
        registration in another tenant changes nothing for it)."""
        return self.registrations.holds(tenant)

    def alias(self, tenant: str) -> str:
        """This broker's contextSourceAlias for ``tenant`` (5.2.40, what Via names)."""
        return source_alias(self.digest, tenant)

    # -- planning ----------------------------------------------------------------------------
    def _deadline(self, registration: Registration) -> float:
        own = registration.timeout_ms
        return self.timeout if own is None else min(self.timeout, max(own, 1.0) / 1000)

    def _cooling_down(self, registration: Registration) -> bool:
        until = self._cooling.get(registration.id)
        if until is None:
            return False
        if time.monotonic() >= until:
            del self._cooling[registration.id]
            return False
        return True

    def _delivered(self, tenant: str, registration: Registration, ok: bool) -> None:
        """Table 5.2.9-2 status members, and the cooldown (5.2.34) after a failure."""
        self.registrations.record_delivery(tenant, registration.id, ok)
        if ok:
            return
        cooldown = registration.cooldown_ms
        if cooldown:
            self._cooling[registration.id] = time.monotonic() + cooldown / 1000

    async def _context(self, client_context: Any, tenant: str) -> str:
        """The URL naming the request's @context to a source (the core context's if none;
        an inline context is hosted here, as ImplicitlyCreated of ``tenant``)."""
        return await self.resolver.response_url(client_context, tenant)


def answer_problem(registration: Registration, incoming: Incoming, agent: str) -> str | None:
    """6.3.17: the NGSILD-Warning a source's answer earns (None: a usable answer): 199
    for no answer in time, 299 for an answer too big to read or an error status."""
    if incoming.status is None or incoming.timed_out:
        return source_warning(registration, agent, timed_out=True)
    if incoming.too_big:
        return source_warning(registration, agent, status=incoming.status, invalid=True)
    if incoming.status >= 300:
        return source_warning(registration, agent, status=max(incoming.status, 400))
    return None


def relayed_warnings(incoming: Incoming) -> list[str]:
    """The NGSILD-Warning values a source returned (a cascade's failures surface at the top)."""
    value = header(incoming.headers, "NGSILD-Warning")
    return [value] if value else []


