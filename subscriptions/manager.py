"""The subscriptions of a broker process: their API, matching and delivery (clauses 5.8, 5.11).

:class:`SubscriptionManager` keeps every subscription in memory (compiled for
matching, indexed by entity id and type), writes them through to a
:class:`~subscriptions.repository.Repository`, listens to the change bus, and
feeds one :class:`~subscriptions.delivery.Channel` per subscription.

Choices:

* ``throttling`` coalesces: a change inside the throttling period is not lost;
  the latest state of every entity changed meanwhile is sent in one notification
  when the period ends.
* ``timeInterval`` subscriptions do not react to changes; every interval they
  send the current state of the entities they select (if any).
* ``endpoint.cooldown``: after a failure, notifications due before the cooldown
  has passed are not sent (5.2.15); they are counted as dropped.
* Changes that queue up behind a delivery in progress are sent together, in
  order, in one notification (up to ``delivery.BATCH_MAX`` entities): a busy
  subscriber gets fewer, fuller notifications instead of falling behind.
* Delivery counters (``timesSent``...) are written back to the repository at
  most every ``bookkeeping.FLUSH_INTERVAL`` seconds, and at shutdown.
* Every notification queued is written to the store before the write that
  queued it is answered (the manager's ``journal``, a barrier of the service: a group
  commit it awaits after each commit that queued one), removed once handled, and queued again at
  start-up: a restart, even a ``kill -9``, resumes them, at least once
  (``subscriptions.pending``).  With several processes on one store, the owner
  of a subscription writes them, and a process that takes a subscription over
  resumes its records.
* Several processes on one shared store (``subscriptions.ownership``): every
  process knows every subscription, but only its owner matches changes, runs
  its timer and writes its counters back.  Another process's create, update or
  delete arrives through :meth:`SubscriptionManager.reload`; the API reads the
  repository when the local view may lag (``get``, ``of_tenant``), so a
  subscription created through one process is visible at once through all.
  The counters it writes back are fenced by its lease, and a subscription is
  not notified of another process's changes committed before its creation
  (rules in ``subscriptions.ownership``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from ngsi_ld.changes import ChangeEvent
from ngsi_ld.errors import AlreadyExists, NgsiLdError, ResourceNotFound
from ngsi_ld.model import Entity
from ngsi_ld.query import EntityQuery
from ngsi_ld.timeutil import now_iso, parse_datetime
from subscriptions import pending, state
from subscriptions.bookkeeping import Ledger
from subscriptions.delivery import QUEUE_SIZE, Channel, Delivery
from subscriptions.live import FEED_MARK, Job, Live, halt, merge_jobs, sub_key
from subscriptions.matching import SubscriptionIndex, compile_matcher
from subscriptions.model import (
    DEFAULT_TRIGGERS,
    MIN_TIME_INTERVAL,
    check_creation,
    check_fragment,
    check_subscription,
    merge_fragment,
    parse_members,
)
from subscriptions.notification import Rendering
from subscriptions.ownership import Ownership, SoleOwner, apply_round, disown
from subscriptions.ports import ContextResolving, Counters, EntityReader
from subscriptions.repository import Repository, repository_for
from subscriptions.sender import current_state, send

log = logging.getLogger("broker.subscriptions")


class SubscriptionManager:
    """Subscriptions of every tenant: CRUD, matching of change events, delivery."""

    def __init__(self, store: EntityReader, resolver: ContextResolving,
                 metrics: Counters | None = None,
                 repository: Repository | None = None, delivery: Delivery | None = None,
                 queue_size: int = QUEUE_SIZE, ownership: Ownership | None = None,
                 pending_repository: Repository | None = None) -> None:
        self.store = store
        self.resolver = resolver
        self.metrics = metrics
        self.repository = repository if repository is not None else repository_for(store)
        #: where queued notifications wait across a restart (subscriptions.pending)
        self.pending = pending_repository if pending_repository is not None else \
            repository_for(store, pending.COLLECTION)
        self.journal = pending.Journal(self.pending, pending.JOBS)
        self._persister: asyncio.Task[None] | None = None
        self.delivery = delivery if delivery is not None else Delivery()
        self.queue_size = queue_size
        self.index = SubscriptionIndex()
        #: how many (change, subscription) pairs were evaluated: the index keeps it low
        self.evaluations = 0
        self._live: dict[str, Live] = {}
        self.ownership: Ownership = ownership if ownership is not None else SoleOwner()
        self.ledger = Ledger(self.repository, metrics, "subscription", lambda: self._live,
                             fences=self.ownership.fence, on_stale=self._stale)
        self._leaser: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Load the stored subscriptions (periodic ones resume) and start the write-back."""
        shared = self.ownership.shared
        for tenant, doc in await self.repository.all():
            try:
                await self._activate(tenant, doc, owned=not shared)
            except Exception:
                log.exception("subscription %s of tenant %r could not be resumed",
                              doc.get("id"), tenant)
        loop = asyncio.get_running_loop()
        self.ledger.start()
        if not shared:
            await self._resume()
        self._persister = loop.create_task(self.journal.keep_written())
        if shared:
            await self._lease_round()  # resumes the records of what it gained
            self._leaser = loop.create_task(self._lease_loop())
        log.info("%d subscriptions loaded, %d delivered by this process", len(self._live),
                 sum(live.owned for live in self._live.values()))

    async def close(self) -> None:
        """Stop every worker and timer, write back the counters, close the connections."""
        await self.ledger.stop()
        for task in (self._leaser, self._persister):
            if task is not None:
                task.cancel()
        await self.journal.flush()
        lives = list(self._live.values())
        for live in lives:
            await self._stop(live)
        await self.ledger.flush(lives)
        await self.ownership.close()
        await self.delivery.close()

    async def drain(self) -> None:
        """Wait until every queued notification has been handled (for tests and benchmarks)."""
        for live in list(self._live.values()):
            await live.channel.drain()

    # -- API (5.8) --------------------------------------------------------------------
    async def create(self, tenant: str, data: Any, context: Any) -> str:
        """5.8.1 Create Subscription; returns the subscription id."""
        ctx = await self.resolver.active(context)
        now = now_iso()
        members = parse_members(data, ctx.expand_term, parse_datetime(now), partial=False)
        check_creation(members)
        sub_id = members.pop("id", None) or f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
        if sub_key(tenant, sub_id) in self._live or await self.repository.get(tenant, sub_id):
            raise AlreadyExists(f"subscription {sub_id} already exists")
        # 5.2.12: isActive defaults to true; it is kept only when the client gave it.
        # The default notificationTrigger is stored: a retrieved subscription shows it.
        doc = {"id": sub_id, **members}
        doc.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))
        if "jsonldContext" not in doc:
            doc["jsonldContext"] = await self._context_url(context, tenant)
        doc["_context"] = context
        doc["createdAt"] = doc["modifiedAt"] = now
        check_subscription(doc)
        mark = await self.ownership.mark()  # before the write: see ownership, "Marks"
        if mark is not None:
            doc[FEED_MARK] = mark
        live = await self._compile(tenant, doc)
        await self.repository.put(tenant, doc)
        live.owned = await self.ownership.claim(sub_key(tenant, sub_id))
        self._register(live)
        return sub_id

    async def get(self, tenant: str, sub_id: str) -> dict[str, Any]:
        """5.8.3 Retrieve Subscription: the stored document (internal names), once the
        notifications in flight have their outcome (``subscriptions.bookkeeping``)."""
        live = await self._find(tenant, sub_id)
        await self.ledger.settled(live)
        return live.doc

    def document(self, tenant: str, sub_id: str) -> dict[str, Any] | None:
        """The stored document of a subscription this process knows (internal names), at
        once (unlike :meth:`get`, never waiting for a delivery in flight)."""
        live = self._live.get(sub_key(tenant, sub_id))
        return None if live is None else live.doc

    async def of_tenant(self, tenant: str) -> list[dict[str, Any]]:
        """5.8.4 Query Subscriptions: every subscription of the tenant, sorted by id."""
        if self.ownership.shared:  # the repository is the truth; catch up with it
            stored = {str(doc["id"]): doc for doc in await self.repository.of_tenant(tenant)}
            known = {live.id for live in self._live.values() if live.tenant == tenant}
            for sub_id in sorted(stored.keys() ^ known):
                await self._catch_up(tenant, sub_id, stored.get(sub_id))
        return sorted((live.doc for live in self._live.values() if live.tenant == tenant),
                      key=lambda doc: str(doc["id"]))

    async def _find(self, tenant: str, sub_id: str) -> Live:
        live = self._live.get(sub_key(tenant, sub_id))
        if live is None and self.ownership.shared:  # created by another process just now?
            await self.reload(tenant, sub_id)
            live = self._live.get(sub_key(tenant, sub_id))
        if live is None:
            raise ResourceNotFound(f"subscription {sub_id} not found")
        return live

    async def update(self, tenant: str, sub_id: str, data: Any, context: Any) -> None:
        """5.8.2 Update Subscription with a fragment."""
        live = await self._find(tenant, sub_id)
        ctx = await self.resolver.active(context)
        now = now_iso()
        fragment = parse_members(data, ctx.expand_term, parse_datetime(now), partial=True)
        check_fragment(fragment, sub_id)
        doc = merge_fragment(live.doc, fragment)
        doc.setdefault("notificationTrigger", list(DEFAULT_TRIGGERS))  # removed: the default
        if "q" in fragment:
            doc["_context"] = context
        if "jsonldContext" in fragment and fragment["jsonldContext"] is None:
            doc["jsonldContext"] = await self._context_url(doc.get("_context"), tenant)
        doc["modifiedAt"] = now
        check_subscription(doc)
        fresh = await self._compile(tenant, doc)
        await self.repository.put(tenant, doc)
        await self._replace(live, fresh)

    async def _replace(self, live: Live, fresh: Live) -> None:
        fresh.channel = live.channel  # what is queued is still sent, in order
        fresh.pending, fresh.next_allowed = live.pending, live.next_allowed
        fresh.owned = live.owned
        await self._stop(live, keep_channel=True)
        self._register(fresh)
        if fresh.pending:  # changes held back by throttling are not lost either
            if "throttling" in fresh.doc:
                loop = asyncio.get_running_loop()
                fresh.flush = loop.call_at(fresh.next_allowed, self._release, fresh)
            else:
                fresh.next_allowed = 0.0
                self._release(fresh)

    async def delete(self, tenant: str, sub_id: str) -> None:
        """5.8.5 Delete Subscription."""
        live = await self._find(tenant, sub_id)
        for job in live.channel.snapshot():  # its queue goes, and the records with it
            self.journal.done(tenant, job.records)
        await self._stop(live)
        self.ledger.forget(tenant, sub_id)
        await self.repository.delete(tenant, sub_id)
        await self.ownership.drop(sub_key(tenant, sub_id))

    async def reload(self, tenant: str, sub_id: str) -> None:
        """Catch up with a subscription another process created, changed or deleted."""
        await self._catch_up(tenant, sub_id, await self.repository.get(tenant, sub_id))

    async def _catch_up(self, tenant: str, sub_id: str, doc: dict[str, Any] | None) -> None:
        key = sub_key(tenant, sub_id)
        live = self._live.get(key)
        if doc is None:
            if live is not None:
                await self._stop(live)
                self.ledger.forget(tenant, sub_id)
                if live.owned:  # a lease round may have claimed it after its deletion
                    await self.ownership.drop(key)
            return
        if live is not None and live.doc == doc:
            return
        try:
            fresh = await self._compile(tenant, doc)
        except Exception:
            log.exception("subscription %s of tenant %r could not be loaded", sub_id, tenant)
            return
        if live is None:
            fresh.owned = False  # a lease round decides
            self._register(fresh)
            return
        if live.owned:  # this process's counters are newer than the stored ones
            state.keep_delivery_state(live.doc, fresh.doc)
        await self._replace(live, fresh)

    async def _context_url(self, context: Any, tenant: str) -> str:
        """5.8.1.4: without jsonldContext, notifications use the subscription's @context.

        ``jsonldContext`` is one dereferenceable URI: a single URL (also as an array of
        one) is kept as the client gave it; anything else is hosted by the broker.
        """
        if isinstance(context, list) and len(context) == 1 and isinstance(context[0], str):
            context = context[0]
        return await self.resolver.response_url(context, tenant)

    @staticmethod
    def status(doc: dict[str, Any]) -> state.Status:
        return state.status_of(doc, now_iso())

    # -- compiling and registering -----------------------------------------------------
    async def _compile(self, tenant: str, doc: dict[str, Any]) -> Live:
        key = sub_key(tenant, doc["id"])
        query_ctx = await self.resolver.active(doc.get("_context"))
        notify_ctx = await self.resolver.active(doc["jsonldContext"])
        matcher = compile_matcher(doc, query_ctx.expand_term)
        live = Live(
            tenant=tenant, doc=doc, matcher=matcher,
            rendering=Rendering.of(doc, notify_ctx),
            link_url=doc["jsonldContext"],
            body_context=self.resolver.body_context(doc["jsonldContext"]),
            channel=Channel(lambda job: self._handle(key, job), self.queue_size, merge_jobs),
        )
        if "expiresAt" in doc:
            live.expires = parse_datetime(doc["expiresAt"]).timestamp()
        return live

    async def _activate(self, tenant: str, doc: dict[str, Any], *, owned: bool = True) -> None:
        live = await self._compile(tenant, doc)
        live.owned = owned
        self._register(live)

    def _register(self, live: Live) -> None:
        key = sub_key(live.tenant, live.id)
        self._live[key] = live
        self.index.add(key, live.tenant, live.matcher)
        self._start_timer(live)

    def _start_timer(self, live: Live) -> None:
        if "timeInterval" in live.doc and live.owned and live.periodic is None:
            live.periodic = asyncio.get_running_loop().create_task(self._periodic(live))

    # -- ownership (subscriptions.ownership) ---------------------------------------------
    async def _lease_round(self) -> None:
        gained = await apply_round(self.ownership, self._live, self._start_timer)
        if gained:  # what the previous owner had queued (it may have sent some: at least once)
            await self._resume(set(gained))

    def _stale(self, key: str) -> None:
        """A fenced write-back of ``key`` was refused: another process holds its lease."""
        self.ownership.forget(key)
        live = self._live.get(key)
        if live is not None and live.owned:
            disown(live)

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ownership.interval)
            try:
                await self._lease_round()
            except Exception:
                log.exception("subscription leases could not be renewed")

    async def _stop(self, live: Live, *, keep_channel: bool = False) -> None:
        key = sub_key(live.tenant, live.id)
        if self._live.get(key) is live:
            del self._live[key]
            self.index.remove(key)
        await halt(live, keep_channel=keep_channel)

    # -- matching (5.11) ---------------------------------------------------------------
    def on_change(self, event: ChangeEvent) -> None:
        """The change bus listener: find the subscriptions concerned and queue notifications."""
        types: set[str] = set()
        for entity in (event.before, event.after):
            if entity is not None:
                types.update(entity.get("type", ()))
        state = event.after if event.after is not None else event.before
        keys = self.index.candidates(event.tenant, event.entity_id, types, state,
                                     event.attributes)
        if not keys:
            return
        now = time.time()
        for key in sorted(keys):
            live = self._live[key]
            if not live.owned or live.predates(event):
                continue
            self.evaluations += 1
            try:
                concerned = live.on_change(now) and live.matcher.concerns(event)
            except NgsiLdError as exc:  # e.g. an idPattern that runs out of time
                log.warning("subscription %s: cannot evaluate a change: %s", live.id, exc)
                continue
            if concerned:
                self._dispatch(live, event)

    def deliver(self, event: ChangeEvent, sub_id: str) -> bool:
        """Offer ``event`` to subscription ``sub_id`` only (a change a context source
        notified, 5.8.1.4): matched like a local change; True if it notifies."""
        live = self._live.get(sub_key(event.tenant, sub_id))
        if live is None or not live.owned:
            return False
        try:
            concerned = live.on_change(time.time()) and live.matcher.concerns(event)
        except NgsiLdError as exc:
            log.warning("subscription %s: cannot evaluate a change: %s", live.id, exc)
            return False
        if concerned:
            self._dispatch(live, event)
        return concerned

    def _dispatch(self, live: Live, event: ChangeEvent) -> None:
        throttling = live.doc.get("throttling")
        if throttling is None:
            self._enqueue(live, Job(events=[event]))
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not live.pending and now >= live.next_allowed:
            live.next_allowed = now + throttling
            self._enqueue(live, Job(events=[event]))
            return
        earlier = live.pending.pop(event.entity_id, None)
        if earlier is not None:  # keep the oldest "before" and every attribute touched
            event = ChangeEvent(event.tenant, event.entity_id, earlier.before, event.after,
                                event.trigger, {**earlier.attributes, **event.attributes})
        live.pending[event.entity_id] = event
        if live.flush is None:
            live.flush = loop.call_at(live.next_allowed, self._release, live)

    def _release(self, live: Live) -> None:
        live.flush = None
        if live.deleted or not live.pending:
            return
        events = list(live.pending.values())
        live.pending.clear()
        live.next_allowed = asyncio.get_running_loop().time() + live.doc.get("throttling", 0)
        self._enqueue(live, Job(events=events))

    def _enqueue(self, live: Live, job: Job) -> None:
        if not live.channel.offer(job):
            self.ledger.drop(live, len(job.events or job.entities or ()))
            return
        self.journal.note(live.tenant, live.id, job)

    # -- delivery ----------------------------------------------------------------------
    async def _handle(self, key: str, job: Job) -> None:
        live = self._live.get(key)
        if live is None or not live.owned:  # its new owner resumes the stored record
            return

        async def fetch(ids: list[str]) -> list[Entity]:
            found, _ = await self.store.query_entities(live.tenant, EntityQuery(ids=ids))
            return list(found)

        await send(live, job, self.delivery, self.ledger, fetch)
        self.journal.done(live.tenant, job.records)

    async def _periodic(self, live: Live) -> None:
        # 5.2.12 timeInterval: the current state of the selected entities, every interval
        # stored before the floor existed: never spin
        interval = max(float(live.doc["timeInterval"]), MIN_TIME_INTERVAL)
        while not live.deleted:
            await asyncio.sleep(interval)
            if state.status_of(live.doc, now_iso()) != state.ACTIVE:
                continue
            try:
                entities = await current_state(self.store, live)
            except Exception:
                log.exception("subscription %s: periodic query failed", live.id)
                continue
            if entities:
                self._enqueue(live, Job(entities=entities))

    # -- pending notifications across restarts (subscriptions.pending) ------------------
    def queued(self) -> int:
        """Notifications waiting to be sent, over every subscription (a gauge)."""
        return sum(len(live.channel) for live in self._live.values())

    async def _resume(self, only: set[str] | None = None) -> None:
        """Queue again the stored notifications (of the subscriptions ``only`` names)."""
        stored = [entry for entry in await pending.load(self.pending, pending.JOBS)
                  if only is None or sub_key(entry[0], entry[1]) in only]
        channels: dict[tuple[str, str], Any] = {}
        for live in self._live.values():
            if only is None or sub_key(live.tenant, live.id) in only:
                held = {r for job in live.channel.snapshot() for r in job.records}
                channels[(live.tenant, live.id)] = self._resumer(live, held)
        resumed = await pending.resume(self.journal, stored, channels)
        for tenant, sub_id, count in resumed:
            log.info("subscription %s (tenant %r): %d pending notification(s) resumed",
                     sub_id, tenant, count)
        await self.journal.flush()

    @staticmethod
    def _resumer(live: Live, held: set[str]) -> Callable[[Job], None]:
        def offer(job: Job) -> None:
            if not held.intersection(job.records):  # not queued here already
                live.channel.offer(job)
        return offer


__all__ = ["SubscriptionManager"]
