"""Subscriptions that cover registered sources (5.8.1.4, 5.8.5.4): the consumer half.

Creating an entity subscription (without ``localOnly``) in a tenant with
registrations:

- creates an internal Context Source Registration Subscription (5.11.2) for the
  subscription's entity types, whose notifications come back here
  (``/ngsi-ld/ex/csource-notify``): a registration that starts to match later
  gets its copy then;
- sends each matching registration that supports ``createSubscription`` a
  reduced copy of the subscription (its own id, no ``q`` with
  ``splitEntities``), whose notification endpoint is this broker
  (``/ngsi-ld/ex/remote-notify``, the path of 5814_01: the spec leaves it to
  the implementation);
- a notification arriving there is merged with what this broker holds of each
  entity (4.5.5) and offered to the local subscription alone, which matches it
  like a local change (its ``q`` re-checked on the merged entity) and notifies
  its subscriber under its own id.

Updating the subscription (5.8.2) updates its copies: each copy at a source the
subscription still covers gets a PATCH with the members changed (those removed
sent as ``null``); a copy the source no longer has or refuses to change is made
again; a source covered no more loses its copy and one covered now gets one
(the new ``entities``); the internal registration subscription follows the
types.  Deleting the subscription deletes the copies at the sources (5.8.5.4)
and the internal registration subscription.

The copies are records of their tenant (collection ``subscriptionCopies``, one
per local subscription: its body and @context, the internal registration
subscription, each copy's id, URL and headers), written when a copy is made or
refused and deleted with the subscription; :meth:`DistributedSubscriptions.load`
reads them back at start.  A restart therefore neither forgets a copy (its
notifications still reach the local subscription) nor makes a second one (a
registration that has a copy is never sent another).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from broker.federation.client import ForwardingClient, Outgoing
from broker.federation.registry import RegistrationSource
from broker.federation.wire import API, base_url
from broker.service.ports import ContextResolving
from ngsi_ld.changes import ENTITY_UPDATED, ChangeEvent, diff
from ngsi_ld.entity import parse_entity
from ngsi_ld.errors import BadRequestData, NgsiLdError, ResourceNotFound
from ngsi_ld.federation import (
    LOCAL,
    Fragment,
    Registration,
    Selection,
    append_via,
    candidates,
    forward_headers,
    merge_entity,
)
from ngsi_ld.headers import parse_link_context
from ngsi_ld.model import Entity
from ngsi_ld.query import TypeName, TypeOr
from ngsi_ld.source_identity import source_alias

__all__ = ["COPIES", "CSOURCE_NOTIFY", "REMOTE_NOTIFY", "DistributedSubscriptions"]

log = logging.getLogger("broker.federation")

#: where the sources' notifications of the copies arrive (the path 5814_01 uses)
REMOTE_NOTIFY = "/ngsi-ld/ex/remote-notify"
#: where the internal registration subscriptions notify
CSOURCE_NOTIFY = "/ngsi-ld/ex/csource-notify"
#: members of a subscription its copies do not carry
_NOT_COPIED = frozenset({"id", "@context", "notification", "localOnly", "status",
                         "createdAt", "modifiedAt", "jsonldContext"})
#: what a PATCH of a copy adds to the headers stored with it
_COPY_HEADERS = (("Content-Type", "application/json"),)


#: the store's record collection of the copies (per tenant, one record per local subscription)
COPIES = "subscriptionCopies"


class EntityReading(Protocol):
    """The store as the copies use it: entities read, the copies' records kept."""

    async def get_entity(self, tenant: str, entity_id: str) -> Entity | None: ...

    async def put_record(self, tenant: str, collection: str, record_id: str,
                         document: dict[str, Any]) -> None: ...

    async def delete_record(self, tenant: str, collection: str, record_id: str) -> bool: ...

    async def all_records(self, collection: str) -> list[tuple[str, dict[str, Any]]]: ...


