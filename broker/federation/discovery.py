"""Distributed discovery (4.3.6, 5.7.5 to 5.7.10): the entity types and attributes that
registered Context Sources hold, asked of them.

``GET /types``, ``/types/{type}``, ``/attributes`` and ``/attributes/{attr}``
(with or without ``details=true``) are forwarded, concurrently and each within
its deadline, to the tenant's registrations that support the operation
(Table 4.20-1: ``retrieveEntityTypes``, ``retrieveEntityTypeDetails``,
``retrieveEntityTypeInfo``, ``retrieveAttrTypes``, ``retrieveAttrTypeDetails``,
``retrieveAttrTypeInfo``; all in ``federationOps``, the default).  For one
type or one attribute, only the registrations that may hold it are asked: an
``information`` without ``entities`` (or with an entity of that type), and
without attribute names (or naming that attribute).

The answers are handed back as JSON with the @context they are written in
(the Link header of the answer, its inline ``@context``, or the one sent):
the service expands the names and merges them with its own summaries.  A
source that fails, times out or answers something else than JSON is an
``NGSILD-Warning`` (6.3.17), a 404 is no warning; ``Via`` is sent and checked
as for every forwarded request (6.3.18).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from broker.federation.base import SourcesBase, answer_problem, hops_of, relayed_warnings
from broker.federation.client import Outgoing, header
from broker.federation.wire import API, base_url
from broker.service.call import Call
from ngsi_ld.errors import NgsiLdError
from ngsi_ld.federation import Registration, append_via, forward_headers, source_warning, visited
from ngsi_ld.headers import parse_link_context
from ngsi_ld.jsonld import ActiveContext
from ngsi_ld.params import flag

__all__ = ["DISCOVERY_PATHS", "TYPE_OPERATIONS", "Discovery", "may_hold"]

#: Table 4.20-1 discovery operation -> the path it is asked at (``{}``: the name)
DISCOVERY_PATHS: dict[str, str] = {
    "retrieveEntityTypes": "/types", "retrieveEntityTypeDetails": "/types",
    "retrieveEntityTypeInfo": "/types/{}",
    "retrieveAttrTypes": "/attributes", "retrieveAttrTypeDetails": "/attributes",
    "retrieveAttrTypeInfo": "/attributes/{}",
}
_DETAILS = frozenset({"retrieveEntityTypeDetails", "retrieveAttrTypeDetails"})
#: the discovery operations that ask for types (the others ask for attributes)
TYPE_OPERATIONS = frozenset({"retrieveEntityTypes", "retrieveEntityTypeDetails",
                             "retrieveEntityTypeInfo"})


def may_hold(registration: Registration, by_type: bool, name: str | None) -> bool:
    """True if ``registration`` may know of the type (``by_type``) or attribute ``name``
    (expanded; None: of every one)."""
    if name is None:
        return True
    for info in registration.information:
        if by_type and (info.entities is None or any(
                e.has_type((name,)) for e in info.entities)):
            return True
        if not by_type:
            attributes = info.attributes
            if attributes is None or name in attributes:
                return True
    return False


class Discovery(SourcesBase):
    """The discovery half of :class:`~broker.federation.FederatedSources`."""

    async def discover(self, tenant: str, operation: str, call: Call,
                       name: str | None = None) -> Sequence[tuple[Any, ActiveContext]]:
        if flag(call.params, "local"):
            return ()  # 4.3.6.4
        hops = hops_of(call)
        alias = self.alias(tenant)
        seen = visited(hops)
        if alias in seen:
            return ()  # 6.3.18: the request came back; answered from local data
        expanded = None
        client_context = parse_link_context(call.link)
        ctx = call.active or await self.resolver.active(client_context)
        if name is not None:
            expanded = ctx.expand_term(name)
        asked = [r for r in self.registrations.of(tenant, self.clock())
                 if r.supports(operation) and r.context_source_alias not in seen
                 and may_hold(r, operation in TYPE_OPERATIONS, expanded)]
        if not asked:
            return ()
        context_url = await self._context(client_context if client_context is not None
                                          else ctx.user_context, tenant)
        via = append_via(hops, alias)
        results = await asyncio.gather(*(
            self._discover_one(tenant, registration, operation, name, call, context_url, via,
                               alias) for registration in asked))
        out: list[tuple[Any, ActiveContext]] = []
        for answer, warnings in results:
            call.warnings.extend(warnings)
            if answer is not None:
                out.append(answer)
        return out

    async def _discover_one(self, tenant: str, registration: Registration, operation: str,
                            name: str | None, call: Call, context_url: str | None, via: str,
                            agent: str) -> tuple[tuple[Any, ActiveContext] | None, list[str]]:
        if self._cooling_down(registration):
            text = source_warning(registration, agent, timed_out=True)
            return None, [text] if text else []
        outbound = forward_headers(registration, via=via, context_url=context_url,
                                   incoming=call.headers, has_body=False)
        path = DISCOVERY_PATHS[operation]
        if name is not None:
            path = path.format(quote(name, safe=":"))
        query = [("details", "true")] if operation in _DETAILS else []
        if registration.acts_locally:
            query.append(("local", "true"))
        url = base_url(registration.endpoint) + API + path
        if query:
            url += "?" + urlencode(query)
        incoming = await self.client.send(Outgoing("GET", url, outbound.headers, None,
                                                   self._deadline(registration)))
        relayed = relayed_warnings(incoming)
        if incoming.status == 404:
            self._delivered(tenant, registration, True)
            return None, relayed  # 6.3.17: not abnormal
        problem = answer_problem(registration, incoming, agent)
        answer = None
        if problem is None:
            answer = await self._read_answer(incoming.body, incoming.headers, context_url)
            if answer is None:
                problem = source_warning(registration, agent, status=incoming.status,
                                         invalid=True)
        self._delivered(tenant, registration, problem is None)
        return answer, [*relayed, *([problem] if problem else [])]

    async def _read_answer(self, body: bytes, headers: Any,
                           asked: str | None) -> tuple[Any, ActiveContext] | None:
        """The JSON of a discovery answer and its @context (None: not JSON, or an unusable
        @context)."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        content_type = header(headers, "Content-Type") or ""
        link = header(headers, "Link")
        try:
            context: Any = parse_link_context(link) if link else asked
        except NgsiLdError:
            context = asked
        inline = data.get("@context") if isinstance(data, dict) else None
        if inline is None and isinstance(data, list) and data and isinstance(data[0], dict):
            inline = data[0].get("@context")
        if inline is not None and ("ld+json" in content_type or not link):
            context = inline
        try:
            return data, await self.resolver.active(context)
        except NgsiLdError:
            return None
