"""5.6.2 Update Entity Attributes of the usual shape on one short path (issue 19).

Most PATCHes of ``/entities/{entityId}/attrs`` are a JSON body (Content-Type
``application/json`` as such) sent without a query parameter, tenant,
``Prefer``, Snapshot or Entity map header, to the default tenant, which no
context source serves: a device updating a reading.  The short path of
``broker.service.direct_writes`` already serves them without the general
path's preconditions and ``Call``; here the HTTP side of such a request is read
in one function, each header looked at once: the shape told from the headers,
the entity id, the body's bytes (taken without a coroutine when they arrived
with the headers), their decode and the Link header's @context, then
``direct_writes.update_attrs``.

A request of any other shape is handed, as it is, to the short path of the
route (``broker.routes.entities``), which decides it in its order; a body that
is not an object without ``@context`` (what the @context rules of 6.3.5 look
at) goes on as ``broker.http.decode_body`` makes it.  So the answers, errors
and changes are those of that path (``tests/test_direct_writes.py`` compares).
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from broker.http import (
    CONTENT_TYPE,
    FIWARE_SERVICE,
    LINK,
    PREFER,
    SNAPSHOT,
    TENANT,
    decoded,
    read_typed,
    sized_body,
)
from broker.service import direct_writes, entitymaps
from broker.service.direct_writes import DirectWrites
from broker.service.entities import check_entity_id
from broker.state import Broker
from broker.web import Handler, response_of
from ngsi_ld.bodies import JSON, Body, request_context
from ngsi_ld.headers import parse_link_context

__all__ = ["usual_update"]


def usual_update(broker: Broker, direct: DirectWrites,
                 short: Callable[[Handler], Handler]) -> Callable[[Handler], Handler]:
    """The route's ``before``: a PATCH of the usual shape (module docstring) answered
    here, any other by ``short`` (the route's short path, then its general one)."""

    def wrap(handler: Handler) -> Handler:
        other = short(handler)

        async def usual_or_other(request: web.Request) -> web.StreamResponse:
            headers = request.headers
            if (headers.get(CONTENT_TYPE) != JSON or TENANT in headers
                    or FIWARE_SERVICE in headers or PREFER in headers or SNAPSHOT in headers
                    or entitymaps.HEADER in headers or "?" in request.raw_path):
                return await other(request)
            service = broker.service
            # the default tenant, always known (DirectWrites.tenant, which also counts it)
            if direct.tenant(service, None, None) is None:
                return await other(request)
            entity_id = check_entity_id(request.match_info["entityId"])
            max_size = service.settings.max_body_size
            raw = sized_body(request, max_size)
            if raw is None:  # a body still arriving (a large one)
                body = await read_typed(request, max_size, JSON)
                return response_of(await direct_writes.update_attrs(service, "", entity_id,
                                                                    body))
            data = decoded(raw)
            link = parse_link_context(headers.get(LINK))
            # 6.3.5: an object without @context takes the Link header's (or the core's)
            context = link if data.__class__ is dict and "@context" not in data \
                else request_context(data, JSON, link)
            reply = await direct_writes.update_attrs(service, "", entity_id,
                                                     Body(data, JSON, context, link))
            return response_of(reply)

        return usual_or_other

    return wrap