class Delivering(Protocol):
    def deliver(self, event: ChangeEvent, sub_id: str) -> bool: ...


class RegistrationSubscribing(Protocol):
    async def create(self, tenant: str, data: Any, context: Any) -> str: ...

    async def delete(self, tenant: str, sub_id: str) -> None: ...

    async def update(self, tenant: str, sub_id: str, data: Any, context: Any) -> None: ...


@dataclass
class _Local:
    """An entity subscription whose sources have copies of it."""

    tenant: str
    sub_id: str
    body: dict[str, Any]
    context: Any
    csource_sub: str | None = None
    #: registration id -> (copy id, the copy's URL at the source, the headers to use)
    copies: dict[str, tuple[str, str, tuple[tuple[str, str], ...]]] = field(
        default_factory=dict)
    #: the updates of its copies are made one after the other, in the order asked
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False)
    #: the local subscription was deleted: no copy is made any more
    gone: bool = False

    def record(self) -> dict[str, Any]:
        """What is stored of it (JSON)."""
        return {"id": self.sub_id, "body": self.body, "context": self.context,
                "csourceSub": self.csource_sub,
                "copies": {reg: {"id": copy_id, "url": url, "headers": [list(h) for h in hdrs]}
                           for reg, (copy_id, url, hdrs) in self.copies.items()}}

    @classmethod
    def of_record(cls, tenant: str, record: Mapping[str, Any]) -> _Local:
        """The local subscription a record describes (KeyError, TypeError if damaged)."""
        local = cls(tenant, str(record["id"]), dict(record["body"]), record.get("context"),
                    record.get("csourceSub"))
        for reg, copy in dict(record.get("copies") or {}).items():
            headers = tuple((str(k), str(v)) for k, v in copy.get("headers") or ())
            local.copies[str(reg)] = (str(copy["id"]), str(copy["url"]), headers)
        return local


