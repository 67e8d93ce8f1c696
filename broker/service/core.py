"""The service: the state every NGSI-LD operation works on, tenants, and the write rule.

:class:`Service` holds the store, the @context resolver, the change bus, the
caches and the seams (:mod:`broker.service.ports`); the operations are
functions of the modules beside this one, each taking the service and a
:class:`Call` (the plain values of one request) and returning a
:class:`~broker.service.reply.Reply`.  Nothing here knows a web framework.

Rules kept here, once:

- **Tenants** (6.3.14, 5.5.10): a tenant that does not exist is
  NonexistentTenant (404) unless the operation creates entities; a read with
  ``NGSILD-Snapshot`` (6.3.22) is answered from the Snapshot's frozen tenant,
  a write with it is BadRequestData.
- **Commit, then publish**: every entity write goes through :meth:`Service.commit`
  or :meth:`Service.commit_many`: the store commits it atomically, then the
  change is published to the change bus (subscriptions), noted by the expiry
  sweeper (4.22) and told to every commit listener (the temporal seam), in
  that order, only for changes that happened.  Then the write waits for its
  **barriers** (:meth:`Service.before_answer`): what the change made that must be
  durable before the client hears of it, the pending notifications it queued
  (``subscriptions.pending``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from broker.config import Settings
from broker.events import ChangeBus
from broker.expiry import ExpirySweeper
from broker.metrics import Metrics
from broker.service.caches import Caches, KnownVersions, RenderCache
from broker.service.call import Call
from broker.service.gate import BatchGate
from broker.service.ports import Barrier, CommitListener, ContextResolving, NoSources, Sources
from broker.service.registry import Registrations
from ngsi_ld import snapshots
from ngsi_ld.errors import BadRequestData, NonexistentTenant, ResourceNotFound
from ngsi_ld.headers import tenant_name
from ngsi_ld.model import Change, Mutation
from ngsi_ld.temporal import History, recorder_at
from ngsi_ld.timeutil import now_iso
from storage.base import Outcome, Recorder, Store
from storage.temporal import TemporalHistory

__all__ = ["Call", "Service"]


class Service:
    """Everything the operations of ``broker.service`` work on (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        resolver: ContextResolving,
        *,
        events: ChangeBus | None = None,
        metrics: Metrics | None = None,
        caches: Caches | None = None,
        sources: Sources | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.resolver = resolver
        self.events = events if events is not None else ChangeBus()
        self.metrics = metrics if metrics is not None else Metrics()
        self.caches = caches if caches is not None else Caches()
        #: registered Context Sources (distributed operations); none by default
        self.sources: Sources = sources if sources is not None else NoSources()
        #: the Context Source Registrations of every tenant (5.9); loaded at start
        self.registry = Registrations(store)
        #: deletes expired entities and attributes (clause 4.22), set by the composition root
        self.expiry: ExpirySweeper | None = None
        self.started = time.time()
        self._listeners: list[CommitListener] = []
        self._barriers: list[Barrier] = []
        self._tenants: set[str] = set()
        #: the batch writes between their parse and their write's end (gate.py)
        self.batch_gate = BatchGate(store.batches_in_flight)
        # the store hands a change's state before over as bytes when no listener of
        # this bus may read it (Change.stored): decoded on the event loop only if read
        store.wants_before = self.events.may_concern

    # -- the temporal history (docs/temporal.md) -----------------------------------------
    @property
    def history(self) -> TemporalHistory | None:
        """The store's temporal history when ``--temporal`` is on, else None."""
        return self.store.history if self.settings.temporal else None

    def recorder(self, at: str | None = None) -> Recorder | None:
        """What every write records (4.5.6 to 4.5.8), at ``at`` (default: now, the time of
        the commit); None when no history is kept."""
        if self.history is None:
            return None
        return recorder_at(now_iso() if at is None else at)

    # the caches tests and tools look at
    @property
    def renders(self) -> RenderCache:
        return self.caches.renders

    @property
    def versions(self) -> KnownVersions:
        return self.caches.versions

    # -- tenants (6.3.14, 6.3.22) -----------------------------------------------------
    async def tenant(self, call: Call, *, create: bool = False, read: bool = False) -> str:
        """The store tenant of ``call``; an unknown one is NonexistentTenant unless ``create``.

        With ``NGSILD-Snapshot`` a read (``read``) is answered from the
        Snapshot's frozen entities, the tenant that holds them.
        """
        tenant = tenant_name(call.ngsild_tenant, call.fiware_service,
                             self.settings.multi_tenancy)
        if tenant and tenant not in self._tenants:
            if create:
                await self.store.ensure_tenant(tenant)
            elif not await self.store.tenant_exists(tenant):
                raise NonexistentTenant(f"tenant {tenant!r} does not exist")
            self._tenants.add(tenant)
        if call.snapshot is not None:
            return await self._snapshot_tenant(call, tenant, call.snapshot.strip(), read)
        return tenant

    def known_tenant(self, tenant: str) -> bool:
        """True if :meth:`tenant` would answer ``tenant`` (a name ``tenant_name`` gave) at
        once: the default tenant, or one this service found or created before."""
        return not tenant or tenant in self._tenants

    def tenant_named(self, call: Call) -> str:
        """The tenant ``call`` names, not checked against the store (5.13, 5.15)."""
        return tenant_name(call.ngsild_tenant, call.fiware_service, self.settings.multi_tenancy)

    async def _snapshot_tenant(self, call: Call, tenant: str, snapshot: str, read: bool) -> str:
        if not read:
            raise BadRequestData(f"{snapshots.HEADER} applies to reads only: a Snapshot is frozen")
        record = await self.store.get_record(tenant, snapshots.RECORDS, snapshot)
        frozen = None if record is None else record.get(snapshots.STORE_TENANT)
        if not isinstance(frozen, str):
            raise ResourceNotFound(f"Snapshot {snapshot} not found")
        call.snapshot_used = snapshot
        return frozen

    # -- commit, then publish ---------------------------------------------------------
    def on_commit(self, listener: CommitListener) -> Callable[[], None]:
        """Tell ``listener`` of every committed change from now on; returns the undo."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def before_answer(self, barrier: Barrier) -> Callable[[], None]:
        """Await ``barrier`` after every commit while it is unsettled, before the write
        returns (and is answered); returns the undo."""
        self._barriers.append(barrier)
        return lambda: self._barriers.remove(barrier)

    async def settle(self) -> None:
        """Await every barrier (:meth:`before_answer`): what a committed change queued
        is durable.  The commits call it (when :meth:`unsettled`); so do the operations
        that change what is not an entity (registrations, 5.9) before they answer."""
        for barrier in self._barriers:
            # asked first: most writes queue nothing to wait for (no coroutine then)
            if barrier.unsettled:
                await barrier.settled()

    def unsettled(self) -> bool:
        """True if a barrier has something to wait for: most writes have none, and
        create no coroutine to settle (issue 19)."""
        for barrier in self._barriers:  # noqa: SIM110 (a loop: cheaper than any())
            if barrier.unsettled:
                return True
        return False

    def publish(self, tenant: str, change: Change) -> None:
        """Tell the subscriptions what changed (one event per entity write), the expiry
        sweeper what may expire (clause 4.22), and the commit listeners."""
        self.events.publish_written(tenant, change)
        if self.expiry is not None and change.exists:
            # an expiry the store told needs no entity (nor the decode of one it handed
            # over as bytes, ngsi_ld.model.Change)
            self.expiry.note(change.after if change.expires is ... else None, change.expires)
        for listener in self._listeners:
            listener(tenant, change)

    async def commit(self, tenant: str, entity_id: str, mutation: Mutation, *,
                     store: Store | None = None, record: bool = True,
                     posted: Sequence[History] = (), at: str | None = None) -> Change:
        """Write one entity through the store (atomically) with its history, and publish
        its change.

        ``store``: another store to write through than the service's, the
        unvalidated one for the broker's own removals (4.22: what expires is
        removed whatever a model schema requires).  ``record``: False for a write
        whose history is already recorded (the temporal API's).  ``posted``: the
        history the temporal API posted, written with the entity (one transaction on
        the embedded store, see :meth:`Store.modify`).  ``at``: the time the mutation
        stamps, recorded as the write's time (one clock read a write; default: now).
        """
        recorder = self.recorder(at) if record else None
        change = await (store or self.store).modify(tenant, entity_id, mutation,
                                                    record=recorder, posted=posted)
        self.publish(tenant, change)
        if self.unsettled():
            await self.settle()
        return change

    async def commit_many(
        self, tenant: str, mutations: Sequence[tuple[str, Mutation]]
    ) -> list[Outcome]:
        """Write several entities (each whole or not at all); publish every change made."""
        if not mutations:
            return []
        outcomes = await self.store.modify_many(tenant, mutations, record=self.recorder())
        for outcome in outcomes:
            if outcome.change is not None:
                self.publish(tenant, outcome.change)
        if self.unsettled():
            await self.settle()
        return outcomes
