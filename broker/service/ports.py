"""What the service needs from its neighbours, as Protocols (ports), and its extension seams.

- :class:`ContextResolving` — turning a client's @context value into a
  compiled ActiveContext, and back into what an answer carries (a URL for a
  Link header, a value for a body); ``broker.contexts.ContextResolver`` is one.
- :class:`Sources` — registered Context Sources a request may also be answered
  by (distributed operations, ETSI GS CIM 009 clause 4.3.6): the service asks
  it for a :class:`Plan` (local, remote, or both) and merges what the sources
  answer with the local answer.  :class:`NoSources`, the default, answers
  everything locally and costs nothing on the hot paths.
- :data:`CommitListener` — told of every committed entity change, after the
  store committed it (the temporal API records attribute history there).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from broker.service.call import Call
from broker.service.reply import Reply
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.model import Change, Entity
from ngsi_ld.query.model import EntityQuery
from ngsi_ld.temporal import Instance, TemporalQuery

__all__ = [
    "LOCAL", "Barrier", "BatchParts", "CommitListener", "ContextResolving", "Histories",
    "NoSources", "Plan", "RemoteHistory", "Sources",
]

#: (tenant, change) of a committed write; must not block (enqueue work instead)
CommitListener = Callable[[str, Change], None]


class Barrier(Protocol):
    """What a write waits for before it is answered (:meth:`Service.before_answer`)."""

    @property
    def unsettled(self) -> bool:
        """True while there is something to wait for (:meth:`settled` would not return
        at once): every write asks, few have to wait."""
        ...

    async def settled(self) -> None:
        """Wait until what the writes so far made is durable."""
        ...


class ContextResolving(Protocol):
    """The @context resolver as the service uses it."""

    async def active(self, client_context: Any) -> ActiveContext:
        """The compiled context of a client's @context value (None: the core context)."""
        ...

    async def response_url(self, client_context: Any, tenant: str = "") -> str:
        """A URL an answer's Link header may name for ``client_context`` (an inline one is
        stored as ImplicitlyCreated, belonging to ``tenant``)."""
        ...

    def body_context(self, client_context: Any) -> Any:
        """The ``@context`` value an answer's body carries for ``client_context``."""
        ...

    def still_active(self, client_context: Any, ctx: ActiveContext) -> bool:
        """True while ``client_context`` compiles to ``ctx`` (the cached compilation)."""
        ...

    def kept(self, client_context: Any) -> ActiveContext | None:
        """The cached compilation of ``client_context`` (what :meth:`active` answers at
        once), or None."""
        ...

    @property
    def generation(self) -> int:
        """Changes whenever a cached compilation is dropped or replaced: until it does,
        ``still_active`` keeps answering True where it did."""
        ...


@dataclass(frozen=True, slots=True)
class Plan:
    """Who answers one request: this broker (``local``) and/or the matched sources."""

    local: bool = True
    #: what the sources are asked, opaque to the service (empty: no source involved)
    remote: tuple[Any, ...] = ()
    #: the attributes (expanded) a write may change here (None: all it writes); the
    #: others belong to exclusive or redirect sources (4.3.6.3)
    local_attrs: frozenset[str] | None = None


#: answered here only
LOCAL = Plan()


@dataclass(frozen=True, slots=True)
class RemoteHistory:
    """The temporal evolution of one Entity as a source answered it (5.7.3, 5.7.4): its
    types and its instances, every name expanded, to be merged with the local history."""

    entity_id: str
    types: tuple[str, ...]
    instances: tuple[Instance, ...]
    #: the registration that answered it, and whether it only fills gaps (4.3.6.2)
    source: str = ""
    auxiliary: bool = False


@dataclass(frozen=True, slots=True)
class Histories:
    """What the sources answered a temporal read (5.7.3, 5.7.4), and the plan it was read
    under (opaque: the claims of exclusive and redirect registrations, 4.3.6.3, that
    :meth:`Sources.merge_history` applies to every party's instances)."""

    plan: Plan = LOCAL
    entities: tuple[RemoteHistory, ...] = ()

    @property
    def federated(self) -> bool:
        """True when sources answered or registration modes apply: the local history
        is then merged through :meth:`Sources.merge_history`, never read alone."""
        return bool(self.plan.remote)


@dataclass(frozen=True, slots=True)
class BatchParts:
    """What the sources did with a batch (5.6.7 to 5.6.10, 5.6.20, distributed).

    ``local`` are the indexes of the batch's entities still written here;
    ``errors`` BatchEntityErrors (5.2.17, with ``registrationId``) of the parts
    sources refused or failed; ``forwarded`` the ids sources took.
    """

    local: frozenset[int]
    errors: tuple[dict[str, Any], ...] = ()
    forwarded: tuple[str, ...] = ()


