"""Context Source Registration Subscriptions (clause 5.11): API, matching and delivery.

A registration subscription is a 5.2.12 Subscription whose selectors mean
registrations: ``entities`` and ``watchedAttributes`` select RegistrationInfos
(one :class:`~ngsi_ld.federation.RegistrationQuery` per entity selector),
``q`` and ``csf`` hold on the registration's Context Source Properties,
``geoQ`` on its ``location``, ``scopeQ`` on its ``scope``, ``temporalQ`` on its
``observationInterval``/``managementInterval`` (5.11.7).  It is told of every
registration created, updated, deleted or expired in this process
(``broker.service.registry``) and notifies with a ContextSourceNotification
(5.3.2) whose ``triggerReason`` is ``newlyMatching``, ``updated`` or
``noLongerMatching``, ``data`` holding the registrations reduced to their
relevant RegistrationInfos.

The members, the queries they compile to and the notification's journal form are
``subscriptions.csource_model``.  What it shares with entity subscriptions
(``subscriptions.manager``): the validation of the common members
(``subscriptions.model``), the delivery
(one :class:`~subscriptions.delivery.Delivery`: the same HTTP pool and MQTT
connections, retries, timeouts), a :class:`~subscriptions.delivery.Channel`
per subscription (in order; a slow endpoint delays only itself), the status
machine and notification members (``subscriptions.state``), and persistence
as store records (collection ``csourceSubscriptions``).

Choices:

* creating a subscription, and updating it, sends every registration that
  matches then (``newlyMatching``), if any (5.11.2.4, 047_16);
* ``timeInterval``: every interval, the matching registrations (if any), and
  no notification on changes (5.11.7);
* ``throttling``: changes inside the period are held, the latest per
  registration, and sent together when it ends;
* several processes on one store: every process knows every subscription
  (``reload``), and the process where a registration changed notifies;
* every notification queued is written to the store (collection
  ``pendingCsourceNotifications``) before the change that queued it is answered,
  by the journal of entity subscriptions (``subscriptions.pending``, with the
  codec ``subscriptions.csource_model.CSOURCE_JOBS``): the registration operations await
  :meth:`RegistrationSubscriptions.settled` (its journal is a barrier of the service), and a
  restart, even a ``kill -9``, sends them (at least once).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from ngsi_ld.errors import AlreadyExists, ResourceNotFound
from ngsi_ld.federation import Registration, RegistrationQuery, render_registration, trigger_reason
from ngsi_ld.timeutil import now_iso, parse_datetime
from subscriptions import pending, state
from subscriptions.bookkeeping import Ledger
from subscriptions.csource_model import (
    CSOURCE_JOBS,
    CsourceJob,
    check_csource,
    compile_queries,
    parse_csource_members,
)
from subscriptions.delivery import QUEUE_SIZE, Channel, Delivery
from subscriptions.live import halt, sub_key
from subscriptions.model import MIN_TIME_INTERVAL, check_creation, check_fragment, merge_fragment
from subscriptions.notification import notification_headers
from subscriptions.ports import ContextResolving, Counters
from subscriptions.repository import Repository, repository_for

__all__ = ["COLLECTION", "NOTIFICATION_TYPE", "PENDING", "RegistrationSubscriptions",
           "compile_queries", "parse_csource_members"]

log = logging.getLogger("broker.csourceSubscriptions")

COLLECTION = "csourceSubscriptions"
#: the record collection of their pending notifications (``subscriptions.pending``)
PENDING = "pendingCsourceNotifications"
#: 5.3.2: the type of a CsourceNotification
NOTIFICATION_TYPE = "ContextSourceNotification"

@dataclass(eq=False)
class CsourceLive:
    """A registration subscription as the running broker holds it."""

    tenant: str
    doc: dict[str, Any]
    queries: tuple[RegistrationQuery, ...]
    compact: Callable[[str], str]
    link_url: str
    body_context: Any
    channel: Channel
    periodic: asyncio.Task[None] | None = None
    flush: asyncio.TimerHandle | None = None
    next_allowed: float = 0.0
    pending: dict[str, CsourceJob] = field(default_factory=dict)
    cooldown_until: float = 0.0
    deleted: bool = False

    @property
    def id(self) -> str:
        return str(self.doc["id"])

    @property
    def active(self) -> bool:
        return state.status_of(self.doc, now_iso()) == state.ACTIVE


#: tenant -> its registrations that apply now
Lookup = Callable[[str], Sequence[Registration]]


class RegistrationSubscriptions:
    """Every tenant's registration subscriptions: CRUD, matching, delivery (5.11)."""

    def __init__(self, store: object, resolver: ContextResolving, registrations: Lookup,
                 delivery: Delivery, metrics: Counters | None = None,
                 repository: Repository | None = None, queue_size: int = QUEUE_SIZE,
                 pending_repository: Repository | None = None) -> None:
        self.resolver = resolver
        #: tenant -> its registrations that apply now (the registry's ``of``)
        self.registrations = registrations
        self.delivery = delivery
        self.metrics = metrics
        self.repository = repository if repository is not None else \
            repository_for(store, COLLECTION)
        self.queue_size = queue_size
        #: where queued notifications wait across a restart (subscriptions.pending)
        self.pending = pending_repository if pending_repository is not None else \
            repository_for(store, PENDING)
        self.journal = pending.Journal(self.pending, CSOURCE_JOBS)
        self._persister: asyncio.Task[None] | None = None
        self._live: dict[str, CsourceLive] = {}
        self.ledger = Ledger(self.repository, metrics, "registration subscription",
                             lambda: self._live)

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Load the stored subscriptions (periodic ones resume)."""
        for tenant, doc in await self.repository.all():
            try:
                self._register(await self._compile(tenant, doc))
            except Exception:
                log.exception("registration subscription %s could not be resumed", doc.get("id"))
        self.ledger.start()
        await self._resume()
        self._persister = asyncio.get_running_loop().create_task(self.journal.keep_written())

    async def close(self) -> None:
        """Stop workers and timers, write back the counters (the delivery is not ours)."""
        await self.ledger.stop()
        if self._persister is not None:
            self._persister.cancel()
        await self.journal.flush()
        lives = list(self._live.values())
        for live in lives:
            await self._stop(live)
        await self.ledger.flush(lives)

    async def drain(self) -> None:
        """Wait until every queued notification was handled (tests)."""
        for live in list(self._live.values()):
            await live.channel.drain()

    # -- API (5.11.2 to 5.11.6) ----------------------------------------------------------
    async def create(self, tenant: str, data: Any, context: Any) -> str:
        """5.11.2 Create; returns the id.  Matching registrations are notified at once."""
        ctx = await self.resolver.active(context)
        now = now_iso()
        members = parse_csource_members(data, ctx.expand_term, parse_datetime(now),
                                        partial=False)
        check_creation(members)
        sub_id = members.pop("id", None) or f"urn:ngsi-ld:Subscription:{uuid.uuid4()}"
        if sub_key(tenant, sub_id) in self._live or await self.repository.get(tenant, sub_id):
            raise AlreadyExists(f"subscription {sub_id} already exists")
        doc: dict[str, Any] = {"id": sub_id, **members}
        # 5.11.2 (038_01): a jsonldContext the client did not give is not shown; the
        # notifications then use the subscription's own @context, kept internally
        doc["_notifyContext"] = await self.resolver.response_url(context, tenant)
        doc["_context"] = context
        doc["createdAt"] = doc["modifiedAt"] = now
        check_csource(doc)
        live = await self._compile(tenant, doc)
        await self.repository.put(tenant, doc)
        self._register(live)
        self._initial(live)
        await self.settled()
        return sub_id

    async def get(self, tenant: str, sub_id: str) -> dict[str, Any]:
        """5.11.4 Retrieve: the stored document (internal names), once the notifications
        in flight have their outcome (``subscriptions.bookkeeping``)."""
        live = await self._find(tenant, sub_id)
        await self.ledger.settled(live)
        return live.doc

    async def of_tenant(self, tenant: str) -> list[dict[str, Any]]:
        """5.11.5 Query: every subscription of the tenant, sorted by id."""
        return sorted((live.doc for live in self._live.values() if live.tenant == tenant),
                      key=lambda doc: str(doc["id"]))

    async def update(self, tenant: str, sub_id: str, data: Any, context: Any) -> None:
        """5.11.3 Update with a fragment; the registrations matching then are notified."""
        live = await self._find(tenant, sub_id)
        ctx = await self.resolver.active(context)
        now = now_iso()
        fragment = parse_csource_members(data, ctx.expand_term, parse_datetime(now),
                                         partial=True)
        check_fragment(fragment, sub_id)
        doc = merge_fragment(live.doc, fragment)
        if "q" in fragment or "csf" in fragment:
            doc["_context"] = context
        if "q" in fragment or "csf" in fragment or "jsonldContext" in fragment:
            doc["_notifyContext"] = await self.resolver.response_url(doc.get("_context"),
                                                                    tenant)
        doc["modifiedAt"] = now
        check_csource(doc)
        fresh = await self._compile(tenant, doc)
        await self.repository.put(tenant, doc)
        fresh.channel = live.channel  # what is queued is still sent, in order
        fresh.cooldown_until = live.cooldown_until
        await self._stop(live, keep_channel=True)
        self._register(fresh)
        self._initial(fresh)
        await self.settled()

    async def delete(self, tenant: str, sub_id: str) -> None:
        """5.11.6 Delete."""
        live = await self._find(tenant, sub_id)
        for job in live.channel.snapshot():  # its queue goes, and the records with it
            self.journal.done(tenant, job.records)
        await self._stop(live)
        self.ledger.forget(tenant, sub_id)
        await self.repository.delete(tenant, sub_id)

    async def reload(self, tenant: str, sub_id: str) -> None:
        """Catch up with a subscription another process created, changed or deleted."""
        doc = await self.repository.get(tenant, sub_id)
        live = self._live.get(sub_key(tenant, sub_id))
        if doc is None:
            if live is not None:
                await self._stop(live)
            return
        if live is not None and live.doc == doc:
            return
        try:
            fresh = await self._compile(tenant, doc)
        except Exception:
            log.exception("registration subscription %s could not be loaded", sub_id)
            return
        if live is not None:
            fresh.channel = live.channel
            await self._stop(live, keep_channel=True)
        self._register(fresh)

    @staticmethod
    def status(doc: dict[str, Any]) -> state.Status:
        return state.status_of(doc, now_iso())

    async def _find(self, tenant: str, sub_id: str) -> CsourceLive:
        live = self._live.get(sub_key(tenant, sub_id))
        if live is None:
            raise ResourceNotFound(f"subscription {sub_id} not found")
        return live

    # -- compiling ------------------------------------------------------------------------
    async def _compile(self, tenant: str, doc: dict[str, Any]) -> CsourceLive:
        query_ctx = await self.resolver.active(doc.get("_context"))
        notify_url = doc.get("jsonldContext") or doc["_notifyContext"]
        notify_ctx = await self.resolver.active(notify_url)
        key = sub_key(tenant, doc["id"])
        return CsourceLive(
            tenant=tenant, doc=doc, queries=compile_queries(doc, query_ctx.expand_term),
            compact=notify_ctx.compact_iri, link_url=notify_url,
            body_context=self.resolver.body_context(notify_url),
            channel=Channel(lambda job: self._handle(tenant, key, job), self.queue_size),
        )

    def _register(self, live: CsourceLive) -> None:
        self._live[sub_key(live.tenant, live.id)] = live
        if "timeInterval" in live.doc:
            live.periodic = asyncio.get_running_loop().create_task(self._periodic(live))

    async def _stop(self, live: CsourceLive, *, keep_channel: bool = False) -> None:
        key = sub_key(live.tenant, live.id)
        if self._live.get(key) is live:
            del self._live[key]
        await halt(live, keep_channel=keep_channel)

    # -- matching (5.11.7) -----------------------------------------------------------------
    def _matching(self, live: CsourceLive) -> list[Registration]:
        now = parse_datetime(now_iso())
        return [reg for reg in self.registrations(live.tenant)
                if any(query.matches(reg, now) for query in live.queries)]

    def _initial(self, live: CsourceLive) -> None:
        if "timeInterval" in live.doc or not live.active:
            return  # a periodic subscription sends its first notification from its timer
        found = self._matching(live)
        if found:
            self._offer(live, CsourceJob("newlyMatching", found))

    def on_registration(self, tenant: str, before: Registration | None,
                        after: Registration | None) -> None:
        """The registry's listener: notify the subscriptions a registration change concerns."""
        now = parse_datetime(now_iso())
        if after is None and before is not None and before.expires_at is not None \
                and before.expired(now):
            # expired: whether it was matching is judged just before it expired
            now = parse_datetime(before.expires_at) - timedelta(milliseconds=1)
        for live in list(self._live.values()):
            if live.tenant != tenant or "timeInterval" in live.doc or not live.active:
                continue
            reason = trigger_reason(live.queries, before, after, now)
            if reason is None:
                continue
            # a deleted (or expired) registration is shown as it was last
            shown = after if after is not None else before
            if shown is not None:
                self._dispatch(live, CsourceJob(reason, [shown]))

    def _dispatch(self, live: CsourceLive, job: CsourceJob) -> None:
        throttling = live.doc.get("throttling")
        if throttling is None:
            self._offer(live, job)
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if not live.pending and now >= live.next_allowed:
            live.next_allowed = now + throttling
            self._offer(live, job)
            return
        for reg in job.registrations:  # the latest change of each registration wins
            live.pending[reg.id] = CsourceJob(job.reason, [reg])
        if live.flush is None:
            live.flush = loop.call_at(live.next_allowed, self._release, live)

    def _release(self, live: CsourceLive) -> None:
        live.flush = None
        if live.deleted or not live.pending:
            return
        jobs = list(live.pending.values())
        live.pending.clear()
        live.next_allowed = asyncio.get_running_loop().time() + live.doc.get("throttling", 0)
        for job in jobs:
            self._offer(live, job)

    def _offer(self, live: CsourceLive, job: CsourceJob) -> None:
        if not live.channel.offer(job):
            self.ledger.drop(live, len(job.registrations))
            return
        self.journal.note(live.tenant, live.id, job)

    async def _periodic(self, live: CsourceLive) -> None:
        interval = max(float(live.doc["timeInterval"]), MIN_TIME_INTERVAL)
        while not live.deleted:
            if live.active:
                found = self._matching(live)
                if found:
                    self._offer(live, CsourceJob("newlyMatching", found))
            await asyncio.sleep(interval)

    # -- delivery (5.3.2 CsourceNotification) --------------------------------------------
    async def _handle(self, tenant: str, key: str, job: CsourceJob) -> None:
        live = self._live.get(key)
        try:
            if live is not None and not live.deleted:
                await self._notify(live, job)
        finally:  # handled, or dropped: its records may go
            self.journal.done(tenant, job.records)

    async def _notify(self, live: CsourceLive, job: CsourceJob) -> None:
        now = now_iso()
        if self.ledger.cooling_down(live, now):
            return
        endpoint = live.doc["notification"]["endpoint"]
        accept = endpoint.get("accept", "application/json")
        if accept == "application/geo+json":
            accept = "application/json"  # registrations have no GeoJSON form
        data = [render_registration(self._relevant(live, reg), live.compact)
                for reg in job.registrations]
        body: dict[str, Any] = {}
        if accept == "application/ld+json":
            body["@context"] = live.body_context
        body.update({
            "id": f"urn:ngsi-ld:Notification:{uuid.uuid4()}",
            "type": NOTIFICATION_TYPE,
            "subscriptionId": live.id,
            "notifiedAt": now,
            "triggerReason": job.reason,
            "data": data,
        })
        headers = notification_headers(accept, live.link_url, live.tenant,
                                       endpoint.get("receiverInfo"))
        await self.ledger.deliver(live, self.delivery, headers, body, now)

    # -- pending notifications across restarts (subscriptions.pending) ------------------
    async def settled(self) -> None:
        """Wait until every notification queued so far is in the store (a barrier the
        registration operations await before answering; at once when none was queued)."""
        await self.journal.settled()

    async def _resume(self) -> None:
        """Queue again the notifications stored before a restart, before any new one."""
        stored = await pending.load(self.pending, CSOURCE_JOBS)
        offers: dict[tuple[str, str], Any] = {
            (live.tenant, live.id): live.channel.offer for live in self._live.values()}
        for tenant, sub_id, count in await pending.resume(self.journal, stored, offers):
            log.info("registration subscription %s (tenant %r): %d pending notification(s) "
                     "resumed", sub_id, tenant, count)
        await self.journal.flush()

    @staticmethod
    def _relevant(live: CsourceLive, registration: Registration) -> Registration:
        # 5.11.7 (047_03): only the RegistrationInfos the subscription selects
        infos = []
        for query in live.queries:
            for info in query.relevant(registration).information:
                if info not in infos:
                    infos.append(info)
        if not infos or len(infos) == len(registration.information):
            return registration
        kept = tuple(i for i in registration.information if i in infos)
        return replace(registration, information=kept)
