"""What registered Context Sources hold of one entity type or attribute, so that the
counts of distributed discovery (5.7.7 ``entityCount``, 5.7.9 and 5.7.10
``attributeCount``) count each entity and attribute instance once.

A discovery answer is a number: a source holding an entity this broker holds too
(or another source does) would be counted twice if the numbers were added.
When more than one party reports a type or an attribute, the service asks for
:meth:`Holdings.held`: the same registrations the discovery operation asked
(those supporting it that may hold the name, ``Via`` and ``local`` as for every
forwarded request) are asked which entities they hold, with a query
(``GET /entities?type=<type>&pick=id``, or ``?attrs=<attr>`` for the instances
of an attribute: 4.5.5 merges the instances of one entity that have the same
``datasetId``), in pages of ``SOURCE_PAGE``, the first one counted.

The answer is the set of keys: ``(entity id, None)`` for a type, ``(entity id,
datasetId or None)`` for an attribute.  None when the keys cannot all be known
(a registration asked does not support ``queryEntity``, is cooling down, fails,
answers something unreadable or more than ``MAX_READ`` entities): the service then
keeps the sum of the counts, an upper bound (docs/federation.md, "Discovery counts").
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from broker.federation.base import MAX_READ, SOURCE_PAGE, hops_of
from broker.federation.client import Incoming, Outgoing, header
from broker.federation.discovery import TYPE_OPERATIONS, Discovery, may_hold
from broker.federation.wire import API, base_url
from broker.service.call import Call
from ngsi_ld.federation import Registration, append_via, forward_headers, visited
from ngsi_ld.headers import parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.params import flag

__all__ = ["Holdings", "Key"]

#: an entity (id, None) or an attribute instance (entity id, datasetId)
Key = tuple[str, str | None]
_NOT_ATTRIBUTES = frozenset({"id", "type", "@context", "scope", "createdAt", "modifiedAt"})


def _keys(data: Any, ctx: ActiveContext, attribute: str | None) -> set[Key] | None:
    """The keys one page of a query answer holds (None: not a page of entities)."""
    if not isinstance(data, list):
        return None
    out: set[Key] = set()
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return None
        if attribute is None:
            out.add((item["id"], None))
            continue
        for name, value in item.items():
            if name in _NOT_ATTRIBUTES or ctx.expand_term(name) != attribute:
                continue
            for instance in value if isinstance(value, list) else [value]:
                if isinstance(instance, dict):
                    dataset = instance.get("datasetId")
                    out.add((item["id"], dataset if isinstance(dataset, str) else None))
    return out


def _total(incoming: Incoming) -> int | None:
    value = header(incoming.headers, "NGSILD-Results-Count")
    return int(value) if value is not None and value.isdigit() else None


class Holdings(Discovery):
    """The discovery half of the sources, with what they hold of one name (see above)."""

    async def held(self, tenant: str, operation: str, call: Call,
                   name: str) -> frozenset[Key] | None:
        if flag(call.params, "local"):
            return frozenset()
        hops = hops_of(call)
        alias = self.alias(tenant)
        seen = visited(hops)
        if alias in seen:
            return frozenset()  # the request came back: answered from local data
        asked = [r for r in self.registrations.of(tenant, self.clock())
                 if r.supports(operation) and r.context_source_alias not in seen
                 and may_hold(r, operation in TYPE_OPERATIONS, name)]
        if any(not r.supports("queryEntity") or self._cooling_down(r) for r in asked):
            return None  # a source that cannot say which entities it holds
        client_context = parse_link_context(call.link)
        ctx = call.active or await self.resolver.active(client_context)
        context_url = await self._context(client_context if client_context is not None
                                          else ctx.user_context, tenant)
        via = append_via(hops, alias)
        attribute = None if operation in TYPE_OPERATIONS else name
        found = await asyncio.gather(*(
            self._held_one(tenant, r, ctx, call, context_url, via, name, attribute)
            for r in asked))
        out: set[Key] = set()
        for keys in found:
            if keys is None:
                return None
            out |= keys
        return frozenset(out)

    async def _held_one(self, tenant: str, registration: Registration, ctx: ActiveContext,
                        call: Call, context_url: str, via: str, name: str,
                        attribute: str | None) -> set[Key] | None:
        outbound = forward_headers(registration, via=via, context_url=context_url,
                                   incoming=call.headers, has_body=False)
        short = ctx.compact_iri(name)
        query = ([("type", short), ("pick", "id")] if attribute is None
                 else [("attrs", short)])  # 4.21: attrs and pick do not go together
        if registration.acts_locally:
            query.append(("local", "true"))
        url = base_url(registration.endpoint) + API + "/entities?" + urlencode(query)
        deadline = self._deadline(registration)

        def page(offset: int, count: bool = False) -> Outgoing:
            paging = [("limit", str(SOURCE_PAGE))] + ([("offset", str(offset))] if offset
                                                      else [])
            if count:
                paging.append(("count", "true"))
            return Outgoing("GET", f"{url}&{urlencode(paging)}", outbound.headers, None,
                            deadline)

        first = await self.client.send(page(0, count=True))
        total = _total(first)
        if total is None or total > MAX_READ:
            self._delivered(tenant, registration, first.status is not None
                            and first.status < 300)
            return None
        rest = await self.client.send_all([page(offset)
                                           for offset in range(SOURCE_PAGE, total, SOURCE_PAGE)])
        out: set[Key] = set()
        for incoming in (first, *rest):
            keys = await self._page_keys(incoming, context_url, attribute)
            if keys is None:
                self._delivered(tenant, registration, False)
                return None
            out |= keys
        self._delivered(tenant, registration, True)
        return out

    async def _page_keys(self, incoming: Incoming, context_url: str,
                         attribute: str | None) -> set[Key] | None:
        if incoming.status is None or incoming.status >= 300 or incoming.too_big:
            return None
        read = await self._read_answer(incoming.body, incoming.headers, context_url)
        return None if read is None else _keys(read[0], read[1], attribute)