class Sources(Protocol):
    """Registered Context Sources (distributed operations): the seam of the service.

    :meth:`serves` False for a tenant promises that :meth:`plan` always answers
    :data:`LOCAL` for it: the service then never calls the other methods for
    that tenant's requests and keeps its fast paths (versioned reads, the answer
    cache).  Otherwise, for each operation:

    - reads (Retrieve Entity, Query Entities): ``plan``, the local read when
      ``plan.local``, ``fetch`` from the sources, ``merge`` into one entity per id;
    - writes of one entity: ``plan``, ``forward`` to the sources, the local
      write when ``plan.local``, then ``outcome`` folds the local reply and the
      sources' parts into the reply (204, the one error, or 207).

    ``plan`` may raise the NgsiLdError to answer (a loop in ``Via``, an ordered
    query that sources would answer...); it sees the whole :class:`Call`.
    """

    def serves(self, tenant: str) -> bool:
        """False: :meth:`plan` always answers :data:`LOCAL` for ``tenant`` (it has no
        registration; another tenant's registrations never slow it down)."""
        ...

    def plan(self, tenant: str, operation: str, query: EntityQuery, call: Call,
             write: Entity | None = None) -> Plan:
        """Who answers ``operation`` (an ``ngsi_ld.parameters`` name) for ``query``;
        ``write`` is the expanded fragment or entity a write carries."""
        ...

    async def fetch(self, tenant: str, operation: str, query: EntityQuery, plan: Plan,
                    call: Call, local: Sequence[Entity] = ()) -> Sequence[Any]:
        """The sources' answers to the planned reads, with their provenance (opaque);
        ``local`` is what the broker found itself (a page of a query is cut from both)."""
        ...

    def merge(self, plan: Plan, local: Sequence[Entity],
              answers: Sequence[Any]) -> Sequence[Entity]:
        """One entity per id (sorted by id) from the local entities and the answers
        (the entities outside a page may be made only when asked for)."""
        ...

    def holders(self, answers: Sequence[Any]) -> dict[str, list[str]]:
        """Who answered which entities: registration id -> entity ids (an Entity map)."""
        ...

    async def forward(self, tenant: str, operation: str, entity_id: str, body: Any,
                      plan: Plan, call: Call) -> Sequence[Any]:
        """Send a write to the planned sources; their results (opaque parts)."""
        ...

    def outcome(self, plan: Plan, local: Reply | None, parts: Sequence[Any]) -> Reply:
        """The reply of a write from the local reply (None: not written here) and the parts."""
        ...

    async def forward_batch(self, tenant: str, operation: str,
                            items: Sequence[tuple[str, Entity | None, Any]],
                            call: Call) -> BatchParts:
        """Send a batch's entities (id, expanded entity or None, the body's element) to
        the sources registered for them, one request per source."""
        ...

    async def discover(self, tenant: str, operation: str, call: Call,
                       name: str | None = None) -> Sequence[tuple[Any, ActiveContext]]:
        """What the sources registered for a discovery ``operation`` (a Table 4.20-1 name:
        ``retrieveEntityTypes``... 5.7.5 to 5.7.10) answered: each answer's JSON and the
        @context its names are written in; ``name`` is the type or attribute asked.
        Failures are warnings of ``call``; ``local=true`` asks no source."""
        ...

    async def held(self, tenant: str, operation: str, call: Call,
                   name: str) -> frozenset[tuple[str, str | None]] | None:
        """What the sources registered for a discovery ``operation`` hold of the type or
        attribute ``name`` (expanded): entities as (id, None) for a type, attribute
        instances as (entity id, datasetId or None) for an attribute; None when one of
        them cannot tell (its count then cannot be made distinct)."""
        ...

    async def history(self, tenant: str, operation: str, query: EntityQuery,
                      temporal: TemporalQuery, call: Call) -> Histories:
        """The temporal evolution the sources registered for ``operation``
        (``retrieveTemporal`` or ``queryTemporal``) hold of what ``query`` selects, in the
        time window of ``temporal`` (lastN, paging and aggregation are the
        caller's, after the merge).  Failures are warnings of ``call``; ``local=true``
        asks no source; a ``Via`` loop on an exclusive or redirect source raises 508."""
        ...

    def merge_history(self, plans: Sequence[Plan], entity_id: str, types: Sequence[str],
                      local: Sequence[Instance], remote: Sequence[RemoteHistory],
                      window: TemporalQuery) -> list[Instance] | None:
        """One Entity's instances from the local history and the sources' (4.3.6): what
        exclusive and redirect registrations hold taken from them only, auxiliary
        sources' series only where no other party has the Attribute and datasetId in
        ``window`` (its time window; lastN aside), each instance once.  None when no
        party may show the Entity at all."""
        ...


class NoSources:
    """No Context Source is registered: every request is answered locally."""

    def serves(self, tenant: str) -> bool:
        return False

    def plan(self, tenant: str, operation: str, query: EntityQuery, call: Call,
             write: Entity | None = None) -> Plan:
        return LOCAL

    async def fetch(self, tenant: str, operation: str, query: EntityQuery, plan: Plan,
                    call: Call, local: Sequence[Entity] = ()) -> Sequence[Any]:
        return ()

    def merge(self, plan: Plan, local: Sequence[Entity], answers: Sequence[Any]) -> list[Entity]:
        return list(local)

    def holders(self, answers: Sequence[Any]) -> dict[str, list[str]]:
        return {}

    async def forward(self, tenant: str, operation: str, entity_id: str, body: Any,
                      plan: Plan, call: Call) -> Sequence[Any]:
        return ()

    def outcome(self, plan: Plan, local: Reply | None, parts: Sequence[Any]) -> Reply:
        return local if local is not None else Reply(204)

    async def forward_batch(self, tenant: str, operation: str,
                            items: Sequence[tuple[str, Entity | None, Any]],
                            call: Call) -> BatchParts:
        return BatchParts(frozenset(range(len(items))))

    async def discover(self, tenant: str, operation: str, call: Call,
                       name: str | None = None) -> Sequence[tuple[Any, ActiveContext]]:
        return ()

    async def held(self, tenant: str, operation: str, call: Call,
                   name: str) -> frozenset[tuple[str, str | None]] | None:
        return frozenset()

    async def history(self, tenant: str, operation: str, query: EntityQuery,
                      temporal: TemporalQuery, call: Call) -> Histories:
        return Histories()

    def merge_history(self, plans: Sequence[Plan], entity_id: str, types: Sequence[str],
                      local: Sequence[Instance], remote: Sequence[RemoteHistory],
                      window: TemporalQuery) -> list[Instance] | None:
        return list(local)