def _copy_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The members of a subscription its copies carry (without id and notification)."""
    copy = {k: v for k, v in body.items() if k not in _NOT_COPIED}
    if copy.get("splitEntities") is True:
        copy.pop("q", None)  # 5.8.1.4: filters are applied here, on the merged entity
    return copy


def _types(body: Mapping[str, Any]) -> list[str]:
    out = []
    for selector in body.get("entities") or ():
        if isinstance(selector, dict) and isinstance(selector.get("type"), str):
            out.append(selector["type"])
    return out


class DistributedSubscriptions:
    """Copies of entity subscriptions at the registered sources (see the module doc)."""

    def __init__(self, registrations: RegistrationSource, client: ForwardingClient,
                 resolver: ContextResolving, store: EntityReading, manager: Delivering,
                 *, base_url: str, digest: str, timeout: float = 5.0) -> None:
        self.registrations = registrations
        self.client = client
        self.resolver = resolver
        self.store = store
        self.manager = manager
        self.base_url = base_url.rstrip("/")
        self.digest = digest
        self.timeout = timeout
        self.csource_subs: RegistrationSubscribing | None = None
        self._locals: dict[tuple[str, str], _Local] = {}
        #: copy id -> (tenant, local subscription id, registration id)
        self._copies: dict[str, tuple[str, str, str]] = {}
        #: internal registration subscription id -> (tenant, local subscription id)
        self._internal: dict[str, tuple[str, str]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- persistence ---------------------------------------------------------------------------
    async def load(self) -> None:
        """Read the stored copies back (at start, before registration subscriptions notify);
        a damaged record is logged and skipped."""
        for tenant, record in await self.store.all_records(COPIES):
            try:
                local = _Local.of_record(tenant, record)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                log.warning("subscription copies %r: damaged record skipped (%s)",
                            record.get("id"), exc)
                continue
            self._locals[(tenant, local.sub_id)] = local
            if local.csource_sub is not None:
                self._internal[local.csource_sub] = (tenant, local.sub_id)
            for registration_id, (copy_id, _, _) in local.copies.items():
                self._copies[copy_id] = (tenant, local.sub_id, registration_id)
        if self._copies:
            log.info("%d subscription copies at context sources loaded", len(self._copies))

    async def _save(self, local: _Local) -> None:
        if self._locals.get((local.tenant, local.sub_id)) is local:
            await self.store.put_record(local.tenant, COPIES, local.sub_id, local.record())

    # -- lifecycle of a local subscription --------------------------------------------------
    async def created(self, tenant: str, sub_id: str, body: Any, context: Any) -> None:
        """A local entity subscription was created: copies to the matching sources.

        Without a registration in its tenant it is only remembered (and stored): a
        source registered later gets its copy then (:meth:`on_registration`)."""
        if not isinstance(body, dict) or body.get("localOnly") is True:
            return
        types = _types(body)
        if not types:
            return
        local = self._locals[(tenant, sub_id)] = _Local(tenant, sub_id, dict(body), context)
        if not self.registrations.holds(tenant):
            await self._save(local)
            return
        expand = (await self.resolver.active(context)).expand_term
        # sent in the background: creating the subscription never waits for a source
        self._background(self._serially(local, *(
            self._copy(local, registration)
            for registration in self._matching(tenant, local, expand))))
        if self.csource_subs is not None:
            internal = {"type": "Subscription",
                        "entities": [{"type": t} for t in types],
                        "notification": {"endpoint": {"uri": self.base_url + CSOURCE_NOTIFY}}}
            try:
                local.csource_sub = await self.csource_subs.create(tenant, internal, context)
                self._internal[local.csource_sub] = (tenant, sub_id)
            except NgsiLdError as exc:
                log.warning("subscription %s: no registration subscription: %s", sub_id, exc)
        await self._save(local)

    # 5.8.1.4, 5.8.5.4: registrations that come, change and go
    def on_registration(self, tenant: str, before: Registration | None,
                        after: Registration | None) -> None:
        """The registry's listener (this process's changes): a registration created or
        changed gives its copy to every local subscription of the tenant it now matches
        and none has at it; one deleted, expired or no longer matching takes its copies
        away (deleted at the source, if it still answers)."""
        gone = before.id if before is not None else None
        for local in [lo for (t, _), lo in self._locals.items() if t == tenant]:
            if after is not None:
                self._background(self._serially(local, self._follow(local, after)))
            elif gone is not None and gone in local.copies:
                self._background(self._serially(local, self._drop(local, gone)))

    async def _follow(self, local: _Local, registration: Registration) -> None:
        expand = (await self.resolver.active(local.context)).expand_term
        if any(r.id == registration.id for r in self._matching(local.tenant, local, expand)):
            await self._copy(local, registration)
        elif registration.id in local.copies:
            await self._drop(local, registration.id)

    async def _drop(self, local: _Local, registration_id: str) -> None:
        copy = local.copies.pop(registration_id, None)
        if copy is None:
            return
        copy_id, url, headers = copy
        self._copies.pop(copy_id, None)
        await self._save(local)
        await self.client.send(Outgoing("DELETE", url, headers, None, self.timeout))

    # 5.8.2 with 5.8.1.4: the copies follow an update of the subscription
    async def updated(self, tenant: str, sub_id: str, body: dict[str, Any],
                      context: Any) -> None:
        """The local subscription was updated: ``body`` is the whole subscription now (in
        the terms of ``context``).  Copies are changed, made or deleted in the background,
        one update after the other."""
        local = self._locals.get((tenant, sub_id))
        if local is None:  # it had no copies to make (localOnly, no type): it may now
            await self.created(tenant, sub_id, body, context)
            return
        if body.get("localOnly") is True or not _types(body):
            await self.deleted(tenant, sub_id)  # its copies and registration subscription go
            return
        before, same_context = local.body, context == local.context
        local.body, local.context = dict(body), context
        if (_types(before) != _types(body) or not same_context) \
                and local.csource_sub is not None and self.csource_subs is not None:
            internal = {"entities": [{"type": t} for t in _types(body)]}
            try:
                await self.csource_subs.update(tenant, local.csource_sub, internal, context)
            except NgsiLdError as exc:
                log.warning("subscription %s: registration subscription not updated: %s",
                            sub_id, exc)
        await self._save(local)
        if not self.registrations.holds(tenant):
            return
        expand = (await self.resolver.active(context)).expand_term
        wanted = self._matching(tenant, local, expand)
        self._background(self._follow_update(local, wanted, _copy_body(before),
                                             same_context))

    async def _serially(self, local: _Local, *work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (together) once what was asked before for ``local``'s copies is
        done: a copy being made is never updated, dropped or made twice meanwhile."""
        async with local.lock:
            if local.gone:
                for coroutine in work:
                    coroutine.close()
                return
            await asyncio.gather(*work)

    async def _follow_update(self, local: _Local, wanted: list[Registration],
                             before: dict[str, Any], same_context: bool) -> None:
        async with local.lock:
            if local.gone:
                return
            keep = {r.id for r in wanted}
            work = [self._drop(local, reg) for reg in list(local.copies) if reg not in keep]
            for registration in wanted:
                if registration.id not in local.copies:
                    work.append(self._copy(local, registration))
                elif same_context:
                    work.append(self._revise(local, registration, before))
                else:  # its names are in another @context now: the copy is made again
                    work.append(self._renew(local, registration))
            await asyncio.gather(*work)

    async def _revise(self, local: _Local, registration: Registration,
                      before: dict[str, Any]) -> None:
        """PATCH the copy at its source with what changed (removed members as null); a
        copy gone or refused is made again."""
        copy = local.copies.get(registration.id)
        if copy is None:
            return
        _, url, headers = copy
        now = _copy_body(local.body)
        fragment = {k: v for k, v in now.items() if before.get(k) != v}
        fragment.update((k, None) for k in before if k not in now)
        if not fragment:
            return
        answer = await self.client.send(Outgoing("PATCH", url, headers + _COPY_HEADERS,
                                                 orjson.dumps(fragment), self.timeout))
        if answer.status is not None and answer.status < 300:
            return
        log.info("subscription %s: %s did not update its copy (%s): made again",
                 local.sub_id, registration.id, answer.status or answer.reason)
        await self._renew(local, registration)

    async def _renew(self, local: _Local, registration: Registration) -> None:
        await self._drop(local, registration.id)
        await self._copy(local, registration)

    async def deleted(self, tenant: str, sub_id: str) -> None:
        """The local subscription was deleted: its copies and internal subscription go."""
        local = self._locals.pop((tenant, sub_id), None)
        if local is None:
            return
        local.gone = True
        await self.store.delete_record(tenant, COPIES, sub_id)
        if local.csource_sub is not None and self.csource_subs is not None:
            self._internal.pop(local.csource_sub, None)
            with contextlib.suppress(NgsiLdError):  # already gone (it expired)
                await self.csource_subs.delete(tenant, local.csource_sub)
        async with local.lock:  # a copy being made is there before it is deleted
            deletions = []
            for copy_id, url, headers in local.copies.values():
                self._copies.pop(copy_id, None)
                deletions.append(Outgoing("DELETE", url, headers, None, self.timeout))
            await self.client.send_all(deletions)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Wait for the copies being sent (at application cleanup)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _matching(self, tenant: str, local: _Local,
                  expand: Callable[[str], str]) -> list[Registration]:
        leaves = tuple(TypeName(expand(t)) for t in _types(local.body))
        selection = Selection(type_expr=leaves[0] if len(leaves) == 1 else TypeOr(leaves))
        now = datetime.now(UTC)
        return [c.registration for c in candidates(self.registrations.of(tenant, now), selection,
                                                    now=now)
                if c.registration.supports("createSubscription")]


    async def _copy(self, local: _Local, registration: Registration) -> None:
        if registration.id in local.copies or local.gone:
            return
        copy_id = f"urn:ngsi-ld:Subscription:remote:{uuid.uuid4()}"
        url = base_url(registration.endpoint) + API + "/subscriptions"
        # known before the source answers: it may notify before its answer arrives
        local.copies[registration.id] = (copy_id, f"{url}/{copy_id}", ())
        self._copies[copy_id] = (local.tenant, local.sub_id, registration.id)
        copy = _copy_body(local.body)
        copy["id"] = copy_id
        copy["notification"] = {"endpoint": {"uri": self.base_url + REMOTE_NOTIFY,
                                             "accept": "application/json"},
                                "format": "normalized"}
        context_url = await self.resolver.response_url(local.context, local.tenant)
        alias = source_alias(self.digest, local.tenant)
        outbound = forward_headers(registration, via=append_via((), alias),
                                   context_url=context_url, incoming={}, has_body=True)
        headers = tuple((k, v) for k, v in outbound.headers if k != "Content-Type")
        local.copies[registration.id] = (copy_id, f"{url}/{copy_id}", headers)
        answer = await self.client.send(Outgoing("POST", url, outbound.headers,
                                                 orjson.dumps(copy), self.timeout))
        if answer.status is None or answer.status >= 300:
            log.info("subscription %s: %s refused its copy (%s)", local.sub_id,
                     registration.id, answer.status or answer.reason)
            local.copies.pop(registration.id, None)
            self._copies.pop(copy_id, None)
            return
        await self._save(local)

    # -- notifications ------------------------------------------------------------------------
    async def registrations_changed(self, data: Any) -> None:
        """A ContextSourceNotification of an internal registration subscription: the
        registrations newly matching get their copies."""
        if not isinstance(data, dict):
            raise BadRequestData("a notification must be a JSON object")
        found = self._internal.get(str(data.get("subscriptionId")))
        if found is None or data.get("triggerReason") not in (None, "newlyMatching",
                                                               "updated"):
            return
        local = self._locals.get(found)
        if local is None:
            return
        wanted = {r.get("id") for r in data.get("data") or () if isinstance(r, dict)}
        now = datetime.now(UTC)
        self._background(self._serially(local, *(
            self._copy(local, registration)
            for registration in self.registrations.of(local.tenant, now)
            if registration.id in wanted and registration.supports("createSubscription"))))

    async def notified(self, data: Any, link: str | None) -> int:
        """A source notified a copy: each entity merged with the local one and offered to
        the local subscription; the number of entities it notified."""
        if not isinstance(data, dict) or not isinstance(data.get("data"), list):
            raise BadRequestData("a notification needs a data array")
        found = self._copies.get(str(data.get("subscriptionId")))
        if found is None:
            raise ResourceNotFound(f"no subscription copy {data.get('subscriptionId')}")
        tenant, sub_id, registration_id = found
        context: Any = data.get("@context", parse_link_context(link))
        notified = 0
        for item in data["data"]:
            if not isinstance(item, dict):
                raise BadRequestData("a notified entity must be a JSON object")
            own = item.get("@context", context)
            ctx = await self.resolver.active(own)
            fragment = ctx.expand_entity(parse_entity(
                {k: v for k, v in item.items() if k != "@context"}))
            here = await self.store.get_entity(tenant, fragment["id"])
            parts = [Fragment(dict(fragment), registration_id)]
            if here is not None:
                parts.append(Fragment(dict(here), LOCAL))
            merged: Any = merge_entity(parts)
            event = diff(tenant, here, merged) or ChangeEvent(
                tenant, fragment["id"], here, merged, ENTITY_UPDATED)
            notified += self.manager.deliver(event, sub_id)
        return notified

    def copies_of(self, tenant: str, sub_id: str) -> Sequence[str]:
        """The ids of the copies of a local subscription (for tests and tools)."""
        local = self._locals.get((tenant, sub_id))
        return [] if local is None else [c[0] for c in local.copies.values()]
